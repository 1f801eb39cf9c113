using ShardedJobs.TestSupport.Chaos;
using Xunit;

namespace ShardedJobs.IntegrationTests;

/// <summary>The chaos run gets the machine to itself: its faults and their timeline are real time, judged to the session timeout.</summary>
[CollectionDefinition(nameof(ChaosCollection), DisableParallelization = true)]
public sealed class ChaosCollection;

/// <summary>
/// The short chaos run: a fixed seed, 20 faults one every 1–3 s (SIGKILL and SIGTERM with restarts under the same id, SIGSTOP,
/// partitions, a ZooKeeper server killed, its leader paused, the quorum lost) over three sample processes and a 3-server
/// ensemble; then every fire judged by the history checker (nothing completed twice, no overlap, nothing lost) and the registry
/// audited. Fails on any violation, with each one and the paths of the apps' outputs to trace it in. <c>bench/chaos.sh</c> runs
/// the long form.
/// </summary>
[Collection(nameof(ChaosCollection))]
public sealed class ChaosTests
{
    [Fact]
    public async Task Twenty_seeded_faults_leave_no_duplicate_no_overlap_no_lost_item_and_a_clean_registry()
    {
        var lines = new List<string>();
        var result = await ChaosRun.RunAsync(new ChaosOptions
        {
            Seed = 20261202,
            Faults = 20,
            Output = line =>
            {
                lock (lines)
                {
                    lines.Add(line);
                }

                TestContext.Current.TestOutputHelper?.WriteLine(line);
            },
        }, TestContext.Current.CancellationToken);

        Assert.True(result.Passed, string.Join("\n", lines));
        Directory.Delete(result.Directory, recursive: true); // kept when the run failed, to trace its violations
    }
}
