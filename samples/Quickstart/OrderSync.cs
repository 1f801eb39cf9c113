using Microsoft.Extensions.Options;
using ShardedJobs;

namespace Quickstart;

/// <summary>The demo job: "synchronises" one region per item, taking <see cref="DemoSettings.WorkSeconds"/>.</summary>
[ShardedJob("0/5 * * * * ?", shards: 3, Failover = true, MonitorExecution = true, ItemParameters = "0=Beijing,1=Shanghai,2=Guangzhou")]
public sealed class OrderSync(IOptions<DemoSettings> settings, ExecutionLogFile log) : IShardedJob
{
    public async Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken)
    {
        var failover = shard.IsFailover ? "  FAILOVER" : "";
        Console.WriteLine($"{DateTimeOffset.Now:HH:mm:ss.fff}  {shard.InstanceId}  {shard.JobName}  item {shard.Item} ({shard.ItemParameter})  fire {shard.FireTime.ToLocalTime():HH:mm:ss}  start{failover}");
        log.Started(shard);
        var outcome = "failed";
        try
        {
            await Task.Delay(settings.Value.WorkFor(shard.Item), cancellationToken);
            outcome = "ok";
        }
        catch (OperationCanceledException)
        {
            outcome = "cancelled";
            throw;
        }
        finally
        {
            log.Ended(shard, outcome);
            Console.WriteLine($"{DateTimeOffset.Now:HH:mm:ss.fff}  {shard.InstanceId}  {shard.JobName}  item {shard.Item} ({shard.ItemParameter})  fire {shard.FireTime.ToLocalTime():HH:mm:ss}  {outcome}{failover}");
        }
    }
}
