using ShardedJobs.TestSupport.Runtime;

namespace ShardedJobs.IntegrationTests;

// The failover scenarios against a real ZooKeeper 3.8 server in real time (session 2 s, tickTime 200 ms), one server per
// test; the three classes run in parallel. The same scenarios run on the embedded registry with fake time in ShardedJobs.Tests.
public sealed class ZooKeeperFailoverCrashesTests : FailoverCrashesScenarios
{
    protected override async Task<IClusterHarness> StartHarnessAsync() => await ZooKeeperTestCluster.StartAsync();
}

public sealed class ZooKeeperFailoverCascadesTests : FailoverCascadesScenarios
{
    protected override async Task<IClusterHarness> StartHarnessAsync() => await ZooKeeperTestCluster.StartAsync();
}

public sealed class ZooKeeperFailoverBoundariesTests : FailoverBoundariesScenarios
{
    protected override async Task<IClusterHarness> StartHarnessAsync() => await ZooKeeperTestCluster.StartAsync();
}
