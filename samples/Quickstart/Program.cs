using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quickstart;

// The quickstart: one sharded job, fired every 5 seconds; Ctrl+C stops it.
//   dotnet run --project samples/Quickstart                                  the embedded in-process registry
//   dotnet run --project samples/Quickstart -- --zookeeper 127.0.0.1:2181    a real ZooKeeper; start it in several terminals
// Options: --instance-id ID, --log FILE (one line per item start and end, for tools and tests), --work SECONDS (how long an
// item takes; default 2), and any configuration key, e.g. --ShardedJobs:Jobs:OrderSync:Cron "0/10 * * * * ?".
var builder = Host.CreateApplicationBuilder(DemoArguments.ToConfiguration(args));
builder.Logging.SetMinimumLevel(LogLevel.Warning).AddFilter("ShardedJobs.Job", LogLevel.Information);
builder.Services.Configure<DemoSettings>(builder.Configuration.GetSection("Demo"));
builder.Services.AddSingleton<ExecutionLogFile>();
builder.Services.AddShardedJobs(); // generated for this assembly from its [ShardedJob] classes

var host = builder.Build();
var where = string.IsNullOrEmpty(builder.Configuration["ShardedJobs:ZooKeeper:ConnectionString"]) ? "the embedded registry" : "ZooKeeper " + builder.Configuration["ShardedJobs:ZooKeeper:ConnectionString"];
Console.WriteLine($"ShardedJobs quickstart on {where}; Ctrl+C to stop.");
await host.RunAsync();
