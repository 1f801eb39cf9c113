using ShardedJobs.TestSupport;
using ShardedJobs.TestSupport.Runtime;

namespace ShardedJobs.IntegrationTests;

/// <summary>
/// ShardedJobs instances in this process against one real ZooKeeper server (real time), each through its own
/// <see cref="TcpProxy"/> so a test can cut one instance off as a crash or partition would.
/// </summary>
internal sealed class ZooKeeperCluster : IAsyncDisposable
{
    private readonly List<(TestNode Node, TcpProxy Proxy)> _nodes = [];
    private readonly string _namespace = "it-" + Guid.NewGuid().ToString("N")[..8];

    private ZooKeeperCluster(ZooKeeperServer server)
    {
        Server = server;
        Script = new JobScript(TimeProvider.System);
    }

    /// <summary>The negotiated session timeout: the server's tickTime is 200 ms, so 2 s is within its 2–20 tick bounds.</summary>
    public static TimeSpan SessionTimeout => TimeSpan.FromSeconds(2);

    public ZooKeeperServer Server { get; }

    public ExecutionLog Log { get; } = new();

    public JobScript Script { get; }

    public IReadOnlyList<TestNode> Nodes => [.. _nodes.Select(n => n.Node)];

    public static async Task<ZooKeeperCluster> StartAsync() =>
        new(await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions { TickTimeMs = 200 }));

    public async Task<TestNode> StartNodeAsync(string instanceId, IReadOnlyList<ShardedJobDefinition> jobs)
    {
        var proxy = new TcpProxy(Server.ClientPort);
        var node = await TestNode.StartAsync(new TestNodeSetup
        {
            InstanceId = instanceId,
            Jobs = jobs,
            Time = TimeProvider.System,
            Log = Log,
            Script = Script,
            ZooKeeperConnectionString = proxy.ConnectionString,
            SessionTimeout = SessionTimeout,
            Configure = options => options.Namespace = _namespace,
        });
        _nodes.Add((node, proxy));
        return node;
    }

    /// <summary>Cuts the node off from ZooKeeper and stops it dead; the server expires its session after the timeout.</summary>
    public Task CrashAsync(TestNode node)
    {
        var proxy = _nodes.Single(n => n.Node == node).Proxy;
        return node.CrashAsync(() =>
        {
            proxy.Partition();
            return Task.CompletedTask;
        });
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (node, proxy) in _nodes)
        {
            await node.DisposeAsync();
            await proxy.DisposeAsync();
        }

        await Server.DisposeAsync();
    }
}
