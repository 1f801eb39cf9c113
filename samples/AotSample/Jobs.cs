using Microsoft.Extensions.Hosting;
using ShardedJobs;

namespace AotSample;

/// <summary>Counts item executions and stops the host once every item of both jobs has run.</summary>
public sealed class Progress(IHostApplicationLifetime lifetime)
{
    private int _runs;

    public bool Done => Volatile.Read(ref _runs) >= 4;

    public void Ran(string what)
    {
        Console.WriteLine($"ran {what}");
        if (Interlocked.Increment(ref _runs) == 4)
        {
            lifetime.StopApplication();
        }
    }
}

[ShardedJob("* * * * * ?", shards: 2, ItemParameters = "0=a,1=b")]
public sealed class Greeter(Progress progress) : IShardedJob
{
    public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken)
    {
        progress.Ran($"{shard.JobName} item {shard.Item} ({shard.ItemParameter})");
        return Task.CompletedTask;
    }
}

[ShardedJob("* * * * * ?", shards: 2, Name = "numbers", Streaming = true)]
public sealed class Numbers(Progress progress) : IDataflowJob<int>
{
    private int _batches;

    public Task<IReadOnlyList<int>> FetchAsync(ShardContext shard, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<int>>(Interlocked.Increment(ref _batches) == 1 ? [shard.Item, shard.Item + 10] : []);

    public Task ProcessAsync(ShardContext shard, IReadOnlyList<int> data, CancellationToken cancellationToken)
    {
        progress.Ran($"{shard.JobName} item {shard.Item}: {string.Join(",", data)}");
        return Task.CompletedTask;
    }
}
