using ShardedJobs.TestSupport;
using Xunit;

namespace ShardedJobs.ZooKeeper.Tests;

public sealed class SessionTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Session_timeout_is_negotiated_within_the_servers_bounds()
    {
        await using var tooShort = await fixture.ConnectAsync(sessionTimeout: TimeSpan.FromMilliseconds(10));
        await using var tooLong = await fixture.ConnectAsync(sessionTimeout: TimeSpan.FromMinutes(5));

        // tickTime 200: [2, 20] ticks.
        Assert.Equal(TimeSpan.FromMilliseconds(400), tooShort.NegotiatedSessionTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(4000), tooLong.NegotiatedSessionTimeout);
        Assert.NotEqual(tooShort.SessionId, tooLong.SessionId);
    }

    [Fact]
    public async Task Ephemerals_vanish_at_once_when_the_owner_closes()
    {
        await using var observer = await fixture.ConnectAsync();
        var owner = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await observer.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);
        await owner.CreateAsync(root + "/e", Bytes.Of(""), CreateMode.Ephemeral, cancellationToken: Ct);
        var recorder = new EventRecorder();
        await observer.ExistsAsync(root + "/e", recorder.Watcher, Ct);

        var closed = DateTime.UtcNow;
        await owner.CloseAsync();

        Assert.Equal(WatchedEventType.NodeDeleted, (await recorder.NextAsync()).Type);
        Assert.True(DateTime.UtcNow - closed < TimeSpan.FromSeconds(1), "closeSession deletes ephemerals without waiting for expiry");
        Assert.Equal(ZooKeeperState.Closed, owner.State);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => owner.ExistsAsync("/", cancellationToken: Ct));
    }

    [Fact]
    public async Task Partition_longer_than_the_session_expires_it_and_the_client_says_so()
    {
        await using var proxy = new TcpProxy(fixture.Server.ClientPort);
        await using var observer = await fixture.ConnectAsync();
        var zk = await fixture.ConnectAsync(sessionTimeout: TimeSpan.FromMilliseconds(1000), connectionString: proxy.ConnectionString);
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), CreateMode.Ephemeral, cancellationToken: Ct);
        var states = new List<ZooKeeperState>();
        zk.StateChanged += change => { lock (states) { states.Add(change.State); } };
        var watcher = new EventRecorder();
        await zk.ExistsAsync(root, watcher.Watcher, Ct);
        var deleted = new EventRecorder();
        await observer.ExistsAsync(root, deleted.Watcher, Ct);

        proxy.Partition();

        // The server expires the silent session (T = 1 s, tick 200) and deletes its ephemeral.
        Assert.Equal(WatchedEventType.NodeDeleted, (await deleted.NextAsync()).Type);
        await OperationTests.WaitUntilAsync(() => zk.State == ZooKeeperState.Disconnected);
        proxy.Heal();
        await OperationTests.WaitUntilAsync(() => zk.State == ZooKeeperState.Expired);

        Assert.Equal(new WatchedEvent(WatchedEventType.None, ZooKeeperState.Expired, root), await watcher.NextAsync());
        await Assert.ThrowsAsync<SessionExpiredException>(() => zk.GetDataAsync("/", cancellationToken: Ct));
        await OperationTests.WaitUntilAsync(() => { lock (states) { return states.Contains(ZooKeeperState.Expired); } });
        lock (states)
        {
            Assert.Equal([ZooKeeperState.Disconnected, ZooKeeperState.Expired], states);
        }

        await zk.DisposeAsync();
    }

    [Fact]
    public async Task Short_blip_keeps_the_session_its_ephemerals_and_its_watches()
    {
        await using var proxy = new TcpProxy(fixture.Server.ClientPort);
        await using var writer = await fixture.ConnectAsync();
        await using var zk = await fixture.ConnectAsync(sessionTimeout: TimeSpan.FromSeconds(4), connectionString: proxy.ConnectionString);
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of("0"), CreateMode.Ephemeral, cancellationToken: Ct);
        var sessionId = zk.SessionId;
        var recorder = new EventRecorder();
        await zk.GetDataAsync(root, recorder.Watcher, Ct);
        var pending = zk.GetDataAsync("/", cancellationToken: Ct);

        proxy.DropConnections();
        await OperationTests.WaitUntilAsync(() => zk.State == ZooKeeperState.Connected && proxy.OpenConnections > 0);
        // A change made while reconnecting is caught up by setWatches (mzxid > relativeZxid): no event is lost.
        await writer.SetDataAsync(root, Bytes.Of("1"), cancellationToken: Ct);

        Assert.Equal(new WatchedEvent(WatchedEventType.NodeDataChanged, ZooKeeperState.Connected, root), await recorder.NextAsync());
        Assert.Equal(sessionId, zk.SessionId);
        Assert.Equal(sessionId, (await writer.ExistsAsync(root, cancellationToken: Ct))!.EphemeralOwner);
        try
        {
            await pending;
        }
        catch (ConnectionLossException)
        {
            // a request in flight when the connection dropped fails with ConnectionLoss; that is the contract
        }
    }

    [Fact]
    public async Task Unreachable_server_fails_connect_with_the_connection_string_and_timeout()
    {
        var port = FreePorts.Take(1)[0];
        var options = new ZooKeeperClientOptions { ConnectionString = $"127.0.0.1:{port}", ConnectionTimeout = TimeSpan.FromSeconds(1) };

        var error = await Assert.ThrowsAsync<ConnectionLossException>(() => ZooKeeperClient.ConnectAsync(options, Ct));

        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.Contains("1 s", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_connection_strings_are_rejected_with_the_reason()
    {
        foreach (var (text, fragment) in new[] { ("", "empty"), ("127.0.0.1:99999", "invalid port"), ("a:1,,b:2", "empty server"), ("host:1/bad/", "chroot") })
        {
            var error = Assert.ThrowsAny<Exception>(() => ZooKeeperConnectionString.Parse(text));
            Assert.Contains(fragment, error.Message, StringComparison.OrdinalIgnoreCase);
        }

        var parsed = ZooKeeperConnectionString.Parse("a:1, b ,[::1]:3/app/root");
        Assert.Equal([("a", 1), ("b", 2181), ("::1", 3)], parsed.Servers);
        Assert.Equal("/app/root", parsed.Chroot);
    }

    [Fact]
    public async Task Idle_client_pings_and_keeps_a_short_session_alive()
    {
        await using var observer = await fixture.ConnectAsync();
        await using var zk = await fixture.ConnectAsync(sessionTimeout: TimeSpan.FromMilliseconds(600));
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), CreateMode.Ephemeral, cancellationToken: Ct);

        await Task.Delay(TimeSpan.FromSeconds(3), Ct); // five session timeouts of silence from the caller

        Assert.Equal(ZooKeeperState.Connected, zk.State);
        Assert.NotNull(await observer.ExistsAsync(root, cancellationToken: Ct));
    }
}

/// <summary>Server restarts need a server of their own, so they do not disturb other test classes.</summary>
public sealed class ServerRestartTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Watches_survive_a_server_restart_within_the_session_and_auth_is_resent()
    {
        // A session that outlives a slow restart: on a loaded machine the JVM can take longer than the 4 s the default tick allows
        // to come back, and the session would expire instead of resuming — which is another test.
        await using var server = await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions { MaxSessionTimeoutMs = 30_000 }, Ct);
        var options = new ZooKeeperClientOptions { ConnectionString = server.ConnectionString, SessionTimeout = TimeSpan.FromSeconds(20), Digest = "bob:pw" };
        await using var zk = await ZooKeeperClient.ConnectAsync(options, Ct);
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of("0"), acl: ZooKeeperAcl.CreatorAll, cancellationToken: Ct);
        await zk.CreateAsync(root + "-eph", Bytes.Of(""), CreateMode.Ephemeral, cancellationToken: Ct);
        var data = new EventRecorder();
        var created = new EventRecorder();
        await zk.GetDataAsync(root, data.Watcher, Ct);
        await zk.ExistsAsync(root + "-later", created.Watcher, Ct);
        var sessionId = zk.SessionId;

        server.Kill();
        await OperationTests.WaitUntilAsync(() => zk.State == ZooKeeperState.Disconnected);
        await server.RestartAsync(Ct);
        await OperationTests.WaitUntilAsync(() => zk.State == ZooKeeperState.Connected, TimeSpan.FromSeconds(30));

        Assert.Equal(sessionId, zk.SessionId);
        // Auth was re-sent: the creator-only node is still readable and writable.
        await zk.SetDataAsync(root, Bytes.Of("1"), cancellationToken: Ct);
        Assert.Equal(new WatchedEvent(WatchedEventType.NodeDataChanged, ZooKeeperState.Connected, root), await data.NextAsync());
        await zk.CreateAsync(root + "-later", Bytes.Of(""), cancellationToken: Ct);
        Assert.Equal(WatchedEventType.NodeCreated, (await created.NextAsync()).Type);
        Assert.Equal(sessionId, (await zk.ExistsAsync(root + "-eph", cancellationToken: Ct))!.EphemeralOwner);
    }

    [Fact]
    public async Task Requests_during_an_outage_fail_with_connection_loss_and_never_hang()
    {
        await using var server = await ZooKeeperServer.StartAsync(cancellationToken: Ct);
        await using var zk = await ZooKeeperClient.ConnectAsync(server.ConnectionString, TimeSpan.FromSeconds(2), Ct);

        server.Kill();
        await OperationTests.WaitUntilAsync(() => zk.State == ZooKeeperState.Disconnected);

        var error = await Assert.ThrowsAsync<ConnectionLossException>(() => zk.ExistsAsync("/", cancellationToken: Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(ZooKeeperErrorCode.ConnectionLoss, error.Code);
        Assert.True(error.IsTransient);
    }
}

public sealed class EnsembleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Client_moves_to_another_server_without_losing_its_session_when_its_server_is_killed()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync(3, cancellationToken: Ct);
        await using var zk = await ZooKeeperClient.ConnectAsync(new ZooKeeperClientOptions
        {
            ConnectionString = ensemble.ConnectionString,
            SessionTimeout = TimeSpan.FromSeconds(4),
            ConnectionTimeout = TimeSpan.FromSeconds(15),
        }, Ct);
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of("0"), CreateMode.Ephemeral, cancellationToken: Ct);
        var recorder = new EventRecorder();
        await zk.GetDataAsync(root, recorder.Watcher, Ct);
        var sessionId = zk.SessionId;
        var first = zk.ConnectedServer;
        var victim = ensemble.Members.Single(m => m.ConnectionString == first);

        victim.Kill();
        await OperationTests.WaitUntilAsync(() => zk.State == ZooKeeperState.Connected && zk.ConnectedServer != first, TimeSpan.FromSeconds(30));

        Assert.Equal(sessionId, zk.SessionId);
        var survivor = ensemble.Members.First(m => m != victim);
        await using var other = await ZooKeeperClient.ConnectAsync(survivor.ConnectionString, TimeSpan.FromSeconds(4), Ct);
        Assert.Equal(sessionId, (await other.ExistsAsync(root, cancellationToken: Ct))!.EphemeralOwner);
        await other.SetDataAsync(root, Bytes.Of("1"), cancellationToken: Ct);
        Assert.Equal(WatchedEventType.NodeDataChanged, (await recorder.NextAsync()).Type);
        await zk.SetDataAsync(root, Bytes.Of("2"), cancellationToken: Ct);
    }
}
