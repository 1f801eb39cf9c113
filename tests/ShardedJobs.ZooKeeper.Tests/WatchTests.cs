using Xunit;

namespace ShardedJobs.ZooKeeper.Tests;

public sealed class WatchTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Data_watch_fires_once_per_registration()
    {
        await using var zk = await fixture.ConnectAsync();
        await using var writer = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of("0"), cancellationToken: Ct);
        var recorder = new EventRecorder();

        await zk.GetDataAsync(root, recorder.Watcher, Ct);
        await writer.SetDataAsync(root, Bytes.Of("1"), cancellationToken: Ct);
        await writer.SetDataAsync(root, Bytes.Of("2"), cancellationToken: Ct);

        Assert.Equal(new WatchedEvent(WatchedEventType.NodeDataChanged, ZooKeeperState.Connected, root), await recorder.NextAsync());
        await recorder.AssertNoneAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task Exists_on_a_missing_node_leaves_a_watch_that_fires_on_creation()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        var recorder = new EventRecorder();

        Assert.Null(await zk.ExistsAsync(root, recorder.Watcher, Ct));
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);

        Assert.Equal(new WatchedEvent(WatchedEventType.NodeCreated, ZooKeeperState.Connected, root), await recorder.NextAsync());
    }

    [Fact]
    public async Task GetData_on_a_missing_node_leaves_no_watch()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        var recorder = new EventRecorder();

        await Assert.ThrowsAsync<NoNodeException>(() => zk.GetDataAsync(root, recorder.Watcher, Ct));
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);

        await recorder.AssertNoneAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task Child_watch_fires_on_add_and_delete_and_data_plus_child_watch_fire_once_on_delete()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);
        var children = new EventRecorder();
        var node = new EventRecorder();

        await zk.GetChildrenAsync(root, children.Watcher, Ct);
        await zk.CreateAsync(root + "/a", Bytes.Of(""), cancellationToken: Ct);
        Assert.Equal(WatchedEventType.NodeChildrenChanged, (await children.NextAsync()).Type);

        await zk.GetChildrenAsync(root, children.Watcher, Ct);
        await zk.GetDataAsync(root + "/a", node.Watcher, Ct);
        await zk.ExistsAsync(root + "/a", node.Watcher, Ct);
        await zk.DeleteAsync(root + "/a", cancellationToken: Ct);

        Assert.Equal(new WatchedEvent(WatchedEventType.NodeDeleted, ZooKeeperState.Connected, root + "/a"), await node.NextAsync());
        Assert.Equal(new WatchedEvent(WatchedEventType.NodeChildrenChanged, ZooKeeperState.Connected, root), await children.NextAsync());
        await node.AssertNoneAsync(TimeSpan.FromMilliseconds(200)); // one registration, one event
    }

    [Fact]
    public async Task Events_arrive_in_the_order_of_the_changes_and_before_the_writers_reply_on_its_own_connection()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);
        var order = new List<string>();
        var paths = Enumerable.Range(0, 50).Select(i => $"{root}/n{i:D2}").ToArray();
        foreach (var path in paths)
        {
            await zk.ExistsAsync(path, e => { lock (order) { order.Add(e.Path!); } }, Ct);
        }

        foreach (var path in paths)
        {
            await zk.CreateAsync(path, Bytes.Of(""), cancellationToken: Ct);
            // The notification precedes the reply on the wire, and the event loop is FIFO.
        }

        await OperationTests.WaitUntilAsync(() => { lock (order) { return order.Count == paths.Length; } });
        Assert.Equal(paths, order);
    }

    [Fact]
    public async Task A_slow_watcher_does_not_stall_requests()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        using var release = new ManualResetEventSlim();
        await zk.ExistsAsync(root, _ => release.Wait(TimeSpan.FromSeconds(10)), Ct);

        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct); // fires the blocking watcher
        for (var i = 0; i < 20; i++)
        {
            await zk.GetDataAsync(root, cancellationToken: Ct); // replies still flow while the event loop is blocked
        }

        release.Set();
    }

    [Fact]
    public async Task A_throwing_watcher_does_not_stop_later_events()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        var recorder = new EventRecorder();
        await zk.ExistsAsync(root, _ => throw new InvalidOperationException("watcher bug"), Ct);
        await zk.ExistsAsync(root, recorder.Watcher, Ct);

        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);

        Assert.Equal(WatchedEventType.NodeCreated, (await recorder.NextAsync()).Type);
    }
}
