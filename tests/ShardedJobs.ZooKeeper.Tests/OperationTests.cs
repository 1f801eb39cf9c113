using ShardedJobs.TestSupport;
using Xunit;

namespace ShardedJobs.ZooKeeper.Tests;

public sealed class OperationTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Create_get_set_delete_round_trip_with_versions()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();

        Assert.Equal(root, await zk.CreateAsync(root, Bytes.Of("v0"), cancellationToken: Ct));
        var read = await zk.GetDataAsync(root, cancellationToken: Ct);
        Assert.Equal("v0", Bytes.Text(read.Data));
        Assert.Equal(0, read.Stat.Version);

        var stat = await zk.SetDataAsync(root, Bytes.Of("v1"), version: 0, Ct);
        Assert.Equal(1, stat.Version);
        var stale = await Assert.ThrowsAsync<BadVersionException>(() => zk.SetDataAsync(root, Bytes.Of("v2"), version: 0, Ct));
        Assert.Equal(root, stale.Path);
        Assert.Equal(ZooKeeperErrorCode.BadVersion, stale.Code);

        await Assert.ThrowsAsync<BadVersionException>(() => zk.DeleteAsync(root, version: 7, Ct));
        await zk.DeleteAsync(root, version: 1, Ct);
        Assert.Null(await zk.ExistsAsync(root, cancellationToken: Ct));
        var missing = await Assert.ThrowsAsync<NoNodeException>(() => zk.GetDataAsync(root, cancellationToken: Ct));
        Assert.Contains(root, missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Errors_carry_their_code_and_path()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of("x"), cancellationToken: Ct);
        await zk.CreateAsync(root + "/child", Bytes.Of(""), cancellationToken: Ct);

        var exists = await Assert.ThrowsAsync<NodeExistsException>(() => zk.CreateAsync(root, Bytes.Of("y"), cancellationToken: Ct));
        Assert.Equal(root, exists.Path);
        await Assert.ThrowsAsync<NoNodeException>(() => zk.CreateAsync(root + "/missing/deeper", Bytes.Of(""), cancellationToken: Ct));
        var notEmpty = await Assert.ThrowsAsync<NotEmptyException>(() => zk.DeleteAsync(root, cancellationToken: Ct));
        Assert.Equal(ZooKeeperErrorCode.NotEmpty, notEmpty.Code);
        await Assert.ThrowsAsync<NoNodeException>(() => zk.DeleteAsync(root + "/nope", cancellationToken: Ct));
        await Assert.ThrowsAsync<NoNodeException>(() => zk.SetDataAsync(root + "/nope", Bytes.Of(""), cancellationToken: Ct));
        await Assert.ThrowsAsync<NoNodeException>(() => zk.GetChildrenAsync(root + "/nope", cancellationToken: Ct));

        var ephemeral = await zk.CreateAsync(root + "/eph", Bytes.Of(""), CreateMode.Ephemeral, cancellationToken: Ct);
        var noChildren = await Assert.ThrowsAsync<ZooKeeperException>(() => zk.CreateAsync(ephemeral + "/kid", Bytes.Of(""), cancellationToken: Ct));
        Assert.Equal(ZooKeeperErrorCode.NoChildrenForEphemerals, noChildren.Code);
        var badAcl = await Assert.ThrowsAsync<ZooKeeperException>(() => zk.CreateAsync(root + "/acl", Bytes.Of(""), acl: [], cancellationToken: Ct));
        Assert.Equal(ZooKeeperErrorCode.InvalidAcl, badAcl.Code);
    }

    [Fact]
    public async Task Invalid_paths_are_rejected_before_anything_is_sent()
    {
        await using var zk = await fixture.ConnectAsync();

        foreach (var path in new[] { "relative", "/trailing/", "/double//slash", "/dot/./x", "/up/../x", "" })
        {
            var error = await Assert.ThrowsAsync<ArgumentException>(() => zk.CreateAsync(path, Bytes.Of(""), cancellationToken: Ct));
            Assert.Contains("Invalid ZooKeeper path", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Create2_returns_the_stat_and_ephemeral_owner_is_the_session()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);

        var created = await zk.CreateWithStatAsync(root + "/e", Bytes.Of("abc"), CreateMode.Ephemeral, cancellationToken: Ct);

        Assert.Equal(root + "/e", created.Path);
        Assert.Equal(3, created.Stat.DataLength);
        Assert.Equal(zk.SessionId, created.Stat.EphemeralOwner);
        Assert.Equal(created.Stat.Czxid, created.Stat.Mzxid);
        Assert.Equal(created.Stat, await zk.ExistsAsync(root + "/e", cancellationToken: Ct));
    }

    [Fact]
    public async Task Sequential_nodes_get_ten_digit_suffixes_from_the_parent_creation_counter()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);
        await zk.CreateAsync(root + "/plain", Bytes.Of(""), cancellationToken: Ct);

        var first = await zk.CreateAsync(root + "/lock-", Bytes.Of(""), CreateMode.EphemeralSequential, cancellationToken: Ct);
        var second = await zk.CreateAsync(root + "/lock-", Bytes.Of(""), CreateMode.PersistentSequential, cancellationToken: Ct);
        await zk.DeleteAsync(second, cancellationToken: Ct);
        var third = await zk.CreateAsync(root + "/", Bytes.Of(""), CreateMode.PersistentSequential, cancellationToken: Ct);

        Assert.Equal(root + "/lock-0000000001", first);
        Assert.Equal(root + "/lock-0000000002", second);
        Assert.Equal(root + "/0000000003", third); // deletions do not rewind the counter
    }

    [Fact]
    public async Task Children_come_back_sorted_with_the_parent_stat()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);
        foreach (var name in new[] { "9", "10", "1", "b", "a" })
        {
            await zk.CreateAsync($"{root}/{name}", Bytes.Of(""), cancellationToken: Ct);
        }

        var children = await zk.GetChildrenAsync(root, cancellationToken: Ct);
        var withStat = await zk.GetChildrenWithStatAsync(root, cancellationToken: Ct);

        Assert.Equal(["1", "10", "9", "a", "b"], children);
        Assert.Equal(children, withStat.Children);
        Assert.Equal(5, withStat.Stat.NumChildren);
        Assert.Equal(5, withStat.Stat.Cversion);
    }

    [Fact]
    public async Task Multi_applies_all_operations_atomically_and_reports_each_result()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);
        await zk.CreateAsync(root + "/flag", Bytes.Of("f"), cancellationToken: Ct);

        var results = await zk.MultiAsync(
        [
            ZooKeeperOp.Check(root + "/flag", 0),
            ZooKeeperOp.Delete(root + "/flag", 0),
            ZooKeeperOp.Create(root + "/claim", Bytes.Of("me")),
            ZooKeeperOp.Create(root + "/seq-", Bytes.Of(""), CreateMode.PersistentSequential),
            ZooKeeperOp.SetData(root, Bytes.Of("root"), 0),
        ], Ct);

        Assert.IsType<OpResult.Checked>(results[0]);
        Assert.IsType<OpResult.Deleted>(results[1]);
        Assert.Equal(root + "/claim", Assert.IsType<OpResult.Created>(results[2]).Path);
        Assert.StartsWith(root + "/seq-00000000", Assert.IsType<OpResult.Created>(results[3]).Path, StringComparison.Ordinal);
        Assert.Equal(1, Assert.IsType<OpResult.DataSet>(results[4]).Stat.Version);
        Assert.Null(await zk.ExistsAsync(root + "/flag", cancellationToken: Ct));
    }

    [Fact]
    public async Task Failed_multi_applies_nothing_and_names_the_failing_operation()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);
        await zk.CreateAsync(root + "/flag", Bytes.Of("f"), cancellationToken: Ct);

        var failure = await Assert.ThrowsAsync<MultiOperationException>(() => zk.MultiAsync(
        [
            ZooKeeperOp.Create(root + "/claim", Bytes.Of("me")),
            ZooKeeperOp.Delete(root + "/flag", version: 5),
            ZooKeeperOp.SetData(root, Bytes.Of("x")),
        ], Ct));

        Assert.Equal(ZooKeeperErrorCode.BadVersion, failure.Code);
        Assert.Equal(1, failure.FailedIndex);
        Assert.Equal(root + "/flag", failure.Path);
        Assert.Equal(
            [new OpResult.Error(ZooKeeperErrorCode.Ok), new OpResult.Error(ZooKeeperErrorCode.BadVersion), new OpResult.Error(ZooKeeperErrorCode.RuntimeInconsistency)],
            failure.Results);
        Assert.Null(await zk.ExistsAsync(root + "/claim", cancellationToken: Ct));
        Assert.Equal(0, (await zk.ExistsAsync(root, cancellationToken: Ct))!.Version);
    }

    [Fact]
    public async Task Two_claims_of_one_flag_by_multi_succeed_exactly_once()
    {
        await using var a = await fixture.ConnectAsync();
        await using var b = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await a.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);
        await a.CreateAsync(root + "/flag", Bytes.Of(""), cancellationToken: Ct);

        async Task<bool> ClaimAsync(ZooKeeperClient zk, string who)
        {
            try
            {
                await zk.MultiAsync([ZooKeeperOp.Delete(root + "/flag", 0), ZooKeeperOp.Create(root + "/claim-" + who, Bytes.Of(who))], Ct);
                return true;
            }
            catch (MultiOperationException e) when (e.Code == ZooKeeperErrorCode.NoNode)
            {
                return false;
            }
        }

        var outcomes = await Task.WhenAll(ClaimAsync(a, "a"), ClaimAsync(b, "b"));

        Assert.Equal(1, outcomes.Count(o => o));
        Assert.Single(await a.GetChildrenAsync(root, cancellationToken: Ct));
    }

    [Fact]
    public async Task Sync_answers_with_the_path()
    {
        await using var zk = await fixture.ConnectAsync();
        await zk.SyncAsync("/", Ct);
    }

    [Fact]
    public async Task Container_nodes_are_created_with_op_19_and_reclaimed_when_emptied()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        var recorder = new EventRecorder();

        Assert.Equal(root, await zk.CreateAsync(root, Bytes.Of(""), CreateMode.Container, cancellationToken: Ct));
        await zk.CreateAsync(root + "/child", Bytes.Of(""), cancellationToken: Ct);
        await zk.ExistsAsync(root, recorder.Watcher, Ct); // armed first: the server may reclaim it right after the delete
        await zk.DeleteAsync(root + "/child", cancellationToken: Ct);

        // Only a real container is reclaimed (checkIntervalMs = 300 in the fixture); a plain node would stay forever.
        Assert.Equal(new WatchedEvent(WatchedEventType.NodeDeleted, ZooKeeperState.Connected, root), await recorder.NextAsync());
    }

    [Fact]
    public async Task Large_data_round_trips_near_the_frame_limit()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        var data = new byte[1_000_000];
        new Random(7).NextBytes(data);

        await zk.CreateAsync(root, data, cancellationToken: Ct);

        Assert.Equal(data, (await zk.GetDataAsync(root, cancellationToken: Ct)).Data);
    }

    [Fact]
    public async Task Chroot_prefixes_requests_and_strips_replies_and_event_paths()
    {
        var chroot = ServerFixture.UniqueRoot();
        await using var plain = await fixture.ConnectAsync();
        await plain.CreateAsync(chroot, Bytes.Of(""), cancellationToken: Ct);
        await using var rooted = await fixture.ConnectAsync(chroot);
        var recorder = new EventRecorder();

        Assert.Equal(chroot, rooted.Chroot);
        Assert.Equal("/app", await rooted.CreateAsync("/app", Bytes.Of("in"), cancellationToken: Ct));
        var sequential = await rooted.CreateAsync("/app/q-", Bytes.Of(""), CreateMode.PersistentSequential, cancellationToken: Ct);
        Assert.Equal("/app/q-0000000000", sequential);
        Assert.Equal("in", Bytes.Text((await plain.GetDataAsync(chroot + "/app", cancellationToken: Ct)).Data));
        Assert.Equal(["app"], await rooted.GetChildrenAsync("/", cancellationToken: Ct));

        await rooted.GetDataAsync("/app", recorder.Watcher, Ct);
        await rooted.GetChildrenAsync("/", recorder.Watcher, Ct);
        await plain.SetDataAsync(chroot + "/app", Bytes.Of("changed"), cancellationToken: Ct);
        await plain.CreateAsync(chroot + "/other", Bytes.Of(""), cancellationToken: Ct);

        Assert.Equal(new WatchedEvent(WatchedEventType.NodeDataChanged, ZooKeeperState.Connected, "/app"), await recorder.NextAsync());
        Assert.Equal(new WatchedEvent(WatchedEventType.NodeChildrenChanged, ZooKeeperState.Connected, "/"), await recorder.NextAsync());
        var results = await rooted.MultiAsync([ZooKeeperOp.Create("/m", Bytes.Of("")), ZooKeeperOp.Delete("/m")], Ct);
        Assert.Equal("/m", Assert.IsType<OpResult.Created>(results[0]).Path);
    }

    [Fact]
    public async Task Digest_acl_denies_a_client_without_the_credentials()
    {
        var root = ServerFixture.UniqueRoot();
        await using var owner = await fixture.ConnectAsync(digest: "alice:secret");
        await using var stranger = await fixture.ConnectAsync();
        await using var friend = await fixture.ConnectAsync();

        await owner.CreateAsync(root, Bytes.Of("private"), acl: ZooKeeperAcl.CreatorAll, cancellationToken: Ct);
        var (acl, _) = await owner.GetAclAsync(root, Ct);
        Assert.Equal([ZooKeeperAcl.Digest("alice:secret")], acl);

        var denied = await Assert.ThrowsAsync<NoAuthException>(() => stranger.GetDataAsync(root, cancellationToken: Ct));
        Assert.Equal(root, denied.Path);
        await Assert.ThrowsAsync<NoAuthException>(() => stranger.SetDataAsync(root, Bytes.Of("x"), cancellationToken: Ct));
        Assert.NotNull(await stranger.ExistsAsync(root, cancellationToken: Ct)); // exists is not ACL-checked

        await friend.AddDigestAuthAsync("alice:secret", Ct);
        Assert.Equal("private", Bytes.Text((await friend.GetDataAsync(root, cancellationToken: Ct)).Data));
    }

    [Fact]
    public async Task Creator_all_without_credentials_is_an_invalid_acl()
    {
        await using var zk = await fixture.ConnectAsync();

        var error = await Assert.ThrowsAsync<ZooKeeperException>(() => zk.CreateAsync(ServerFixture.UniqueRoot(), Bytes.Of(""), acl: ZooKeeperAcl.CreatorAll, cancellationToken: Ct));

        Assert.Equal(ZooKeeperErrorCode.InvalidAcl, error.Code);
    }

    [Fact]
    public async Task Unknown_auth_scheme_ends_the_client_in_auth_failed()
    {
        var zk = await fixture.ConnectAsync();
        var states = new List<ZooKeeperState>();
        zk.StateChanged += change => { lock (states) { states.Add(change.State); } };

        var failure = await Assert.ThrowsAnyAsync<ZooKeeperException>(() => zk.AddAuthAsync("nosuchscheme", Bytes.Of("x"), Ct));

        // The server answers AuthFailed and closes the socket; when the close overtakes the reply (a reset discards what the
        // client had not read yet) the call sees the connection lost, and the next connection's re-sent credentials end it.
        Assert.Contains(failure.Code, new[] { ZooKeeperErrorCode.AuthFailed, ZooKeeperErrorCode.ConnectionLoss });
        await WaitUntilAsync(() => zk.State == ZooKeeperState.AuthFailed);
        var after = await Assert.ThrowsAsync<ZooKeeperException>(() => zk.ExistsAsync("/", cancellationToken: Ct));
        Assert.Equal(ZooKeeperErrorCode.AuthFailed, after.Code);
        await zk.DisposeAsync();
    }

    [Fact]
    public async Task Cancelled_calls_throw_operation_cancelled_and_leave_the_connection_usable()
    {
        await using var zk = await fixture.ConnectAsync();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => zk.ExistsAsync("/", cancellationToken: cancelled.Token));

        // Many calls cancelled mid-flight: the in-order reply matching must stay intact for everything after them.
        using var soon = new CancellationTokenSource();
        var calls = Enumerable.Range(0, 200).Select(_ => zk.ExistsAsync("/", cancellationToken: soon.Token)).ToArray();
        await soon.CancelAsync();
        foreach (var call in calls)
        {
            try
            {
                await call;
            }
            catch (OperationCanceledException)
            {
            }
        }

        var root = ServerFixture.UniqueRoot();
        Assert.Equal(root, await zk.CreateAsync(root, Bytes.Of("after"), cancellationToken: Ct));
        Assert.Equal("after", Bytes.Text((await zk.GetDataAsync(root, cancellationToken: Ct)).Data));
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }
}
