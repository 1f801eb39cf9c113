namespace ShardedJobs;

/// <summary>A job that runs once per fire for each shard item assigned to this instance.</summary>
public interface IShardedJob
{
    /// <summary>Runs one item. Honour <paramref name="cancellationToken"/>: it fires on shutdown and when this instance loses the registry.</summary>
    Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken);
}

/// <summary>A job that fetches a batch of data for its item and then processes it.</summary>
/// <typeparam name="T">The type of one datum.</typeparam>
public interface IDataflowJob<T>
{
    /// <summary>Fetches the next batch for the item; an empty list ends a streaming run.</summary>
    Task<IReadOnlyList<T>> FetchAsync(ShardContext shard, CancellationToken cancellationToken);

    /// <summary>Processes a batch fetched by <see cref="FetchAsync"/>.</summary>
    Task ProcessAsync(ShardContext shard, IReadOnlyList<T> data, CancellationToken cancellationToken);
}
