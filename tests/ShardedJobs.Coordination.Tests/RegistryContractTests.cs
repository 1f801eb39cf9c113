using System.Text;
using System.Threading.Channels;
using Xunit;

namespace ShardedJobs.Coordination.Tests;

/// <summary>
/// The registry contract, written once and run unchanged against every implementation. A case that passes on one and fails
/// on the other is a bug in one of them, never a reason to special-case.
/// </summary>
public abstract class RegistryContractTests<THarness>(THarness harness) : IClassFixture<THarness>
    where THarness : class, IRegistryHarness
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // ------------------------------------------------------------ operations and errors

    [Fact]
    public async Task Create_get_set_round_trip_with_versions()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();

        Assert.Equal(root, await registry.CreateAsync(root, Bytes("v0"), cancellationToken: Ct));
        var node = await registry.GetAsync(root, cancellationToken: Ct);
        Assert.Equal("v0", Text(node!.Data));
        Assert.Equal(0, node.Stat.Version);
        Assert.Equal(0, node.Stat.EphemeralOwner);

        Assert.Equal(1, (await registry.SetAsync(root, Bytes("v1"), 0, Ct)).Version);
        Assert.Equal(2, (await registry.SetAsync(root, Bytes("v2"), -1, Ct)).Version);
        var stale = await Assert.ThrowsAsync<RegistryException>(() => registry.SetAsync(root, Bytes("v3"), 1, Ct));
        Assert.Equal(RegistryErrorCode.BadVersion, stale.Code);
        Assert.Equal(root, stale.Path);
        Assert.Equal("v2", Text((await registry.GetAsync(root, cancellationToken: Ct))!.Data));
    }

    [Fact]
    public async Task Create_errors_name_the_code_and_path()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        await registry.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        var ephemeral = await registry.CreateAsync(root + "/e", Bytes(""), NodeKind.Ephemeral, Ct);

        Assert.Equal(RegistryErrorCode.NodeExists, (await Assert.ThrowsAsync<RegistryException>(() => registry.CreateAsync(root, Bytes(""), cancellationToken: Ct))).Code);
        var noParent = await Assert.ThrowsAsync<RegistryException>(() => registry.CreateAsync(root + "/missing/child", Bytes(""), cancellationToken: Ct));
        Assert.Equal(RegistryErrorCode.NoNode, noParent.Code);
        Assert.Equal(root + "/missing/child", noParent.Path);
        Assert.Equal(RegistryErrorCode.NoChildrenForEphemerals,
            (await Assert.ThrowsAsync<RegistryException>(() => registry.CreateAsync(ephemeral + "/kid", Bytes(""), cancellationToken: Ct))).Code);
        await Assert.ThrowsAsync<ArgumentException>(() => registry.CreateAsync("no-slash", Bytes(""), cancellationToken: Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => registry.CreateAsync(root + "//x", Bytes(""), cancellationToken: Ct));
    }

    [Fact]
    public async Task Delete_checks_version_children_and_existence()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        await registry.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        await registry.CreateAsync(root + "/child", Bytes(""), cancellationToken: Ct);

        Assert.Equal(RegistryErrorCode.NotEmpty, (await Assert.ThrowsAsync<RegistryException>(() => registry.DeleteAsync(root, cancellationToken: Ct))).Code);
        Assert.Equal(RegistryErrorCode.BadVersion, (await Assert.ThrowsAsync<RegistryException>(() => registry.DeleteAsync(root + "/child", 3, Ct))).Code);
        await registry.DeleteAsync(root + "/child", 0, Ct);
        Assert.Equal(RegistryErrorCode.NoNode, (await Assert.ThrowsAsync<RegistryException>(() => registry.DeleteAsync(root + "/child", cancellationToken: Ct))).Code);
        Assert.Equal(RegistryErrorCode.NoNode, (await Assert.ThrowsAsync<RegistryException>(() => registry.SetAsync(root + "/child", Bytes(""), cancellationToken: Ct))).Code);
        await registry.DeleteAsync(root, cancellationToken: Ct);
        Assert.Null(await registry.ExistsAsync(root, cancellationToken: Ct));
    }

    [Fact]
    public async Task Missing_nodes_read_as_null()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();

        Assert.Null(await registry.ExistsAsync(root, cancellationToken: Ct));
        Assert.Null(await registry.GetAsync(root, cancellationToken: Ct));
        Assert.Null(await registry.GetChildrenAsync(root, cancellationToken: Ct));
    }

    [Fact]
    public async Task Children_are_sorted_ordinally_and_counted_in_the_stat()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        await registry.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        foreach (var name in new[] { "9", "10", "1", "b", "A" })
        {
            await registry.CreateAsync($"{root}/{name}", Bytes(""), cancellationToken: Ct);
        }

        Assert.Equal(["1", "10", "9", "A", "b"], await registry.GetChildrenAsync(root, cancellationToken: Ct));
        Assert.Equal(5, (await registry.ExistsAsync(root, cancellationToken: Ct))!.NumChildren);
    }

    [Fact]
    public async Task Sequential_names_count_creations_and_never_rewind()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        await registry.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        await registry.CreateAsync(root + "/plain", Bytes(""), cancellationToken: Ct);

        var first = await registry.CreateAsync(root + "/n-", Bytes(""), NodeKind.PersistentSequential, Ct);
        await registry.DeleteAsync(first, cancellationToken: Ct);
        var second = await registry.CreateAsync(root + "/n-", Bytes(""), NodeKind.EphemeralSequential, Ct);

        Assert.Equal(root + "/n-0000000001", first);
        Assert.Equal(root + "/n-0000000002", second);
        Assert.Equal(registry.SessionId, (await registry.ExistsAsync(second, cancellationToken: Ct))!.EphemeralOwner);
    }

    [Fact]
    public async Task Multi_applies_every_operation()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        await registry.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        await registry.CreateAsync(root + "/flag", Bytes(""), cancellationToken: Ct);

        var results = await registry.MultiAsync(
        [
            new RegistryOp.Check(root + "/flag", 0),
            new RegistryOp.Delete(root + "/flag", 0),
            new RegistryOp.Create(root + "/claim", Bytes("me")),
            new RegistryOp.Create(root + "/s-", Bytes(""), NodeKind.PersistentSequential),
            new RegistryOp.SetData(root, Bytes("r"), 0),
        ], Ct);

        Assert.Equal(
            [new RegistryOpResult.Checked(), new RegistryOpResult.Deleted(), new RegistryOpResult.Created(root + "/claim"),
             new RegistryOpResult.Created(root + "/s-0000000002"), new RegistryOpResult.DataSet(1)],
            results);
        Assert.Equal(["claim", "s-0000000002"], await registry.GetChildrenAsync(root, cancellationToken: Ct));
    }

    [Fact]
    public async Task Failed_multi_applies_nothing_fires_nothing_and_reports_each_operation()
    {
        await using var registry = await harness.ConnectAsync();
        await using var observer = await harness.ConnectAsync();
        var root = UniqueRoot();
        await registry.CreateAsync(root, Bytes("r"), cancellationToken: Ct);
        await registry.CreateAsync(root + "/flag", Bytes(""), cancellationToken: Ct);
        var events = new Recorder();
        await observer.GetAsync(root, events.Watcher, Ct);
        await observer.GetChildrenAsync(root, events.Watcher, Ct);

        var failure = await Assert.ThrowsAsync<RegistryMultiException>(() => registry.MultiAsync(
        [
            new RegistryOp.SetData(root, Bytes("changed")),
            new RegistryOp.Create(root + "/claim", Bytes("")),
            new RegistryOp.Delete(root + "/flag", 9),
            new RegistryOp.Create(root + "/after", Bytes("")),
        ], Ct));

        Assert.Equal(RegistryErrorCode.BadVersion, failure.Code);
        Assert.Equal(2, failure.FailedIndex);
        Assert.Equal(root + "/flag", failure.Path);
        Assert.Equal(
            [new RegistryOpResult.Failed(null), new RegistryOpResult.Failed(null), new RegistryOpResult.Failed(RegistryErrorCode.BadVersion), new RegistryOpResult.Failed(RegistryErrorCode.Other)],
            failure.Results);
        Assert.Equal("r", Text((await registry.GetAsync(root, cancellationToken: Ct))!.Data));
        Assert.Equal(["flag"], await registry.GetChildrenAsync(root, cancellationToken: Ct));
        await events.AssertNoneAsync(TimeSpan.FromMilliseconds(300));

        // The watches were not consumed by the failed multi: a real change still fires them.
        await registry.SetAsync(root, Bytes("now"), cancellationToken: Ct);
        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeDataChanged, root), await events.NextAsync());
    }

    [Fact]
    public async Task Claiming_one_flag_by_multi_from_many_sessions_succeeds_exactly_once()
    {
        var registries = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => harness.ConnectAsync()));
        var root = UniqueRoot();
        await registries[0].CreateAsync(root, Bytes(""), cancellationToken: Ct);
        await registries[0].CreateAsync(root + "/flag", Bytes(""), cancellationToken: Ct);

        var outcomes = await Task.WhenAll(registries.Select(async (registry, i) =>
        {
            try
            {
                await registry.MultiAsync([new RegistryOp.Delete(root + "/flag", 0), new RegistryOp.Create(root + "/claim", Bytes($"{i}"))], Ct);
                return true;
            }
            catch (RegistryMultiException e) when (e.Code is RegistryErrorCode.NoNode or RegistryErrorCode.NodeExists)
            {
                return false;
            }
        }));

        Assert.Equal(1, outcomes.Count(won => won));
        Assert.Equal(["claim"], await registries[0].GetChildrenAsync(root, cancellationToken: Ct));
        foreach (var registry in registries)
        {
            await registry.DisposeAsync();
        }
    }

    [Fact]
    public async Task Concurrent_versioned_increments_lose_no_update()
    {
        var registries = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => harness.ConnectAsync()));
        var root = UniqueRoot();
        await registries[0].CreateAsync(root, Bytes("0"), cancellationToken: Ct);

        await Task.WhenAll(registries.Select(registry => Task.Run(async () =>
        {
            for (var done = 0; done < 15;)
            {
                var node = (await registry.GetAsync(root, cancellationToken: Ct))!;
                try
                {
                    await registry.SetAsync(root, Bytes((int.Parse(Text(node.Data), System.Globalization.CultureInfo.InvariantCulture) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)), node.Stat.Version, Ct);
                    done++;
                }
                catch (RegistryException e) when (e.Code == RegistryErrorCode.BadVersion)
                {
                }
            }
        }, Ct)));

        Assert.Equal("60", Text((await registries[0].GetAsync(root, cancellationToken: Ct))!.Data));
        foreach (var registry in registries)
        {
            await registry.DisposeAsync();
        }
    }

    // ------------------------------------------------------------ watches

    [Fact]
    public async Task Data_watch_fires_once()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        await registry.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        var events = new Recorder();

        await registry.GetAsync(root, events.Watcher, Ct);
        await registry.SetAsync(root, Bytes("1"), cancellationToken: Ct);
        await registry.SetAsync(root, Bytes("2"), cancellationToken: Ct);

        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeDataChanged, root), await events.NextAsync());
        await events.AssertNoneAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task Exists_watch_on_a_missing_node_fires_on_creation_but_get_and_children_leave_none()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        var exists = new Recorder();
        var others = new Recorder();

        Assert.Null(await registry.ExistsAsync(root, exists.Watcher, Ct));
        Assert.Null(await registry.GetAsync(root, others.Watcher, Ct));
        Assert.Null(await registry.GetChildrenAsync(root, others.Watcher, Ct));
        await registry.CreateAsync(root, Bytes(""), cancellationToken: Ct);

        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeCreated, root), await exists.NextAsync());
        await others.AssertNoneAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task Child_watch_fires_on_add_and_delete_watches_on_a_deleted_node_fire_once()
    {
        await using var registry = await harness.ConnectAsync();
        await using var other = await harness.ConnectAsync();
        var root = UniqueRoot();
        await registry.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        var children = new Recorder();
        var node = new Recorder();

        await registry.GetChildrenAsync(root, children.Watcher, Ct);
        await other.CreateAsync(root + "/a", Bytes(""), cancellationToken: Ct);
        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeChildrenChanged, root), await children.NextAsync());

        await registry.GetChildrenAsync(root, children.Watcher, Ct);
        await registry.GetAsync(root + "/a", node.Watcher, Ct);
        await registry.ExistsAsync(root + "/a", node.Watcher, Ct);
        await other.DeleteAsync(root + "/a", cancellationToken: Ct);

        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeDeleted, root + "/a"), await node.NextAsync());
        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeChildrenChanged, root), await children.NextAsync());
        await node.AssertNoneAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task Watch_events_arrive_in_the_order_of_the_changes()
    {
        await using var watcher = await harness.ConnectAsync();
        await using var writer = await harness.ConnectAsync();
        var root = UniqueRoot();
        await writer.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        var events = new Recorder();
        var paths = Enumerable.Range(0, 30).Select(i => $"{root}/n{i:D2}").ToArray();
        foreach (var path in paths)
        {
            await watcher.ExistsAsync(path, events.Watcher, Ct);
        }

        foreach (var path in paths)
        {
            await writer.CreateAsync(path, Bytes(""), cancellationToken: Ct);
        }

        foreach (var path in paths)
        {
            Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeCreated, path), await events.NextAsync());
        }
    }

    [Fact]
    public async Task Watchers_never_run_on_the_callers_thread_and_a_throwing_watcher_stops_nothing()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        var events = new Recorder();
        await registry.ExistsAsync(root, _ => throw new InvalidOperationException("bug in a watcher"), Ct);
        await registry.ExistsAsync(root, events.Watcher, Ct);
        var insideCall = false;
        var ranInsideCall = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await registry.ExistsAsync(root, _ => ranInsideCall.TrySetResult(Volatile.Read(ref insideCall)), Ct);

        // A watcher invoked synchronously by the write that fired it would see insideCall == true.
        Volatile.Write(ref insideCall, true);
        var create = registry.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        Volatile.Write(ref insideCall, false);
        await create;

        Assert.Equal(RegistryEventType.NodeCreated, (await events.NextAsync()).Type);
        Assert.False(await ranInsideCall.Task.WaitAsync(TimeSpan.FromSeconds(20), Ct), "the watcher ran inside the caller's write");
    }

    // ------------------------------------------------------------ sessions

    [Fact]
    public async Task Ephemerals_belong_to_the_session_and_vanish_when_it_closes()
    {
        await using var observer = await harness.ConnectAsync();
        var owner = await harness.ConnectAsync();
        var root = UniqueRoot();
        await observer.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        await owner.CreateAsync(root + "/e", Bytes(""), NodeKind.Ephemeral, Ct);
        Assert.Equal(owner.SessionId, (await observer.ExistsAsync(root + "/e", cancellationToken: Ct))!.EphemeralOwner);
        Assert.NotEqual(owner.SessionId, observer.SessionId);
        var events = new Recorder();
        await observer.ExistsAsync(root + "/e", events.Watcher, Ct);

        await owner.DisposeAsync();

        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeDeleted, root + "/e"), await events.NextAsync(TimeSpan.FromSeconds(2)));
        Assert.Equal(RegistryState.Closed, owner.State);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => owner.ExistsAsync(root, cancellationToken: Ct));
    }

    [Fact]
    public async Task Expired_session_loses_its_ephemerals_and_watches_then_a_new_session_restores_kept_ephemerals()
    {
        await using var observer = await harness.ConnectAsync();
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        await observer.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        await registry.KeepEphemeralAsync(root + "/instance", Bytes("me"), Ct);
        await registry.CreateAsync(root + "/plain", Bytes(""), NodeKind.Ephemeral, Ct);
        var oldSession = registry.SessionId;
        var sessionEvents = new Recorder<RegistrySessionEvent>();
        registry.SessionChanged += sessionEvents.Watcher;
        var orphaned = new Recorder();
        await registry.ExistsAsync(root + "/never", orphaned.Watcher, Ct);
        var observed = new Recorder();
        await observer.ExistsAsync(root + "/plain", observed.Watcher, Ct);

        await harness.ExpireSessionAsync(registry);

        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeDeleted, root + "/plain"), await observed.NextAsync());
        Assert.Equal(new RegistryWatchEvent(RegistryEventType.SessionEnded, root + "/never"), await orphaned.NextAsync());
        var kinds = new List<RegistrySessionEventKind>();
        while (!kinds.Contains(RegistrySessionEventKind.NewSession))
        {
            kinds.Add((await sessionEvents.NextAsync()).Kind);
        }

        Assert.Equal(RegistrySessionEventKind.SessionLost, kinds[^2]);
        Assert.DoesNotContain(RegistrySessionEventKind.Reconnected, kinds);
        Assert.NotEqual(oldSession, registry.SessionId);
        var restored = await observer.GetAsync(root + "/instance", cancellationToken: Ct);
        Assert.Equal("me", Text(restored!.Data));
        Assert.Equal(registry.SessionId, restored.Stat.EphemeralOwner);
        Assert.Null(await observer.ExistsAsync(root + "/plain", cancellationToken: Ct)); // not kept: not restored
        Assert.Equal(RegistryState.Connected, registry.State);
    }

    [Fact]
    public async Task A_dropped_connection_shorter_than_the_session_keeps_session_ephemerals_and_watches()
    {
        await using var writer = await harness.ConnectAsync();
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();
        await registry.CreateAsync(root, Bytes("0"), NodeKind.Ephemeral, Ct);
        var session = registry.SessionId;
        var sessionEvents = new Recorder<RegistrySessionEvent>();
        registry.SessionChanged += sessionEvents.Watcher;
        var events = new Recorder();
        await registry.GetAsync(root, events.Watcher, Ct);

        var drop = harness.DropConnectionAsync(registry, harness.SessionTimeout / 4);
        await writer.SetAsync(root, Bytes("changed while away"), cancellationToken: Ct);
        await drop;

        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeDataChanged, root), await events.NextAsync());
        Assert.Equal(RegistrySessionEventKind.Suspended, (await sessionEvents.NextAsync()).Kind);
        Assert.Equal(RegistrySessionEventKind.Reconnected, (await sessionEvents.NextAsync()).Kind);
        Assert.Equal(session, registry.SessionId);
        Assert.Equal(session, (await writer.ExistsAsync(root, cancellationToken: Ct))!.EphemeralOwner);
    }

    [Fact]
    public async Task Keeping_an_ephemeral_owned_by_another_session_is_refused()
    {
        await using var first = await harness.ConnectAsync();
        await using var second = await harness.ConnectAsync();
        var root = UniqueRoot();
        await first.CreateAsync(root, Bytes(""), cancellationToken: Ct);
        await first.KeepEphemeralAsync(root + "/instance", Bytes("first"), Ct);

        var refused = await Assert.ThrowsAsync<RegistryException>(() => second.KeepEphemeralAsync(root + "/instance", Bytes("second"), Ct));

        Assert.Equal(RegistryErrorCode.NodeExists, refused.Code);
        Assert.Contains("another session", refused.Message, StringComparison.Ordinal);
        await first.KeepEphemeralAsync(root + "/instance", Bytes("first again"), Ct); // its own: adopted and updated
        Assert.Equal("first again", Text((await second.GetAsync(root + "/instance", cancellationToken: Ct))!.Data));
    }

    // ------------------------------------------------------------ recipes

    [Fact]
    public async Task Create_with_parents_and_delete_recursive()
    {
        await using var registry = await harness.ConnectAsync();
        var root = UniqueRoot();

        await registry.CreateWithParentsAsync(root + "/a/b/c", Bytes("leaf"), cancellationToken: Ct);
        await registry.CreateWithParentsAsync(root + "/a/x", Bytes(""), cancellationToken: Ct);
        await registry.EnsurePathAsync(root + "/a/b", Ct);

        Assert.Equal("leaf", await registry.GetStringAsync(root + "/a/b/c", Ct));
        Assert.Equal(["b", "x"], await registry.GetChildrenAsync(root + "/a", cancellationToken: Ct));
        await registry.DeleteRecursiveAsync(root, Ct);
        Assert.Null(await registry.ExistsAsync(root, cancellationToken: Ct));
        await registry.DeleteRecursiveAsync(root, Ct); // missing is fine
    }

    [Fact]
    public async Task Leader_election_has_one_leader_and_hands_over_when_the_leaders_session_ends()
    {
        var root = UniqueRoot();
        var registries = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => harness.ConnectAsync()));
        var elections = registries.Select((r, i) => new LeaderElection(r, root + "/leader/election/instance", $"candidate-{i}")).ToArray();

        var leaders = await Task.WhenAll(elections.Select(e => e.StartAsync(Ct)));

        Assert.Single(leaders.Distinct());
        var leaderIndex = Array.FindIndex(elections, e => e.IsLeader);
        Assert.Equal(1, elections.Count(e => e.IsLeader));
        Assert.Equal($"candidate-{leaderIndex}", leaders[0]);

        // The leader's process dies: its election stops, then its session ends. (A live candidate that only lost its session
        // contends again on its new session and may win: the embedded registry re-opens a session at once.)
        await elections[leaderIndex].DisposeAsync();
        await harness.ExpireSessionAsync(registries[leaderIndex]);

        var deadline = DateTime.UtcNow + harness.SessionTimeout + TimeSpan.FromSeconds(10);
        while (!elections.Where((_, i) => i != leaderIndex).Any(e => e.IsLeader))
        {
            Assert.True(DateTime.UtcNow < deadline, "no survivor took over the lead");
            await Task.Delay(20, Ct);
        }

        var next = Array.FindIndex(elections, e => e.IsLeader && e != elections[leaderIndex]);
        Assert.Equal($"candidate-{next}", await registries[next].GetStringAsync(root + "/leader/election/instance", Ct));

        // A clean resignation hands over too.
        await elections[next].ResignAsync(Ct);
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!elections.Where((_, i) => i != next).Any(e => e.IsLeader))
        {
            Assert.True(DateTime.UtcNow < deadline, "no one took over after the leader resigned");
            await Task.Delay(20, Ct);
        }

        foreach (var election in elections)
        {
            await election.DisposeAsync();
        }

        foreach (var registry in registries)
        {
            await registry.DisposeAsync();
        }
    }

    private static string UniqueRoot() => "/c-" + Guid.NewGuid().ToString("N")[..12];

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static string Text(byte[] data) => Encoding.UTF8.GetString(data);

    private sealed class Recorder : Recorder<RegistryWatchEvent>;

    /// <summary>Collects events; waits are bounded so a missing event fails the test instead of hanging it.</summary>
    private class Recorder<T>
    {
        private readonly Channel<T> _events = Channel.CreateUnbounded<T>();

        public Action<T> Watcher => e => _events.Writer.TryWrite(e);

        public async Task<T> NextAsync(TimeSpan? timeout = null)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(20));
            return await _events.Reader.ReadAsync(cts.Token);
        }

        public async Task AssertNoneAsync(TimeSpan quiet)
        {
            await Task.Delay(quiet, Ct);
            Assert.False(_events.Reader.TryRead(out var unexpected), $"unexpected event {unexpected}");
        }
    }
}
