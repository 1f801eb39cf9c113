using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using ShardedJobs.TestSupport;
using ShardedJobs.TestSupport.Runtime;

namespace ShardedJobs.Benchmarks;

/// <summary>
/// Runtime figures, each printed as one JSON line: trigger delay (scheduled fire time to the start of ExecuteAsync) with 3
/// instances, registry round trips per fire per instance for 1/10/100 items, and the cost of 1,000 jobs on one instance.
/// "zookeeper" starts its own ZooKeeper 3.8 server on a free loopback port (tickTime 200 ms); "embedded" uses the in-process
/// registry. Real time throughout: this measures, it does not test.
/// </summary>
internal static class RuntimeBenchmark
{
    private const string EverySecond = "* * * * * ?";

    public static async Task<int> TriggerDelayAsync(string registry, int fires, int items)
    {
        await using var environment = await BenchEnvironment.StartAsync(registry);
        var delays = new ConcurrentBag<double>();
        var job = DelayJob("delay", EverySecond, items, delays);
        var nodes = new List<TestNode>();
        foreach (var id in new[] { "A", "B", "C" })
        {
            nodes.Add(await environment.StartNodeAsync(id, [job], items));
        }

        await WaitFiresAsync(delays, items, warmUp: 3, fires);
        var samples = delays.Order().ToArray();
        await StopAsync(nodes);
        Print(new Dictionary<string, object>
        {
            ["benchmark"] = "trigger_delay", ["registry"] = registry, ["instances"] = 3, ["items"] = items, ["fires"] = fires,
            ["n"] = samples.Length, ["p50_ms"] = Percentile(samples, 0.50), ["p99_ms"] = Percentile(samples, 0.99), ["max_ms"] = samples[^1],
        });
        return 0;
    }

    public static async Task<int> RoundTripsAsync(string registry, int items, int fires)
    {
        await using var environment = await BenchEnvironment.StartAsync(registry);
        var delays = new ConcurrentBag<double>();
        // Every item runs 100 ms, so the items of a fire end together, as the design's figure assumes.
        var job = DelayJob("trips", EverySecond, items, delays, TimeSpan.FromMilliseconds(100));
        var nodes = new List<TestNode>();
        foreach (var id in new[] { "A", "B", "C" })
        {
            nodes.Add(await environment.StartNodeAsync(id, [job], items));
        }

        await WaitFiresAsync(delays, items, warmUp: 3, fires: 0);
        var before = nodes.Select(n => n.Registry.Requests).ToArray();
        var multisBefore = nodes.Select(n => n.Registry.Multis).ToArray();
        var started = delays.Count;
        await WaitFiresAsync(delays, items, warmUp: 0, fires);
        await Task.Delay(500);
        var measuredFires = (delays.Count - started) / (double)items;
        var perInstance = nodes.Select((n, i) => (n.Registry.Requests - before[i]) / measuredFires).ToArray();
        var multis = nodes.Select((n, i) => (n.Registry.Multis - multisBefore[i]) / measuredFires).ToArray();
        await StopAsync(nodes);
        Print(new Dictionary<string, object>
        {
            ["benchmark"] = "round_trips_per_fire", ["registry"] = registry, ["instances"] = 3, ["items"] = items, ["fires"] = Math.Round(measuredFires, 1),
            ["requests_per_instance_per_fire"] = perInstance.Select(p => Math.Round(p, 2)).ToArray(), ["multis_per_instance_per_fire"] = multis.Select(p => Math.Round(p, 2)).ToArray(),
            ["max"] = Math.Round(perInstance.Max(), 2),
        });
        return 0;
    }

    public static async Task<int> ManyJobsAsync(string registry, int jobs, int seconds)
    {
        await using var environment = await BenchEnvironment.StartAsync(registry);
        var delays = new ConcurrentBag<double>();
        var memoryBefore = Settle();
        var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        // Every job fires once a minute, spread over the seconds of the minute, one item each.
        var definitions = Enumerable.Range(0, jobs)
            .Select(i => DelayJob($"job-{i:D4}", $"{i % 60} * * * * ?", 1, delays))
            .ToList();
        var node = await environment.StartNodeAsync("A", definitions, 1);
        var startSeconds = watch.Elapsed.TotalSeconds;
        var startCpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
        var memoryStarted = Settle();

        // Let every job fire once (its first fire also shards it), then measure a steady window.
        await Task.Delay(TimeSpan.FromSeconds(61));
        delays.Clear();
        var requestsBefore = node.Registry.Requests;
        var breakdownBefore = node.Registry.ByOperation.ToDictionary(p => p.Key, p => p.Value);
        process.Refresh();
        var cpuSteady = process.TotalProcessorTime;
        var steadyWatch = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        process.Refresh();
        var steadyCpu = (process.TotalProcessorTime - cpuSteady).TotalSeconds / steadyWatch.Elapsed.TotalSeconds;
        var steadyRequests = (node.Registry.Requests - requestsBefore) / steadyWatch.Elapsed.TotalSeconds;
        var memorySteady = Settle();
        var samples = delays.Order().ToArray();
        var requests = node.Registry.Requests;
        var breakdown = node.Registry.ByOperation.Select(p => (p.Key, Value: p.Value - breakdownBefore.GetValueOrDefault(p.Key)))
            .Where(p => p.Value > 0).OrderByDescending(p => p.Value).Take(12).Select(p => $"{p.Key}={p.Value}").ToArray();
        await StopAsync([node]);
        Print(new Dictionary<string, object>
        {
            ["benchmark"] = "many_jobs", ["registry"] = registry, ["jobs"] = jobs, ["measured_s"] = seconds,
            ["start_s"] = Math.Round(startSeconds, 2), ["start_cpu_s"] = Math.Round(startCpu, 2),
            ["managed_mb_after_start"] = Math.Round((memoryStarted - memoryBefore) / 1048576.0, 1),
            ["managed_mb_steady"] = Math.Round((memorySteady - memoryBefore) / 1048576.0, 1),
            ["working_set_mb"] = Math.Round(process.WorkingSet64 / 1048576.0, 1),
            ["cpu_cores_steady"] = Math.Round(steadyCpu, 3),
            ["executions"] = samples.Length, ["delay_p50_ms"] = samples.Length > 0 ? Percentile(samples, 0.5) : 0, ["delay_p99_ms"] = samples.Length > 0 ? Percentile(samples, 0.99) : 0,
            ["registry_requests_per_s_steady"] = Math.Round(steadyRequests, 1), ["registry_requests_total"] = requests, ["steady_requests_by_operation"] = string.Join("; ", breakdown),
        });
        return 0;
    }

    private static ShardedJobDefinition DelayJob(string name, string cron, int items, ConcurrentBag<double> delays, TimeSpan? duration = null) => new()
    {
        Name = name,
        JobTypeName = "Bench." + name,
        Cron = cron,
        Shards = items,
        TimeZone = "UTC",
        Invoker = async (_, shard, cancellationToken) =>
        {
            delays.Add((DateTimeOffset.UtcNow - shard.FireTime).TotalMilliseconds);
            if (duration is { } d)
            {
                await Task.Delay(d, cancellationToken);
            }
        },
    };

    private static async Task WaitFiresAsync(ConcurrentBag<double> delays, int items, int warmUp, int fires)
    {
        var target = delays.Count + (warmUp + fires) * items;
        var warmTarget = delays.Count + warmUp * items;
        var deadline = Stopwatch.StartNew();
        while (delays.Count < warmTarget && deadline.Elapsed < TimeSpan.FromMinutes(2))
        {
            await Task.Delay(50);
        }

        if (warmUp > 0)
        {
            delays.Clear();
            target = fires * items;
        }

        while (delays.Count < target && deadline.Elapsed < TimeSpan.FromMinutes(5))
        {
            await Task.Delay(50);
        }
    }

    private static async Task StopAsync(IEnumerable<TestNode> nodes)
    {
        foreach (var node in nodes)
        {
            await node.DisposeAsync();
        }
    }

    private static long Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static double Percentile(double[] sorted, double p) => Math.Round(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)], 2);

    private static void Print(Dictionary<string, object> fields) =>
        Console.WriteLine("{" + string.Join(",", fields.Select(f => $"\"{f.Key}\":{Format(f.Value)}")) + "}");

    private static string Format(object value) => value switch
    {
        string s => $"\"{s}\"",
        double d => d.ToString("0.###", CultureInfo.InvariantCulture),
        double[] array => "[" + string.Join(",", array.Select(d => d.ToString("0.###", CultureInfo.InvariantCulture))) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>The registry the nodes share: an embedded tree, or a real ZooKeeper server started for the run.</summary>
    private sealed class BenchEnvironment : IAsyncDisposable
    {
        private readonly ZooKeeperServer? _server;
        private readonly Coordination.InMemoryRegistryServer? _embedded;
        private readonly ExecutionLog _log = new();
        private readonly JobScript _script = new(TimeProvider.System);

        private BenchEnvironment(ZooKeeperServer? server, Coordination.InMemoryRegistryServer? embedded)
        {
            _server = server;
            _embedded = embedded;
        }

        public static async Task<BenchEnvironment> StartAsync(string registry) => registry switch
        {
            "embedded" => new BenchEnvironment(null, new Coordination.InMemoryRegistryServer()),
            "zookeeper" => new BenchEnvironment(await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions { TickTimeMs = 200 }), null),
            _ => throw new ArgumentException($"unknown registry '{registry}'; expected embedded or zookeeper"),
        };

        public Task<TestNode> StartNodeAsync(string id, IReadOnlyList<ShardedJobDefinition> jobs, int concurrency) => TestNode.StartAsync(new TestNodeSetup
        {
            InstanceId = id,
            Jobs = jobs,
            Time = TimeProvider.System,
            Log = _log,
            Script = _script,
            Embedded = _embedded,
            ZooKeeperConnectionString = _server?.ConnectionString,
            SessionTimeout = TimeSpan.FromSeconds(4),
            Configure = options =>
            {
                options.Namespace = "bench";
                foreach (var job in jobs)
                {
                    options.Jobs[job.Name] = new JobOptions { MaxConcurrency = Math.Max(concurrency, 1) };
                }
            },
            CaptureLogs = false,
        });

        public async ValueTask DisposeAsync()
        {
            if (_server is not null)
            {
                await _server.DisposeAsync();
            }
        }
    }
}
