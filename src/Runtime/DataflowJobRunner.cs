namespace ShardedJobs;

/// <summary>Runs one item of an <see cref="IDataflowJob{T}"/>; called by generated invokers (generic, so no reflection).</summary>
public static class DataflowJobRunner
{
    /// <summary>
    /// Fetches and, if anything came back, processes. With <paramref name="streaming"/>, repeats until a fetch returns nothing
    /// or <paramref name="cancellationToken"/> fires (checked between batches, so a batch is never cut in two by us).
    /// </summary>
    public static async Task RunAsync<T>(IDataflowJob<T> job, ShardContext shard, bool streaming, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(shard);
        do
        {
            cancellationToken.ThrowIfCancellationRequested();
            var data = await job.FetchAsync(shard, cancellationToken).ConfigureAwait(false);
            if (data is null || data.Count == 0)
            {
                return;
            }

            await job.ProcessAsync(shard, data, cancellationToken).ConfigureAwait(false);
        }
        while (streaming);
    }
}
