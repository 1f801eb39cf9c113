using ShardedJobs.Coordination;

namespace ShardedJobs.TestSupport.Runtime;

/// <summary>
/// ShardedJobs instances in the test process against one real ZooKeeper server, in real time, each through its own
/// <see cref="TcpProxy"/> so a test can cut one instance off as a crash or a partition would.
/// </summary>
public sealed class ZooKeeperTestCluster : IClusterHarness
{
    private readonly List<(TestNode Node, TcpProxy Proxy)> _nodes = [];
    private readonly string _namespace = "it-" + Guid.NewGuid().ToString("N")[..8];
    private IRegistry? _observer;

    private ZooKeeperTestCluster(ZooKeeperServer server, TimeSpan sessionTimeout)
    {
        Server = server;
        SessionTimeout = sessionTimeout;
        Script = new JobScript(TimeProvider.System);
    }

    public ZooKeeperServer Server { get; }

    public ExecutionLog Log { get; } = new();

    public JobScript Script { get; }

    public TimeSpan SessionTimeout { get; }

    public TimeSpan TickTime => TimeSpan.FromMilliseconds(Server.TickTimeMs);

    public DateTimeOffset Now => DateTimeOffset.UtcNow;

    public IReadOnlyList<TestNode> Nodes => [.. _nodes.Select(n => n.Node)];

    public IRegistry Observer => _observer ?? throw new InvalidOperationException("not started");

    /// <summary>A server with tickTime 200 ms, so a 2 s session is within its 2–20 tick bounds.</summary>
    public static async Task<ZooKeeperTestCluster> StartAsync(TimeSpan? sessionTimeout = null)
    {
        var cluster = new ZooKeeperTestCluster(await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions { TickTimeMs = 200 }).ConfigureAwait(false),
            sessionTimeout ?? TimeSpan.FromSeconds(2));
        cluster._observer = await ZooKeeperRegistry.ConnectAsync(new ZooKeeperRegistryOptions
        {
            ConnectionString = cluster.Server.ConnectionString,
            Namespace = cluster._namespace,
            SessionTimeout = TimeSpan.FromSeconds(4),
            ConnectionTimeout = TimeSpan.FromSeconds(15),
        }).ConfigureAwait(false);
        return cluster;
    }

    public async Task<TestNode> StartNodeAsync(string instanceId, IReadOnlyList<ShardedJobDefinition> jobs, Action<ShardedJobsOptions>? configure = null)
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
            Configure = options =>
            {
                options.Namespace = _namespace;
                configure?.Invoke(options);
            },
        }).ConfigureAwait(false);
        _nodes.Add((node, proxy));
        return node;
    }

    public Task CrashAsync(TestNode node)
    {
        var proxy = ProxyOf(node);
        return node.CrashAsync(() =>
        {
            proxy.Partition();
            return Task.CompletedTask;
        });
    }

    public Task CutAsync(TestNode node)
    {
        ProxyOf(node).Partition();
        return Task.CompletedTask;
    }

    public Task RestoreAsync(TestNode node)
    {
        ProxyOf(node).Heal();
        return Task.CompletedTask;
    }

    public async Task AdvanceToAsync(DateTimeOffset time)
    {
        var wait = time - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait).ConfigureAwait(false);
        }
    }

    public async Task<DateTimeOffset> RunUntilAsync(Func<IReadOnlyList<ItemRun>, bool> condition, TimeSpan within, string what)
    {
        var deadline = DateTimeOffset.UtcNow + within;
        while (true)
        {
            if (condition(Log.Runs))
            {
                return DateTimeOffset.UtcNow;
            }

            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TimeoutException($"Not within {within}: {what}. Execution log:\n{Log.Describe()}");
            }

            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (node, proxy) in _nodes)
        {
            await node.DisposeAsync().ConfigureAwait(false);
            await proxy.DisposeAsync().ConfigureAwait(false);
        }

        if (_observer is not null)
        {
            await _observer.DisposeAsync().ConfigureAwait(false);
        }

        await Server.DisposeAsync().ConfigureAwait(false);
    }

    private TcpProxy ProxyOf(TestNode node) => _nodes.Single(n => n.Node == node).Proxy;
}
