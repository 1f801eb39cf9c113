using System.Diagnostics;
using System.Globalization;
using ShardedJobs.TestSupport;
using ShardedJobs.TestSupport.Runtime;

namespace ShardedJobs.Benchmarks;

/// <summary>
/// Crash-to-compensation latency with real processes: the quickstart sample as a survivor (short items, idle) and a victim
/// (one 60 s item) against a real ZooKeeper server with tickTime 500 ms; the victim is SIGKILLed (or SIGTERMed) 0.5 s into
/// its item, and the latency is the time from the signal to the start of the compensation on the survivor, read from the
/// shared execution log. A new victim joins for every round. One JSON line with the percentiles and the target.
/// </summary>
internal static class FailoverBenchmark
{
    private const int TickMs = 500;

    public static async Task<int> RunAsync(string mode, double sessionSeconds, int rounds)
    {
        var sigkill = mode switch
        {
            "sigkill" => true,
            "sigterm" => false,
            _ => throw new ArgumentException($"unknown mode '{mode}'; expected sigkill or sigterm"),
        };
        await using var server = await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions { TickTimeMs = TickMs });
        var log = Path.Combine(Path.GetTempPath(), $"shardedjobs-failover-bench-{Guid.NewGuid():N}.tsv");
        var session = TimeSpan.FromSeconds(sessionSeconds);
        string[] Arguments(string work) =>
        [
            "--zookeeper", server.ConnectionString, "--session-timeout", session.ToString("c", CultureInfo.InvariantCulture), "--log", log,
            "--ShardedJobs:Jobs:OrderSync:Cron", "0/2 * * * * ?", "--ShardedJobs:Jobs:OrderSync:Shards", "2", "--ShardedJobs:Jobs:OrderSync:ItemParameters", "0=Beijing,1=Shanghai",
            "--ShardedJobs:ShutdownTimeout", "00:00:05", "--work", work, .. (Environment.GetEnvironmentVariable("FAILOVER_BENCH_DUMP") == "1" ? new[] { "--Logging:LogLevel:ShardedJobs", "Debug" } : []),
        ];

        var latencies = new List<double>();
        await using var survivor = await SampleProcess.StartAsync("P1", Arguments("0.05"));
        try
        {
            for (var round = 1; round <= rounds; round++)
            {
                var id = string.Create(CultureInfo.InvariantCulture, $"P2-{round:D3}");
                await using var victim = await SampleProcess.StartAsync(id, Arguments("60"));
                // Average allocation over [P2-nnn, P1]: the victim owns item 0 once the leader (P1) has re-sharded.
                var start = await WaitForAsync(log, lines => lines.LastOrDefault(l => l.Event == "start" && l.Instance == id && l.Item == 0), TimeSpan.FromSeconds(30));
                var signalAt = start.Time + TimeSpan.FromMilliseconds(500);
                var wait = signalAt - DateTimeOffset.UtcNow;
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait);
                }

                var signalled = DateTimeOffset.UtcNow;
                if (sigkill)
                {
                    victim.Kill();
                }
                else
                {
                    victim.Terminate();
                }

                var compensation = await WaitForAsync(log, lines => lines.FirstOrDefault(l => l.Event == "start" && l.IsFailover && l.Item == 0 && l.FireTime == start.FireTime),
                    session + TimeSpan.FromSeconds(30));
                latencies.Add((compensation.Time - signalled).TotalMilliseconds);
                await victim.WaitForExitAsync(TimeSpan.FromSeconds(30));
                if (Environment.GetEnvironmentVariable("FAILOVER_BENCH_DUMP") == "1")
                {
                    Console.Error.WriteLine($"round {round}: signalled {signalled:HH:mm:ss.fff}, compensation {compensation.Time:HH:mm:ss.fff}\n--- victim\n{victim.Output()}\n--- survivor (tail)\n{string.Join('\n', survivor.Output().Split('\n').TakeLast(15))}");
                }
            }
        }
        finally
        {
            File.Delete(log);
        }

        var sorted = latencies.Order().ToArray();
        var target = sigkill ? session.TotalMilliseconds + TickMs + 200 : 200;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"benchmark\":\"failover_latency\",\"mode\":\"{mode}\",\"session_timeout_ms\":{session.TotalMilliseconds},\"tick_ms\":{TickMs},\"n\":{sorted.Length}," +
            $"\"min_ms\":{sorted[0]:0},\"p50_ms\":{Percentile(sorted, 0.5):0},\"p99_ms\":{Percentile(sorted, 0.99):0},\"max_ms\":{sorted[^1]:0}," +
            $"\"target_p99_ms\":{target:0},\"met\":{(Percentile(sorted, 0.99) <= target ? "true" : "false")}}}"));
        return 0;
    }

    private static async Task<LogLine> WaitForAsync(string log, Func<IReadOnlyList<LogLine>, LogLine?> find, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            if (find(ExecutionLogFileReader.Read(log, "OrderSync")) is { } line)
            {
                return line;
            }

            await Task.Delay(20);
        }

        throw new TimeoutException($"Not within {timeout} in {log}.");
    }

    private static double Percentile(double[] sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}
