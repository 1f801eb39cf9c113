namespace ShardedJobs;

/// <summary>
/// Marks a class as a sharded, cron-scheduled job. The ShardedJobs source generator turns every marked class into a
/// typed job definition and registers it in the generated <c>AddShardedJobs()</c>; the analyzers check the arguments.
/// </summary>
/// <param name="cron">Quartz-style cron: <c>sec min hour day-of-month month day-of-week [year]</c>, e.g. <c>0 0/30 * * * ?</c>.</param>
/// <param name="shards">How many items the job is split into (<c>0..shards-1</c>), shared out over the live instances.</param>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class ShardedJobAttribute(string cron, int shards = 1) : Attribute
{
    /// <summary>The Quartz-style cron expression the job fires on.</summary>
    public string Cron { get; } = cron;

    /// <summary>The number of shard items.</summary>
    public int Shards { get; } = shards;

    /// <summary>The job's name in the registry and in configuration; default: the class name.</summary>
    public string? Name { get; set; }

    /// <summary>Compensate the unfinished items of a crashed instance on a live one at once. Needs <see cref="MonitorExecution"/>.</summary>
    public bool Failover { get; set; }

    /// <summary>Record which items are running, so a fire never overlaps a running item and failover knows what was unfinished.</summary>
    public bool MonitorExecution { get; set; } = true;

    /// <summary>Run a fire that was missed because its items were still running right after they finish.</summary>
    public bool Misfire { get; set; } = true;

    /// <summary>Per-item parameters, <c>"0=Beijing,1=Shanghai"</c>; items without one get null.</summary>
    public string? ItemParameters { get; set; }

    /// <summary>A free-form parameter given to every item.</summary>
    public string? JobParameter { get; set; }

    /// <summary>The time zone the cron is evaluated in (IANA or Windows id); default: the machine's local zone.</summary>
    public string? TimeZone { get; set; }

    /// <summary>How items are shared out over instances: a <see cref="ShardingStrategies"/> name or a custom strategy's name.</summary>
    public string ShardingStrategy { get; set; } = ShardingStrategies.AverageAllocation;

    /// <summary>A description shown to operators.</summary>
    public string? Description { get; set; }

    /// <summary>Start with the job disabled on this instance's server.</summary>
    public bool Disabled { get; set; }

    /// <summary>Overwrite the job's configuration in the registry with this one at start-up (otherwise the registry's copy wins).</summary>
    public bool Overwrite { get; set; }

    /// <summary>Skip a fire when this instance's clock differs from the registry's by more than this many seconds; -1 turns the check off.</summary>
    public int MaxTimeDiffSeconds { get; set; } = -1;

    /// <summary>How often the cluster state is checked and repaired, in minutes; values below 1 turn it off.</summary>
    public int ReconcileIntervalMinutes { get; set; } = 10;

    /// <summary>Dataflow jobs only: repeat fetch/process until fetch returns nothing.</summary>
    public bool Streaming { get; set; }
}
