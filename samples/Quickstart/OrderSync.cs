using Microsoft.Extensions.Options;
using ShardedJobs;

namespace Quickstart;

/// <summary>
/// A simple sharded job: every 5 s, three items, one region each; failover on, so an item a crashed node did not finish runs
/// again on a live node right away, with its original fire time. Jobs with failover must be idempotent: this one is
/// ("synchronising" a region twice does no harm).
/// </summary>
[ShardedJob("0/5 * * * * ?", shards: 3, Failover = true, MonitorExecution = true, ItemParameters = "0=Beijing,1=Shanghai,2=Guangzhou",
    Description = "Synchronises the orders of one region per item")]
public sealed class OrderSync(IOptions<DemoSettings> settings, DemoOutput output) : IShardedJob
{
    public async Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken)
    {
        using var execution = output.Start(shard, cancellationToken);
        await Task.Delay(settings.Value.WorkFor(shard.Item), cancellationToken);
        execution.Succeeded();
    }
}
