using ShardedJobs.Coordination;

namespace ShardedJobs.TestSupport.Runtime;

/// <summary>
/// Several ShardedJobs instances on one registry, as the shared scenario suites see them: the embedded registry on fake time
/// (<see cref="TestCluster"/>) or a real ZooKeeper server in real time (<see cref="ZooKeeperTestCluster"/>). The same scenario
/// runs on both, so the embedded mode cannot drift from the real one.
/// </summary>
public interface IClusterHarness : IAsyncDisposable
{
    ExecutionLog Log { get; }

    JobScript Script { get; }

    /// <summary>The session timeout the instances run with.</summary>
    TimeSpan SessionTimeout { get; }

    /// <summary>The server's tick: it deletes a dead session's ephemerals between T and T + tick after the last frame.</summary>
    TimeSpan TickTime { get; }

    /// <summary>Now, on the instances' clock.</summary>
    DateTimeOffset Now { get; }

    IReadOnlyList<TestNode> Nodes { get; }

    /// <summary>A session of its own, for assertions on the registry.</summary>
    IRegistry Observer { get; }

    Task<TestNode> StartNodeAsync(string instanceId, IReadOnlyList<ShardedJobDefinition> jobs, Action<ShardedJobsOptions>? configure = null);

    /// <summary>A SIGKILL, as the cluster sees it: the connection goes silent and the node stops dead; the session expires after T.</summary>
    Task CrashAsync(TestNode node);

    /// <summary>A partition: the node lives on (and fences itself), its connection is cut until <see cref="RestoreAsync"/>.</summary>
    Task CutAsync(TestNode node);

    Task RestoreAsync(TestNode node);

    /// <summary>Lets time pass until <paramref name="time"/> (fake time: advances; real time: waits).</summary>
    Task AdvanceToAsync(DateTimeOffset time);

    /// <summary>Lets time pass until <paramref name="condition"/> holds on the execution log and returns when it did; fails
    /// (naming <paramref name="what"/>) if it does not within <paramref name="within"/> of the instances' time.</summary>
    Task<DateTimeOffset> RunUntilAsync(Func<IReadOnlyList<ItemRun>, bool> condition, TimeSpan within, string what);
}
