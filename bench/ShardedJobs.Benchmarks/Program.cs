using ShardedJobs.Benchmarks;

// Benchmark harnesses that print their figures (one JSON line each). Usage:
//   dotnet run -c Release --project bench/ShardedJobs.Benchmarks -- zk-client host:port workload seconds window
//   ... -- trigger-delay (embedded|zookeeper) fires items
//   ... -- round-trips (embedded|zookeeper) items fires
//   ... -- many-jobs (embedded|zookeeper) jobs seconds
//   ... -- generator-time jobs                                                  (bench/generator.sh: 10, 100, 1,000)
//   ... -- analyzer-time jobs                                                   (bench/generator.sh: 10, 100, 1,000)
//   ... -- failover-latency (sigkill|sigterm) session-timeout-seconds rounds    (needs the sample built: bench/failover.sh)
//   ... -- chaos faults seed [min-gap-seconds max-gap-seconds]                 (needs the sample built: bench/chaos.sh)
// bench/runtime.sh runs the runtime set.
static int Int(string text) => int.Parse(text, System.Globalization.CultureInfo.InvariantCulture);

return args switch
{
    ["trigger-delay", var registry, var fires, var items] => await RuntimeBenchmark.TriggerDelayAsync(registry, Int(fires), Int(items)),
    ["round-trips", var registry, var items, var fires] => await RuntimeBenchmark.RoundTripsAsync(registry, Int(items), Int(fires)),
    ["many-jobs", var registry, var jobs, var seconds] => await RuntimeBenchmark.ManyJobsAsync(registry, Int(jobs), Int(seconds)),
    ["generator-time", var jobs] => GeneratorBenchmark.Run(Int(jobs)),
    ["analyzer-time", var jobs] => await AnalyzerBenchmark.RunAsync(Int(jobs)),
    ["failover-latency", var mode, var sessionSeconds, var rounds] =>
        await FailoverBenchmark.RunAsync(mode, double.Parse(sessionSeconds, System.Globalization.CultureInfo.InvariantCulture), Int(rounds)),
    ["chaos", var faults, var seed] => await ChaosBenchmark.RunAsync(Int(faults), Int(seed), 1, 3),
    ["chaos", var faults, var seed, var minGap, var maxGap] => await ChaosBenchmark.RunAsync(Int(faults), Int(seed), ChaosBenchmark.Seconds(minGap), ChaosBenchmark.Seconds(maxGap)),
    ["zk-client", var hostPort, var workload, var seconds, var window] =>
        await ZooKeeperClientBenchmark.RunAsync(hostPort, workload, int.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture), int.Parse(window, System.Globalization.CultureInfo.InvariantCulture)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: zk-client host:port (get|createdelete|multi10) seconds window");
    Console.Error.WriteLine("       trigger-delay (embedded|zookeeper) fires items | round-trips (embedded|zookeeper) items fires | many-jobs (embedded|zookeeper) jobs seconds");
    Console.Error.WriteLine("       failover-latency (sigkill|sigterm) session-timeout-seconds rounds | generator-time jobs | analyzer-time jobs");
    Console.Error.WriteLine("       chaos faults seed [min-gap-seconds max-gap-seconds]");
    return 2;
}
