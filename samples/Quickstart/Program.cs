using ShardedJobs;

// The quickstart grows with the runtime: today it shows the job model; the scheduler, the embedded registry and
// failover arrive with the Runtime and Failover issues (see README, "Status").
var attribute = (ShardedJobAttribute)Attribute.GetCustomAttribute(typeof(Quickstart.OrderSync), typeof(ShardedJobAttribute))!;
Console.WriteLine($"ShardedJobs quickstart: job {attribute.Name ?? nameof(Quickstart.OrderSync)}, cron '{attribute.Cron}', {attribute.Shards} shards, failover {(attribute.Failover ? "on" : "off")}.");
Console.WriteLine("The scheduler is not part of this build yet; nothing is scheduled.");

namespace Quickstart
{
    [ShardedJob("0/5 * * * * ?", shards: 3, Failover = true, MonitorExecution = true, ItemParameters = "0=Beijing,1=Shanghai,2=Guangzhou")]
    public sealed class OrderSync : IShardedJob
    {
        public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken)
        {
            Console.WriteLine($"{DateTimeOffset.Now:HH:mm:ss} {shard.InstanceId} {shard.JobName} item {shard.Item} ({shard.ItemParameter})");
            return Task.CompletedTask;
        }
    }
}
