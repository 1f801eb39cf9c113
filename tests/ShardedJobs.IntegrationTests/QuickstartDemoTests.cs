using System.Text.RegularExpressions;
using ShardedJobs.TestSupport;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.IntegrationTests;

/// <summary>
/// The README's multi-node demo, run as a newcomer runs it (<c>--nodes 3 --kill-after 12s</c>, one process, the embedded
/// registry), checked from its execution log: the crashed node's unfinished item is compensated by another node as soon as its
/// session has expired, with the original fire time and before that item's first re-sharded fire; the next fires are
/// re-sharded over the two survivors; and every item of every fire completes exactly once.
/// </summary>
public sealed class QuickstartDemoTests
{
    private static readonly TimeSpan SessionTimeout = TimeSpan.FromSeconds(4); // the demo's

    [Fact]
    public async Task The_multi_node_demo_compensates_the_crashed_node_s_item_at_once_then_reshards_and_runs_every_item_once()
    {
        var log = Path.Combine(Path.GetTempPath(), $"shardedjobs-demo-{Guid.NewGuid():N}.tsv");
        try
        {
            await using var demo = await SampleProcess.StartAsync("demo", ["--nodes", "3", "--kill-after", "12s", "--log", log]);
            await demo.WaitForExitAsync(TimeSpan.FromSeconds(90));
            var output = demo.Output();
            Assert.True(demo.ExitCode == 0, $"exit code {demo.ExitCode}\n{output}");

            var crash = Regex.Match(output, @"(?<node>node-\d) CRASHES mid-execution \(item (?<item>\d) unfinished\)");
            Assert.True(crash.Success, output);
            var victim = crash.Groups["node"].Value;
            var lines = ExecutionLogFileReader.Read(log, "OrderSync");
            var report = string.Join("\n", lines.Select(l => $"{l.Event} {l.Time:HH:mm:ss.fff} {l.Instance} item {l.Item} fire {l.FireTime:HH:mm:ss} {(l.IsFailover ? "FAILOVER " : "")}{l.Outcome}")) + "\n" + output;

            // The victim's last start has no end: that item was interrupted by the crash, and the victim wrote nothing after.
            var interrupted = Assert.Single(lines, l => l.Instance == victim && l.Event == "start"
                && !lines.Any(e => e.Event == "end" && e.Instance == victim && e.Item == l.Item && e.FireTime == l.FireTime));
            Assert.Equal(int.Parse(crash.Groups["item"].Value, System.Globalization.CultureInfo.InvariantCulture), interrupted.Item);
            Assert.Equal(interrupted.Time, lines.Where(l => l.Instance == victim).Max(l => l.Time));

            // Compensated on another node once the session expired (not before), with the original fire time, and before
            // the item's first regular run on a survivor (the re-sharded fire): failover, not the next trigger.
            var compensation = Assert.Single(lines, l => l.Event == "start" && l.IsFailover && l.Item == interrupted.Item && l.FireTime == interrupted.FireTime);
            Assert.NotEqual(victim, compensation.Instance);
            Assert.InRange(compensation.Time - interrupted.Time, SessionTimeout - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(12));
            var resharded = lines.Where(l => l.Event == "start" && !l.IsFailover && l.Item == interrupted.Item && l.Instance != victim && l.Time > interrupted.Time).MinBy(l => l.Time);
            Assert.NotNull(resharded);
            Assert.True(compensation.Time < resharded.Time, report);

            // Later fires run on the two survivors only.
            var expired = interrupted.Time + SessionTimeout + TimeSpan.FromSeconds(2);
            var later = lines.Where(l => l.Event == "start" && !l.IsFailover && l.FireTime > expired).ToList();
            Assert.NotEmpty(later);
            Assert.DoesNotContain(later, l => l.Instance == victim);
            Assert.Equal(2, later.Select(l => l.Instance).Distinct().Count());

            // Every item of every fire (but the last, which the stop may cut short) completed exactly once.
            var fires = lines.Select(l => l.FireTime).Distinct().Order().ToList();
            Assert.True(fires.Count >= 6, report);
            foreach (var fire in fires.SkipLast(1))
            {
                for (var item = 0; item < 3; item++)
                {
                    var completed = lines.Count(l => l.Event == "end" && l.Outcome == "ok" && l.FireTime == fire && l.Item == item);
                    Assert.True(completed == 1, $"item {item} of fire {fire:HH:mm:ss} completed {completed} times\n{report}");
                }
            }

            Assert.Contains("completed exactly once: none lost, none twice.", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(log);
        }
    }
}
