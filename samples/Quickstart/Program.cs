using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Quickstart;

// The quickstart: two sharded jobs (OrderSync every 5 s with failover, StockFeed every 10 s as a dataflow job); Ctrl+C stops it.
//   dotnet run --project samples/Quickstart                                   one instance on the embedded in-process registry
//   dotnet run --project samples/Quickstart -- --nodes 3 --kill-after 12s     three instances in this process, one crashes
//   dotnet run --project samples/Quickstart -- --zookeeper 127.0.0.1:2181     a real ZooKeeper; start it in several terminals
// Options: --instance-id ID, --session-timeout 00:00:04, --log FILE (one line per item start and end, for tools and tests),
// --work SECONDS (how long an OrderSync item takes; default 2), --work-by-item "1=6", --stop-after 40s, and any configuration
// key, e.g. --ShardedJobs:Jobs:OrderSync:Cron "0/10 * * * * ?".
try
{
    var configuration = new ConfigurationBuilder().AddEnvironmentVariables().AddCommandLine(DemoArguments.ToConfiguration(args).Args!).Build();
    var settings = configuration.GetSection("Demo").Get<DemoSettings>() ?? new DemoSettings();
    var zooKeeper = configuration["ShardedJobs:ZooKeeper:ConnectionString"];
    using var stop = new CancellationTokenSource();
    if (settings.Nodes < 1)
    {
        throw new DemoUsageException($"--nodes {settings.Nodes}: run at least 1 node.");
    }

    if (settings.KillAfter is not null && (settings.Nodes < 2 || !string.IsNullOrEmpty(zooKeeper)))
    {
        throw new DemoUsageException(string.IsNullOrEmpty(zooKeeper)
            ? "--kill-after needs --nodes 2 or more: someone has to compensate the crashed node's items (try --nodes 3 --kill-after 12s)."
            : "--kill-after plays a crash on the embedded registry; against ZooKeeper, start the quickstart in several terminals and kill one (kill -9).");
    }

    if (settings.Nodes > 1)
    {
        if (!string.IsNullOrEmpty(zooKeeper))
        {
            throw new DemoUsageException("--nodes runs several instances on the embedded registry; against ZooKeeper, start the quickstart once per instance.");
        }

        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        return await DemoCluster.RunAsync(args, settings, configuration["ShardedJobs:ZooKeeper:SessionTimeout"], stop.Token);
    }

    using var log = new ExecutionLogFile(settings.LogFile, TimeProvider.System);
    using var host = DemoHost.Build(args, new DemoNode(configuration["ShardedJobs:InstanceId"] ?? "main"), log);
    Console.WriteLine($"ShardedJobs quickstart on {(string.IsNullOrEmpty(zooKeeper) ? "the embedded registry" : "ZooKeeper " + zooKeeper)}; Ctrl+C to stop.");
    if (DemoDuration.Parse(settings.StopAfter, "--stop-after") is { } stopAfter)
    {
        _ = Task.Delay(stopAfter).ContinueWith(_ => host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication(), TaskScheduler.Default);
    }

    await host.RunAsync();
    return 0;
}
catch (DemoUsageException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
