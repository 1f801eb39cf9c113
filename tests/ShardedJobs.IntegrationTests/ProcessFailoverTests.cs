using System.Globalization;
using ShardedJobs.TestSupport;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.IntegrationTests;

/// <summary>
/// The sample as three OS processes against real ZooKeeper, one SIGKILLed mid-execution; the oracle is the execution log the
/// processes append to. For the interrupted fire every item must end "ok" exactly once: nothing lost (the killed process's
/// unfinished item is compensated elsewhere) and nothing completed twice (its finished item is not).
/// <para>Layout over P3 &gt; P2 &gt; P1 with 6 items: P3 [0,1], P2 [2,3], P1 [4,5]. Item 2 takes 1 s, the others 6 s; P2 is
/// killed 2 s (4 s with the ensemble) into the fire, so its item 2 has finished and its item 3 has not. A process that fenced
/// itself while ZooKeeper re-elected re-runs its cut-short items as compensations: they had not completed.</para>
/// </summary>
public sealed class ProcessFailoverTests
{
    private const string Cron = "0/10 * * * * ?";

    [Fact]
    public async Task A_SIGKILLed_process_loses_nothing_and_no_completed_item_runs_twice()
    {
        await using var server = await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions { TickTimeMs = 200 }, TestContext.Current.CancellationToken);
        await RunScenarioAsync(server.ConnectionString, sessionTimeout: TimeSpan.FromSeconds(2), killAfter: TimeSpan.FromSeconds(2), duringFire: null);
    }

    [Fact]
    public async Task The_same_holds_when_the_ZooKeeper_leader_is_killed_during_the_execution()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync(3, new ZooKeeperServerOptions { TickTimeMs = 200 }, TestContext.Current.CancellationToken);
        // The ZooKeeper leader dies half a second into the fire, before P2's item 2 completes (its marker is removed once the
        // ensemble serves again); P2 is killed once a new leader serves, while its item 3 still runs.
        await RunScenarioAsync(ensemble.ConnectionString, sessionTimeout: TimeSpan.FromSeconds(4), killAfter: TimeSpan.FromSeconds(4), duringFire: async () =>
        {
            var leader = await ensemble.FindLeaderAsync(TestContext.Current.CancellationToken) ?? throw new InvalidOperationException("the ensemble has no leader");
            leader.Kill();
            await ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(30));
        });
    }

    private static async Task RunScenarioAsync(string connectionString, TimeSpan sessionTimeout, TimeSpan killAfter, Func<Task>? duringFire)
    {
        var log = Path.Combine(Path.GetTempPath(), $"shardedjobs-processes-{Guid.NewGuid():N}.tsv");
        var ns = "proc-" + Guid.NewGuid().ToString("N")[..8];
        string[] Arguments() =>
        [
            "--zookeeper", connectionString, "--session-timeout", sessionTimeout.ToString("c", CultureInfo.InvariantCulture), "--log", log,
            "--work", "6", "--work-by-item", "2=1", "--ShardedJobs:Namespace", ns,
            "--ShardedJobs:Jobs:OrderSync:Cron", Cron, "--ShardedJobs:Jobs:OrderSync:Shards", "6", "--ShardedJobs:Jobs:OrderSync:MaxConcurrency", "6",
        ];
        var processes = await Task.WhenAll(new[] { "P1", "P2", "P3" }.Select(id => SampleProcess.StartAsync(id, Arguments())));
        try
        {
            // A fire on the full layout (the first fire shards), then the next one is interrupted.
            var stable = await WaitAsync(log, lines => StableFire(lines), TimeSpan.FromSeconds(45), "a fire run by all three processes", processes);
            var fire = stable + TimeSpan.FromSeconds(10);
            await WaitAsync(log, lines => lines.Count(l => l.Event == "start" && l.FireTime == fire) == 6 ? fire : null, TimeSpan.FromSeconds(14), "the fire starts its 6 items", processes);
            if (duringFire is not null)
            {
                await DelayUntilAsync(fire + TimeSpan.FromMilliseconds(500));
                await duringFire();
            }

            await DelayUntilAsync(fire + killAfter);
            var victim = processes.Single(p => p.InstanceId == "P2");
            victim.Kill();
            var killedAt = DateTimeOffset.UtcNow;

            // Every item of the interrupted fire ends "ok" exactly once.
            await WaitAsync(log, lines => Enumerable.Range(0, 6).All(i => Ok(lines, fire, i) >= 1) ? fire : null, sessionTimeout + TimeSpan.FromSeconds(20),
                "every item of the interrupted fire ends ok", processes);
            var lines = ExecutionLogFileReader.Read(log, "OrderSync");
            var report = Describe(lines);
            for (var item = 0; item < 6; item++)
            {
                Assert.True(Ok(lines, fire, item) == 1, $"item {item} of fire {fire:O} ended ok {Ok(lines, fire, item)} times\n{report}");
            }

            Assert.Single(lines, l => l.Event == "start" && l.FireTime == fire && l.Item == 2); // finished before the kill: not compensated
            // Item 3 completes once, by a compensation on a survivor. During a slow ZooKeeper re-election (a loaded machine) an
            // instance may fence itself and cut a compensation of it short too; that one is handed over again, and every run
            // of item 3 but the completed compensation ended cut short.
            var completed = Assert.Single(lines, l => l.Event == "end" && l.FireTime == fire && l.Item == 3 && l.Outcome == "ok");
            Assert.True(completed.IsFailover, report);
            Assert.NotEqual("P2", completed.Instance);
            Assert.All(lines.Where(l => l.Event == "end" && l.FireTime == fire && l.Item == 3 && l != completed), l => Assert.Equal("cancelled", l.Outcome));
            Assert.True(lines.Single(l => l.Event == "start" && l.TaskId == completed.TaskId && l.Item == 3).Time > killedAt || lines.Any(l => l.Event == "end" && l.FireTime == fire && l.Item == 3 && l.Instance == "P2" && l.Outcome == "cancelled"), report);

            // The next fire is re-sharded over the two survivors and runs every item once.
            var next = fire + TimeSpan.FromSeconds(10);
            await WaitAsync(log, l => Enumerable.Range(0, 6).All(i => Ok(l, next, i) >= 1) ? next : null, TimeSpan.FromSeconds(30), "the next fire ends", processes);
            lines = ExecutionLogFileReader.Read(log, "OrderSync");
            Assert.All(Enumerable.Range(0, 6), i => Assert.True(Ok(lines, next, i) == 1, Describe(lines)));
            Assert.DoesNotContain(lines, l => l.FireTime == next && l.Instance == "P2");
            Assert.All(processes.Where(p => p != victim), p => Assert.False(p.HasExited, p.Output())); // no survivor shut itself down
        }
        finally
        {
            foreach (var process in processes)
            {
                await process.DisposeAsync();
            }

            File.Delete(log);
        }
    }

    private static DateTimeOffset? StableFire(IReadOnlyList<LogLine> lines) =>
        lines.Where(l => l.Event == "end" && l.Outcome == "ok").GroupBy(l => l.FireTime)
            .Where(g => g.Select(l => l.Item).Distinct().Count() == 6 && g.Select(l => l.Instance).Distinct().Count() == 3)
            .Select(g => (DateTimeOffset?)g.Key).Max();

    private static int Ok(IReadOnlyList<LogLine> lines, DateTimeOffset fire, int item) =>
        lines.Count(l => l.Event == "end" && l.Outcome == "ok" && l.FireTime == fire && l.Item == item);

    private static async Task<DateTimeOffset> WaitAsync(string log, Func<IReadOnlyList<LogLine>, DateTimeOffset?> condition, TimeSpan timeout, string what,
        IReadOnlyList<SampleProcess> processes)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            if (condition(ExecutionLogFileReader.Read(log, "OrderSync")) is { } found)
            {
                return found;
            }

            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TimeoutException($"Not within {timeout}: {what}.\n{Describe(ExecutionLogFileReader.Read(log, "OrderSync"))}\n" +
                    string.Join("\n", processes.Select(p => $"--- {p.InstanceId} output (tail) ---\n{Tail(p.Output())}")));
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    private static async Task DelayUntilAsync(DateTimeOffset time)
    {
        var wait = time - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, TestContext.Current.CancellationToken);
        }
    }

    private static string Describe(IReadOnlyList<LogLine> lines) =>
        string.Join("\n", lines.OrderBy(l => l.Time).Select(l => $"  {l.Event,-5} {l.Time:HH:mm:ss.fff} {l.Instance} item {l.Item} fire {l.FireTime:HH:mm:ss}{(l.IsFailover ? " FAILOVER" : "")} {l.Outcome}"));

    private static string Tail(string text) => string.Join("\n", text.Split('\n').TakeLast(25));
}
