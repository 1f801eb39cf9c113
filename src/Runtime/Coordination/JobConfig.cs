namespace ShardedJobs.Coordination;

/// <summary>
/// A job's cluster-wide configuration: the data of its <c>config</c> node (see <see cref="JobNodes.Config"/>), the cluster's truth
/// once written. Built from the <see cref="ShardedJobAttribute"/> values and the <c>ShardedJobs:Jobs</c> configuration; encoded
/// by <see cref="JobNodeData"/> as JSON with ElasticJob's key names.
/// </summary>
public sealed record JobConfig
{
    public required string JobName { get; init; }

    public required string Cron { get; init; }

    public int Shards { get; init; } = 1;

    public string? ItemParameters { get; init; }

    public string? JobParameter { get; init; }

    public bool Failover { get; init; }

    public bool MonitorExecution { get; init; } = true;

    public bool Misfire { get; init; } = true;

    public bool Disabled { get; init; }

    /// <summary>IANA or Windows id; null = each instance's local zone.</summary>
    public string? TimeZone { get; init; }

    public string ShardingStrategy { get; init; } = ShardingStrategies.AverageAllocation;

    public string? Description { get; init; }

    public int MaxTimeDiffSeconds { get; init; } = -1;

    public int ReconcileIntervalMinutes { get; init; } = 10;
}

/// <summary>
/// What the last sharding was computed from: the data of the <c>sharding</c> node, written in the same multi as the per-item
/// assignments. Its version is the sharding generation: a fire's marker multi checks it, so a fire never starts items of an
/// assignment that was replaced meanwhile. The leader re-shards when the live, enabled instances, the item count or the strategy
/// no longer match it.
/// </summary>
/// <param name="Instances">The available instances the items were shared over, in the strategy's input order.</param>
/// <param name="Shards">The item count.</param>
/// <param name="Strategy">The strategy's name.</param>
/// <param name="Leader">The leader that computed it.</param>
/// <param name="ShardedAt">When, by the leader's clock.</param>
public sealed record ShardingStamp(IReadOnlyList<string> Instances, int Shards, string Strategy, string Leader, DateTimeOffset ShardedAt);
