using Microsoft.Extensions.DependencyInjection;

namespace ShardedJobs.TestSupport.Runtime;

/// <summary>How the test jobs behave, per item: how long they run (on the script's clock) and whether they throw.</summary>
public sealed class JobScript(TimeProvider time)
{
    public TimeProvider Time { get; } = time;

    public Func<ShardContext, TimeSpan> Duration { get; set; } = _ => TimeSpan.Zero;

    public Func<ShardContext, Exception?> Failure { get; set; } = _ => null;

    /// <summary>When false, the job ignores its cancellation token (a job that does not honour cancellation).</summary>
    public bool HonourCancellation { get; set; } = true;
}

/// <summary>A job that records every execution in the <see cref="ExecutionLog"/> and behaves as the <see cref="JobScript"/> says.</summary>
public sealed class RecordingJob(ExecutionLog log, JobScript script) : IShardedJob
{
    public async Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken)
    {
        var run = log.Start(shard, script.Time.GetUtcNow());
        try
        {
            var duration = script.Duration(shard);
            if (duration > TimeSpan.Zero)
            {
                await Task.Delay(duration, script.Time, script.HonourCancellation ? cancellationToken : CancellationToken.None).ConfigureAwait(false);
            }

            if (script.Failure(shard) is { } failure)
            {
                throw failure;
            }

            log.End(run, script.Time.GetUtcNow(), "ok");
        }
        catch (OperationCanceledException)
        {
            log.End(run, script.Time.GetUtcNow(), "cancelled");
            throw;
        }
        catch
        {
            log.End(run, script.Time.GetUtcNow(), "failed");
            throw;
        }
    }

    /// <summary>A definition of a recording job (UTC, so tests do not depend on the machine's zone).</summary>
    public static ShardedJobDefinition Define(string name, string cron, int shards) => new()
    {
        Name = name,
        JobTypeName = typeof(RecordingJob).FullName!,
        Cron = cron,
        Shards = shards,
        TimeZone = "UTC",
        Invoker = (services, shard, cancellationToken) => services.GetRequiredService<RecordingJob>().ExecuteAsync(shard, cancellationToken),
    };
}
