using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using ShardedJobs.Coordination;
using ShardedJobs.Execution;
using ShardedJobs.Hosting;

namespace ShardedJobs.TestSupport.Runtime;

/// <summary>How to start one <see cref="TestNode"/>.</summary>
public sealed record TestNodeSetup
{
    public required string InstanceId { get; init; }

    /// <summary>The node's server IP (distinct per node lets a test disable one server).</summary>
    public string? ServerIp { get; init; }

    public required IReadOnlyList<ShardedJobDefinition> Jobs { get; init; }

    public required TimeProvider Time { get; init; }

    public required ExecutionLog Log { get; init; }

    public required JobScript Script { get; init; }

    /// <summary>The shared embedded tree; null with <see cref="ZooKeeperConnectionString"/>.</summary>
    public InMemoryRegistryServer? Embedded { get; init; }

    public string? ZooKeeperConnectionString { get; init; }

    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(4);

    public Action<ShardedJobsOptions>? Configure { get; init; }

    public Action<IServiceCollection>? Services { get; init; }

    /// <summary>False: no logging at all (benchmarks, where capturing every line would be the cost measured).</summary>
    public bool CaptureLogs { get; init; } = true;

    /// <summary>Wraps the node's own registry session before the request counter (the fault simulator's faults go here).</summary>
    public Func<IRegistry, IRegistry>? WrapRegistry { get; init; }
}

/// <summary>
/// One ShardedJobs instance in the test process, built exactly as an application builds it (<c>AddShardedJobsRuntime</c> on a
/// service collection), with its registry wrapped in a <see cref="CountingRegistry"/> and its logs captured.
/// </summary>
public sealed class TestNode : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly ShardedJobsHost _host;
    private CountingRegistry? _registry;
    private IRegistry? _session;

    private TestNode(TestNodeSetup setup, ServiceProvider services)
    {
        Setup = setup;
        _services = services;
        _host = services.GetRequiredService<ShardedJobsHost>();
        Logs = services.GetRequiredService<FakeLogCollector>();
    }

    public TestNodeSetup Setup { get; }

    public string InstanceId => Setup.InstanceId;

    public IServiceProvider Services => _services;

    public IJobOperator Operator => _services.GetRequiredService<IJobOperator>();

    public FakeLogCollector Logs { get; }

    /// <summary>The node's registry, counting requests.</summary>
    public CountingRegistry Registry => _registry ?? throw new InvalidOperationException("not started");

    /// <summary>The embedded registry session under the counter (fault hooks: Suspend, Resume, ExpireSession).</summary>
    public InMemoryRegistry Embedded => (InMemoryRegistry)(_session ?? throw new InvalidOperationException("not started"));

    internal ShardedJobsHost Host => _host;

    internal JobRuntime Job(string name) => _host.GetJob(name);

    /// <summary>No fire is starting, no view is refreshing, no registry event waits for delivery.</summary>
    internal bool IsSettled => _host.IsSettled;

    public static async Task<TestNode> StartAsync(TestNodeSetup setup)
    {
        var services = new ServiceCollection();
        var collector = new FakeLogCollector();
        services.AddSingleton(collector);
        services.AddLogging(logging =>
        {
            if (setup.CaptureLogs)
            {
                logging.SetMinimumLevel(LogLevel.Debug).AddProvider(new FakeLoggerProvider(collector)).AddProvider(new TestOutputLoggerProvider(setup.InstanceId));
            }
        });
        services.AddSingleton(setup.Time);
        services.AddSingleton(setup.Log);
        services.AddSingleton(setup.Script);
        services.AddScoped<RecordingJob>();
        if (setup.Embedded is not null)
        {
            services.AddSingleton(setup.Embedded);
        }

        TestNode? node = null;
        services.AddSingleton<RegistryDecorator>(_ => registry =>
        {
            node!._session = registry;
            return node._registry = new CountingRegistry(setup.WrapRegistry?.Invoke(registry) ?? registry);
        });
        services.AddShardedJobsRuntime(setup.Jobs, options =>
        {
            options.InstanceId = setup.InstanceId;
            options.ServerIp = setup.ServerIp ?? "10.0.0.1";
            options.ZooKeeper.ConnectionString = setup.ZooKeeperConnectionString;
            options.ZooKeeper.SessionTimeout = setup.SessionTimeout;
            options.ZooKeeper.ConnectionTimeout = TimeSpan.FromSeconds(15);
            options.ShutdownTimeout = TimeSpan.FromSeconds(10);
            options.Namespace = "tests";
            setup.Configure?.Invoke(options);
        });
        setup.Services?.Invoke(services);
        node = new TestNode(setup, services.BuildServiceProvider());
        await node._host.StartAsync(CancellationToken.None).ConfigureAwait(false);
        return node;
    }

    /// <summary>How long a stop, crash or dispose may take before the test fails instead of hanging the run.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>A graceful stop: items cancelled and awaited, registration removed, session closed.</summary>
    public Task StopAsync() => Bounded(_host.StopAsync(CancellationToken.None), "stopping");

    /// <summary>
    /// A crash: the registry connection is cut first (embedded: suspended; ZooKeeper: by <paramref name="cutConnection"/>), then
    /// the node stops dead. Its session expires after the session timeout, as after a SIGKILL.
    /// </summary>
    public async Task CrashAsync(Func<Task>? cutConnection = null)
    {
        if (cutConnection is not null)
        {
            await cutConnection().ConfigureAwait(false);
        }
        else
        {
            Embedded.Suspend();
        }

        await Bounded(_host.AbandonAsync(), "crashing").ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await Bounded(_host.DisposeAsync().AsTask(), "disposing").ConfigureAwait(false);
        await _services.DisposeAsync().ConfigureAwait(false);
    }

    private async Task Bounded(Task task, string what)
    {
        try
        {
            await task.WaitAsync(Bound).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"Node {InstanceId} hung {what} (over {Bound}): a bug, not a slow machine.", e);
        }
    }
}
