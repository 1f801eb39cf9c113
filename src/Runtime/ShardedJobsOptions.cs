namespace ShardedJobs;

/// <summary>
/// Runtime settings, bound from the configuration section <see cref="SectionName"/>. Every key is optional: with no
/// <c>ZooKeeper:ConnectionString</c> the jobs run on the embedded in-process registry (development and single-node use).
/// <para>The embedded registry is a new <see cref="Coordination.InMemoryRegistryServer"/> per host, or the one registered in the
/// service provider (several hosts in one process then form one cluster); a registered <see cref="Coordination.InMemoryRegistry"/>
/// session is used as is, so the application can drive its connection (<c>Suspend</c> plays a crash: the session expires after
/// the server's session timeout). The host closes the session when it stops.</para>
/// </summary>
public sealed class ShardedJobsOptions
{
    /// <summary>The configuration section the options are bound from.</summary>
    public const string SectionName = "ShardedJobs";

    /// <summary>The ZooKeeper ensemble; leave <see cref="ZooKeeperOptions.ConnectionString"/> empty for the embedded registry.</summary>
    public ZooKeeperOptions ZooKeeper { get; set; } = new();

    /// <summary>The node every job lives under (<c>/{Namespace}/{job}</c>); one namespace is one cluster.</summary>
    public string Namespace { get; set; } = "shardedjobs";

    /// <summary>This instance's id in the registry; default <c>{ip}@-@{pid}</c>, as ElasticJob. Must be unique in the cluster.</summary>
    public string? InstanceId { get; set; }

    /// <summary>The server (IP) this instance counts under for <c>servers/{ip}</c> (disabling a server disables all its instances);
    /// default: the first IPv4 address of an interface that is up and not loopback, else 127.0.0.1.</summary>
    public string? ServerIp { get; set; }

    /// <summary>Per job name: overrides of the <see cref="ShardedJobAttribute"/> values.</summary>
    public Dictionary<string, JobOptions> Jobs { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// On shutdown, running items are cancelled at once and then awaited this long before the instance leaves the cluster;
    /// items still running afterwards are abandoned (and, with failover, compensated elsewhere).
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a fire of a non-leader waits for the leader to finish a pending re-sharding before it skips the fire with a
    /// warning (it never waits past the job's next fire time either).
    /// </summary>
    public TimeSpan ShardingWaitTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Self-fencing: when the registry connection has been suspended for this fraction of the session timeout, running items'
    /// tokens are cancelled, so that a compensation elsewhere (which may start once the session expires) does not overlap them.
    /// Between 0 and 1 (exclusive); default 0.5.
    /// </summary>
    public double SelfFencingFraction { get; set; } = 0.5;
}

/// <summary>Connection to a ZooKeeper ensemble (configuration section <c>ShardedJobs:ZooKeeper</c>).</summary>
public sealed class ZooKeeperOptions
{
    /// <summary><c>host:port[,host:port...][/chroot]</c>; empty = the embedded in-process registry.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The session timeout asked of ZooKeeper (the server clamps it to 2–20 × tickTime); a crash is noticed after it.</summary>
    public TimeSpan SessionTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long start-up waits for the first connection before failing with an error naming the ensemble.</summary>
    public TimeSpan ConnectionTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary><c>user:password</c>: digest authentication; every node is then created readable and writable by that user only.</summary>
    public string? Digest { get; set; }
}

/// <summary>
/// Per-job overrides (configuration section <c>ShardedJobs:Jobs:{job name}</c>). A null value keeps the attribute's.
/// Cluster-wide settings (all but <see cref="MaxConcurrency"/>, <see cref="ErrorPolicy"/> and <see cref="Overwrite"/>) are
/// written to the job's config node by the first instance; afterwards the registry's copy wins unless <see cref="Overwrite"/>.
/// </summary>
public sealed class JobOptions
{
    public string? Cron { get; set; }

    public int? Shards { get; set; }

    public string? ItemParameters { get; set; }

    public string? JobParameter { get; set; }

    public bool? Failover { get; set; }

    public bool? MonitorExecution { get; set; }

    public bool? Misfire { get; set; }

    public bool? Disabled { get; set; }

    public string? TimeZone { get; set; }

    public string? ShardingStrategy { get; set; }

    public string? Description { get; set; }

    public bool? Overwrite { get; set; }

    public int? MaxTimeDiffSeconds { get; set; }

    public int? ReconcileIntervalMinutes { get; set; }

    /// <summary>How many of this job's items run at once on this instance; default: the processor count × 2 (ElasticJob's CPU pool).</summary>
    public int? MaxConcurrency { get; set; }

    /// <summary>What happens with an exception thrown by an item; default <see cref="JobErrorPolicy.Log"/>.</summary>
    public JobErrorPolicy? ErrorPolicy { get; set; }
}

/// <summary>What the runtime does with an exception thrown by an item. The host never crashes either way; any
/// <see cref="IJobErrorHandler"/> registered in DI is called as well.</summary>
public enum JobErrorPolicy
{
    /// <summary>Log the exception at error level (with job, item, fire time and task id).</summary>
    Log,

    /// <summary>Log it at debug level only (the metrics and traces still record the failure).</summary>
    Ignore,
}
