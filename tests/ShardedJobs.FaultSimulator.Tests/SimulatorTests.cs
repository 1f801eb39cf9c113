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

    // Twenty seeds of ten simulated minutes (a few seconds here): every job shape the plans make (short and long items,
    // failover and misfire on and off, 1-10 items, items ignoring cancellation, clock skews), without a fault. The runs under
    // faults are the long command (eng/simulate.sh); their figures are in the README.
    [Fact]
    public void Without_faults_every_seed_keeps_every_rule_and_leaves_a_clean_registry()
    {
        WarmUp.Value.ToString(); // the first run in a process also pays for the JIT
        var failed = new List<string>();
        var fires = 0;
        foreach (var seed in Enumerable.Range(1, 20))
        {
            var result = FaultSimulation.Run(seed, new SimulationOptions { Duration = TimeSpan.FromMinutes(10), MeanFaultGap = TimeSpan.FromDays(365) });
            Assert.Empty(result.FaultsApplied);
            fires += result.History.FiresChecked;
            if (!result.Ok)
            {
                failed.Add(result.Describe());
            }
        }

        Assert.True(failed.Count == 0, string.Join("\n\n", failed));
        Assert.True(fires > 20 * 20, $"only {fires} fires checked");
    }
}
