namespace ShardedJobs;

/// <summary>Why an execution runs.</summary>
public enum ExecutionSource
{
    /// <summary>A cron fire.</summary>
    Schedule,

    /// <summary>The catch-up of a fire that found its items still running (<see cref="ShardedJobAttribute.Misfire"/>).</summary>
    Misfire,

    /// <summary><see cref="IJobOperator.TriggerAsync"/>.</summary>
    Manual,

    /// <summary>The compensation of items a crashed instance did not finish.</summary>
    Failover,
}

/// <summary>One execution on one instance: the items of one fire that this instance runs.</summary>
/// <param name="JobName">The job.</param>
/// <param name="TaskId">Unique per execution.</param>
/// <param name="FireTime">The scheduled time the execution belongs to.</param>
/// <param name="InstanceId">This instance.</param>
/// <param name="Source">Why it runs.</param>
/// <param name="Shards">One context per item, in item order.</param>
public sealed record JobExecution(string JobName, string TaskId, DateTimeOffset FireTime, string InstanceId, ExecutionSource Source, IReadOnlyList<ShardContext> Shards);

/// <summary>How one item of an execution ended.</summary>
public enum ShardOutcome
{
    Succeeded,

    /// <summary>The item threw; see <see cref="ShardResult.Error"/>.</summary>
    Failed,

    /// <summary>The item stopped because its token was cancelled (shutdown, or this instance lost the registry).</summary>
    Cancelled,

    /// <summary>The item was still running when the shutdown timeout ended; it was abandoned.</summary>
    Abandoned,
}

/// <summary>The result of one item.</summary>
public sealed record ShardResult(int Item, ShardOutcome Outcome, TimeSpan Duration, Exception? Error = null);

/// <summary>The result of one execution.</summary>
public sealed record JobExecutionResult(IReadOnlyList<ShardResult> Shards, TimeSpan Duration)
{
    /// <summary>True when every item succeeded.</summary>
    public bool Succeeded => Shards.All(s => s.Outcome == ShardOutcome.Succeeded);
}

/// <summary>
/// Optional hooks around every execution on every instance, resolved from DI (register any number as singletons). Exceptions
/// thrown by a listener are logged and never stop the execution. Not called for a fire in which this instance has no items.
/// </summary>
public interface IJobListener
{
    Task BeforeExecuteAsync(JobExecution execution, CancellationToken cancellationToken) => Task.CompletedTask;

    Task AfterExecuteAsync(JobExecution execution, JobExecutionResult result, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Receives every exception thrown by an item, after the job's <see cref="JobErrorPolicy"/> was applied. Resolved from DI.</summary>
public interface IJobErrorHandler
{
    Task HandleAsync(ShardContext shard, Exception exception, CancellationToken cancellationToken);
}
