using System.Globalization;
using ShardedJobs.TestSupport.Chaos;

namespace ShardedJobs.Benchmarks;

/// <summary>
/// The long chaos run (issue "Faults", part 3): <see cref="ChaosRun"/> with a given number of faults, seed and fault rate,
/// against a 3-server ZooKeeper ensemble and three sample processes. Prints every fault as it is injected, each violation, a JSON
/// line, and last <c>chaos: N faults, F fires checked, D duplicates, O overlaps, L lost</c>; exits 1 when the history checker
/// or the registry audit found anything, or an app exited on its own.
/// </summary>
internal static class ChaosBenchmark
{
    public static async Task<int> RunAsync(int faults, int seed, double minGapSeconds, double maxGapSeconds)
    {
        var result = await ChaosRun.RunAsync(new ChaosOptions
        {
            Seed = seed,
            Faults = faults,
            MinGap = TimeSpan.FromSeconds(minGapSeconds),
            MaxGap = TimeSpan.FromSeconds(Math.Max(minGapSeconds, maxGapSeconds)),
            Output = line => Console.WriteLine(line),
        });
        return result.Passed ? 0 : 1;
    }

    public static double Seconds(string text) => double.Parse(text, CultureInfo.InvariantCulture);
}
