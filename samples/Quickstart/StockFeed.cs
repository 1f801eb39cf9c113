using ShardedJobs;

namespace Quickstart;

/// <summary>One stock update fetched for a warehouse.</summary>
public sealed record StockUpdate(string Warehouse, string Sku, int Delta);

/// <summary>
/// A dataflow job: every 10 s, each of its two items fetches the pending stock updates of its warehouse, then processes them.
/// No failover: a missed run is simply picked up by the next one, which fetches whatever is pending then.
/// </summary>
[ShardedJob("0/10 * * * * ?", shards: 2, ItemParameters = "0=north,1=south", Description = "Applies pending stock updates per warehouse")]
public sealed class StockFeed(DemoOutput output) : IDataflowJob<StockUpdate>
{
    public Task<IReadOnlyList<StockUpdate>> FetchAsync(ShardContext shard, CancellationToken cancellationToken)
    {
        // Stands in for a query such as "pending updates of this warehouse": a few, different at every fire.
        var warehouse = shard.ItemParameter ?? $"warehouse-{shard.Item}";
        var count = 1 + (int)(shard.FireTime.ToUnixTimeSeconds() / 10 % 3);
        IReadOnlyList<StockUpdate> updates = [.. Enumerable.Range(1, count).Select(n => new StockUpdate(warehouse, $"SKU-{shard.Item}{n:00}", n % 2 == 0 ? -n : n))];
        return Task.FromResult(updates);
    }

    public async Task ProcessAsync(ShardContext shard, IReadOnlyList<StockUpdate> data, CancellationToken cancellationToken)
    {
        using var execution = output.Start(shard, cancellationToken);
        await Task.Delay(TimeSpan.FromMilliseconds(300 * data.Count), cancellationToken);
        execution.Succeeded($"{data.Count} stock update{(data.Count == 1 ? "" : "s")} applied");
    }
}
