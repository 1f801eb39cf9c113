using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ShardedJobs;
using ShardedJobs.Hosting;

// The quickstart on the embedded in-process registry: one job, three items, fired every 5 seconds; Ctrl+C stops it.
// The job definition below is what the source generator will write for [ShardedJob] classes (see README, "Status"); until
// then it is spelled out by hand, with the same values as the attribute.
var builder = Host.CreateApplicationBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddScoped<Quickstart.OrderSync>();
builder.Services.AddShardedJobsRuntime(
[
    new ShardedJobDefinition
    {
        Name = nameof(Quickstart.OrderSync),
        JobTypeName = typeof(Quickstart.OrderSync).FullName!,
        Cron = "0/5 * * * * ?",
        Shards = 3,
        Failover = true,
        MonitorExecution = true,
        ItemParameters = "0=Beijing,1=Shanghai,2=Guangzhou",
        Invoker = (services, shard, cancellationToken) => services.GetRequiredService<Quickstart.OrderSync>().ExecuteAsync(shard, cancellationToken),
    },
]);
Console.WriteLine("ShardedJobs quickstart: job OrderSync fires every 5 s on the embedded registry; Ctrl+C to stop.");
await builder.Build().RunAsync();

namespace Quickstart
{
    [ShardedJob("0/5 * * * * ?", shards: 3, Failover = true, MonitorExecution = true, ItemParameters = "0=Beijing,1=Shanghai,2=Guangzhou")]
    public sealed class OrderSync : IShardedJob
    {
        public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken)
        {
            Console.WriteLine($"{DateTimeOffset.Now:HH:mm:ss} {shard.InstanceId} {shard.JobName} item {shard.Item} ({shard.ItemParameter}) fire {shard.FireTime:HH:mm:ss}{(shard.IsFailover ? " FAILOVER" : "")}");
            return Task.CompletedTask;
        }
    }
}
