using ShardedJobs.Benchmarks;

// Benchmark harnesses that print their figures. Usage:
//   dotnet run -c Release --project bench/ShardedJobs.Benchmarks -- zk-client host:port workload seconds window
return args switch
{
    ["zk-client", var hostPort, var workload, var seconds, var window] =>
        await ZooKeeperClientBenchmark.RunAsync(hostPort, workload, int.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture), int.Parse(window, System.Globalization.CultureInfo.InvariantCulture)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: zk-client host:port (get|createdelete|multi10) seconds window");
    return 2;
}
