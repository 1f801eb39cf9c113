using ShardedJobs.TestSupport.Simulation;
using Xunit;

namespace ShardedJobs.FaultSimulator.Tests;

/// <summary>
/// The fault simulator's own guarantees: a seed is its plan (jobs, clock skews, every fault and its time), and a cluster that
/// meets no fault keeps every rule of the history checker and leaves a clean registry. The runs under faults are the long
/// command (<c>eng/simulate.sh</c>); their figures are in the README.
/// </summary>
public sealed class SimulatorTests
{
    private static readonly Lazy<SimulationResult> WarmUp = new(() =>
        FaultSimulation.Run(0, new SimulationOptions { Duration = TimeSpan.FromMinutes(3), MeanFaultGap = TimeSpan.FromDays(365) }));

    [Fact]
    public void A_seed_always_makes_the_same_plan_and_different_seeds_different_ones()
    {
        var one = FaultPlan.Create(42, TimeSpan.FromHours(1), 3, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(75));
        var again = FaultPlan.Create(42, TimeSpan.FromHours(1), 3, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(75));
        var other = FaultPlan.Create(43, TimeSpan.FromHours(1), 3, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(75));
        Assert.Equal(one.Describe(), again.Describe());
        Assert.NotEqual(one.Describe(), other.Describe());
        Assert.InRange(one.Faults.Count, 20, 100); // about one every 75 s for an hour
        Assert.Contains(one.Faults, f => f.Kind == FaultKind.Request);
    }

    // Few and short: the simulator's driver keeps a core busy while it waits for quiescence, and the test command runs the
    // real-time suites (ZooKeeper restarts, process kills) beside it.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Without_faults_every_seed_keeps_every_rule_and_leaves_a_clean_registry(int seed)
    {
        WarmUp.Value.ToString(); // a cold process JIT-compiles for long stretches, which the driver can take for quiescence
        var result = FaultSimulation.Run(seed, new SimulationOptions { Duration = TimeSpan.FromMinutes(10), MeanFaultGap = TimeSpan.FromDays(365) });
        Assert.Empty(result.FaultsApplied);
        Assert.True(result.Ok, result.Describe());
        Assert.True(result.History.FiresChecked > 20, result.Describe());
    }
}
