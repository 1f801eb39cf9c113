namespace ShardedJobs;

/// <summary>Runs one item of a job: resolves the job from <paramref name="services"/> (a fresh DI scope) and calls it.</summary>
public delegate Task ShardedJobInvoker(IServiceProvider services, ShardContext shard, CancellationToken cancellationToken);

/// <summary>Which job interface a class implements.</summary>
public enum ShardedJobKind
{
    /// <summary><see cref="IShardedJob"/>.</summary>
    Simple,

    /// <summary><see cref="IDataflowJob{T}"/>.</summary>
    Dataflow,
}

/// <summary>
/// One job as the source generator describes it: every <see cref="ShardedJobAttribute"/> value and a strongly typed
/// <see cref="Invoker"/>, so the runtime needs no reflection. Normally written by the generator; hand-written definitions work
/// the same way (tests, or jobs whose class lives outside the compilation).
/// </summary>
public sealed record ShardedJobDefinition
{
    /// <summary>The job's name in the registry and in configuration.</summary>
    public required string Name { get; init; }

    /// <summary>The job class's full name, written to the job's root node (as ElasticJob writes the class name).</summary>
    public required string JobTypeName { get; init; }

    public ShardedJobKind Kind { get; init; } = ShardedJobKind.Simple;

    public required ShardedJobInvoker Invoker { get; init; }

    public required string Cron { get; init; }

    public int Shards { get; init; } = 1;

    public bool Failover { get; init; }

    public bool MonitorExecution { get; init; } = true;

    public bool Misfire { get; init; } = true;

    public string? ItemParameters { get; init; }

    public string? JobParameter { get; init; }

    public string? TimeZone { get; init; }

    public string ShardingStrategy { get; init; } = ShardingStrategies.AverageAllocation;

    public string? Description { get; init; }

    public bool Disabled { get; init; }

    public bool Overwrite { get; init; }

    public int MaxTimeDiffSeconds { get; init; } = -1;

    public int ReconcileIntervalMinutes { get; init; } = 10;

    /// <summary>Dataflow jobs only: fetch and process repeat until fetch returns nothing.</summary>
    public bool Streaming { get; init; }
}
