using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ShardedJobs.Coordination;

namespace ShardedJobs.TestSupport.Runtime;

/// <summary>
/// Several ShardedJobs instances in one test, on the embedded registry and fake time: one <see cref="InMemoryRegistryServer"/>
/// (so the instances see each other as on ZooKeeper), one <see cref="FakeTimeProvider"/> for the instances and the server,
/// one <see cref="ExecutionLog"/> as the oracle, and an observer session for reading the registry.
/// </summary>
public sealed class TestCluster : IClusterHarness
{
    /// <summary>A Monday, midnight UTC: fire times in tests are easy to read.</summary>
    public static readonly DateTimeOffset Epoch = new(2026, 1, 5, 0, 0, 0, TimeSpan.Zero);

    private readonly List<TestNode> _nodes = [];

    public TestCluster(TimeSpan? sessionTimeout = null)
    {
        Time = new FakeTimeProvider(Epoch);
        Server = new InMemoryRegistryServer(Time, sessionTimeout ?? TimeSpan.FromSeconds(4));
        Script = new JobScript(Time);
        Observer = Server.Connect();
    }

    public FakeTimeProvider Time { get; }

    public InMemoryRegistryServer Server { get; }

    public ExecutionLog Log { get; } = new();

    public JobScript Script { get; }

    /// <summary>A session of its own, for assertions on the registry.</summary>
    public IRegistry Observer { get; }

    public IReadOnlyList<TestNode> Nodes => _nodes;

    public TimeSpan SessionTimeout => Server.SessionTimeout;

    /// <summary>The embedded server expires a session exactly at its timeout.</summary>
    public TimeSpan TickTime => TimeSpan.Zero;

    public DateTimeOffset Now => Time.GetUtcNow();

    public Task<TestNode> StartNodeAsync(string instanceId, IReadOnlyList<ShardedJobDefinition> jobs, Action<ShardedJobsOptions>? configure) =>
        StartNodeAsync(instanceId, jobs, configure, serverIp: null, services: null);

    public Task CrashAsync(TestNode node) => node.CrashAsync();

    public Task CutAsync(TestNode node)
    {
        node.Embedded.Suspend();
        return Task.CompletedTask;
    }

    public Task RestoreAsync(TestNode node)
    {
        node.Embedded.Resume();
        return Task.CompletedTask;
    }

    public async Task<DateTimeOffset> RunUntilAsync(Func<IReadOnlyList<ItemRun>, bool> condition, TimeSpan within, string what)
    {
        var deadline = Now + within;
        while (true)
        {
            await SettleAsync().ConfigureAwait(false);
            if (condition(Log.Runs))
            {
                return Now;
            }

            if (Now >= deadline)
            {
                throw new TimeoutException($"Not within {within} of fake time: {what}. Execution log:\n{Log.Describe()}");
            }

            await AdvanceAsync(TimeSpan.FromMilliseconds(250)).ConfigureAwait(false);
        }
    }

    /// <param name="clockSkew">How far the node's clock is off the cluster's (the registry's): the same timers, another reading.</param>
    public async Task<TestNode> StartNodeAsync(string instanceId, IReadOnlyList<ShardedJobDefinition> jobs, Action<ShardedJobsOptions>? configure = null,
        string? serverIp = null, Action<IServiceCollection>? services = null, TimeSpan? clockSkew = null)
    {
        var node = await TestNode.StartAsync(new TestNodeSetup
        {
            InstanceId = instanceId,
            ServerIp = serverIp,
            Jobs = jobs,
            Time = clockSkew is { } skew && skew != TimeSpan.Zero ? new SkewedTimeProvider(Time, skew) : Time,
            Log = Log,
            Script = Script,
            Embedded = Server,
            SessionTimeout = Server.SessionTimeout,
            Configure = configure,
            Services = services,
        }).ConfigureAwait(false);
        _nodes.Add(node);
        await SettleAsync().ConfigureAwait(false);
        return node;
    }

    /// <summary>Moves fake time forward in small steps, letting the work each step triggers run before the next one.</summary>
    public async Task AdvanceAsync(TimeSpan by, TimeSpan? step = null)
    {
        var target = Time.GetUtcNow() + by;
        await AdvanceToAsync(target, step).ConfigureAwait(false);
    }

    public Task AdvanceToAsync(DateTimeOffset target) => AdvanceToAsync(target, null);

    public async Task AdvanceToAsync(DateTimeOffset target, TimeSpan? step)
    {
        var stride = step ?? TimeSpan.FromMilliseconds(250);
        while (Time.GetUtcNow() < target)
        {
            var next = Time.GetUtcNow() + stride;
            await SettleAsync().ConfigureAwait(false);
            Time.SetUtcNow(next < target ? next : target);
            await SettleAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Lets the work started by the last time step run before the next one: waits (a bounded real-time wait) until every node
    /// is settled — no fire starting, no view refreshing, no registry event undelivered — and the thread pool has drained.
    /// Without it, fake time could run ahead of the cluster and a fire would start a step late.
    /// </summary>
    public async Task SettleAsync()
    {
        // Two consecutive settled looks, a millisecond apart; bounded, for work that only fake time can move on.
        var quiet = 0;
        for (var i = 0; i < 100 && quiet < 2; i++)
        {
            await Task.Delay(1).ConfigureAwait(false);
            quiet = _nodes.All(n => n.IsSettled) ? quiet + 1 : 0;
        }
    }

    /// <summary>The next fire time after now for a cron (UTC), to advance to.</summary>
    public DateTimeOffset NextFire(string cron) => Scheduling.CronSchedule.Parse(cron, TimeZoneInfo.Utc).GetNextOccurrence(Time.GetUtcNow())!.Value;

    /// <summary>Item → owner, as the registry has it.</summary>
    public async Task<IReadOnlyDictionary<int, string>> AssignmentAsync(string job, int shards)
    {
        var nodes = new JobNodes(job);
        var owners = new Dictionary<int, string>();
        for (var item = 0; item < shards; item++)
        {
            if (await Observer.GetStringAsync(nodes.ItemInstance(item)).ConfigureAwait(false) is { } owner)
            {
                owners[item] = owner;
            }
        }

        return owners;
    }

    /// <summary>Polls (real time) until <paramref name="condition"/> holds; fails with <paramref name="what"/> otherwise.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (!await condition().ConfigureAwait(false))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for: {what}");
            }

            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    public static Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        WaitUntilAsync(() => Task.FromResult(condition()), what, timeout);

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync().ConfigureAwait(false);
        }

        await Observer.DisposeAsync().ConfigureAwait(false);
    }
}
