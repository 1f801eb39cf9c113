using System.Diagnostics;
using System.Globalization;
using ShardedJobs.ZooKeeper;

namespace ShardedJobs.Benchmarks;

/// <summary>
/// The project's ZooKeeper client under the same workloads as the Java anchor (shared/tools/zk-java-bench/ZkBench.java):
/// a window of outstanding operations, 3 s of warm-up, then a measured period; one JSON line with the same fields.
/// </summary>
internal static class ZooKeeperClientBenchmark
{
    private static readonly byte[] Data = new byte[100];

    public static async Task<int> RunAsync(string hostPort, string workload, int seconds, int window)
    {
        await using var zk = await ZooKeeperClient.ConnectAsync(hostPort, TimeSpan.FromSeconds(10));
        var root = "/bench-" + Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture);
        await zk.CreateAsync(root, Data);
        await zk.CreateAsync(root + "/node", Data);
        Func<long, Task> operation = workload switch
        {
            "get" => _ => zk.GetDataAsync(root + "/node"),
            "createdelete" => async seq =>
            {
                var path = root + "/n" + seq.ToString(CultureInfo.InvariantCulture);
                await zk.CreateAsync(path, Data);
                await zk.DeleteAsync(path);
            },
            "multi10" => async seq =>
            {
                var creates = new ZooKeeperOp[10];
                var deletes = new ZooKeeperOp[10];
                for (var i = 0; i < 10; i++)
                {
                    var path = $"{root}/m{seq}-{i}";
                    creates[i] = ZooKeeperOp.Create(path, Data);
                    deletes[i] = ZooKeeperOp.Delete(path);
                }

                await zk.MultiAsync(creates);
                await zk.MultiAsync(deletes);
            },
            _ => throw new ArgumentException($"unknown workload '{workload}'; expected get, createdelete or multi10"),
        };

        var latencies = new List<long>(1 << 20);
        var recording = false;
        long sequence = 0;
        var warmUntil = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 3;
        var endAt = warmUntil + Stopwatch.Frequency * seconds;
        long measuredStart = 0;
        using var permits = new SemaphoreSlim(window, window);
        while (true)
        {
            var now = Stopwatch.GetTimestamp();
            if (!recording && now >= warmUntil)
            {
                recording = true;
                measuredStart = now;
            }

            if (now >= endAt)
            {
                break;
            }

            await permits.WaitAsync();
            var started = Stopwatch.GetTimestamp();
            var record = recording;
            _ = operation(++sequence).ContinueWith(t =>
            {
                if (t.IsFaulted)
                {
                    Console.Error.WriteLine(t.Exception!.GetBaseException());
                    Environment.Exit(2);
                }

                if (record)
                {
                    var elapsed = Stopwatch.GetTimestamp() - started;
                    lock (latencies)
                    {
                        latencies.Add(elapsed);
                    }
                }

                permits.Release();
            }, TaskScheduler.Default);
        }

        for (var i = 0; i < window; i++)
        {
            await permits.WaitAsync();
        }

        var measured = Stopwatch.GetElapsedTime(measuredStart);
        long[] sorted;
        lock (latencies)
        {
            sorted = [.. latencies];
        }

        Array.Sort(sorted);
        long Micros(double quantile) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * quantile))] * 1_000_000 / Stopwatch.Frequency;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"client\":\"dotnet\",\"workload\":\"{workload}\",\"window\":{window},\"ops_per_s\":{sorted.Length / measured.TotalSeconds:0},\"p50_us\":{Micros(0.5)},\"p99_us\":{Micros(0.99)},\"p999_us\":{Micros(0.999)},\"n\":{sorted.Length}}}"));
        return 0;
    }
}
