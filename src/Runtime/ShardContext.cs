namespace ShardedJobs;

/// <summary>What one execution of one shard item knows about itself.</summary>
public sealed record ShardContext
{
    /// <summary>The job's name.</summary>
    public required string JobName { get; init; }

    /// <summary>Unique per execution (a compensation gets its own).</summary>
    public required string TaskId { get; init; }

    /// <summary>The total number of items of the job.</summary>
    public required int TotalCount { get; init; }

    /// <summary>This item, <c>0..TotalCount-1</c>.</summary>
    public required int Item { get; init; }

    /// <summary>This item's parameter from <c>ItemParameters</c>, or null.</summary>
    public string? ItemParameter { get; init; }

    /// <summary>The job-wide parameter, or null.</summary>
    public string? JobParameter { get; init; }

    /// <summary>The scheduled time this execution belongs to; for a compensation, the interrupted execution's.</summary>
    public required DateTimeOffset FireTime { get; init; }

    /// <summary>True when this execution compensates an item that a crashed instance did not finish.</summary>
    public bool IsFailover { get; init; }

    /// <summary>The instance running this execution.</summary>
    public required string InstanceId { get; init; }

    /// <summary>
    /// A number from the registry that grows every time the item starts — on any instance, and with every hand-over
    /// (re-sharding, compensation). A sink that records the highest token it has accepted per item, and rejects writes that
    /// carry a lower one, keeps out a stale writer: a process frozen (a long GC pause, SIGSTOP) for longer than the session
    /// timeout whose item was compensated elsewhere meanwhile, which no client-side fencing can stop. 0 when execution
    /// monitoring is off.
    /// </summary>
    public long FencingToken { get; init; }
}
