using ShardedJobs.TestSupport.Runtime;

namespace ShardedJobs.Tests.Runtime;

// The failover scenarios on the embedded registry with fake time (the same scenarios run on real ZooKeeper in
// ShardedJobs.IntegrationTests).
public sealed class EmbeddedFailoverCrashesTests : FailoverCrashesScenarios
{
    protected override Task<IClusterHarness> StartHarnessAsync() => Task.FromResult<IClusterHarness>(new TestCluster());
}

public sealed class EmbeddedFailoverCascadesTests : FailoverCascadesScenarios
{
    protected override Task<IClusterHarness> StartHarnessAsync() => Task.FromResult<IClusterHarness>(new TestCluster());
}

public sealed class EmbeddedFailoverBoundariesTests : FailoverBoundariesScenarios
{
    protected override Task<IClusterHarness> StartHarnessAsync() => Task.FromResult<IClusterHarness>(new TestCluster());
}
