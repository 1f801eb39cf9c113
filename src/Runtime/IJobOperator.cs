using ShardedJobs.Coordination;

namespace ShardedJobs;

/// <summary>
/// Operations on the jobs of this host, injectable anywhere. Cluster-wide changes go through the registry, so every instance
/// sees them; <see cref="ShutdownAsync"/> affects this instance only. Calls fail with <see cref="InvalidOperationException"/>
/// before the host has started and with <see cref="ArgumentException"/> for an unknown job.
/// </summary>
public interface IJobOperator
{
    /// <summary>The jobs this host knows, sorted.</summary>
    IReadOnlyList<string> JobNames { get; }

    /// <summary>Every live instance runs its items of the job now (fire time: now). Items still running are handled as a
    /// misfire: flagged, and caught up right after they finish.</summary>
    Task TriggerAsync(string jobName, CancellationToken cancellationToken = default);

    /// <summary>Disables the job on every instance (its config node's <c>disabled</c>); fires are skipped until enabled.</summary>
    Task DisableJobAsync(string jobName, CancellationToken cancellationToken = default);

    Task EnableJobAsync(string jobName, CancellationToken cancellationToken = default);

    /// <summary>Disables every instance on a server IP (ElasticJob's <c>servers/{ip}</c> = DISABLED; survives restarts). The
    /// items are re-sharded over the other instances at the next fire.</summary>
    Task DisableServerAsync(string jobName, string serverIp, CancellationToken cancellationToken = default);

    Task EnableServerAsync(string jobName, string serverIp, CancellationToken cancellationToken = default);

    /// <summary>Disables one instance (for its lifetime: a restart is a new instance). Re-sharded at the next fire.</summary>
    Task DisableInstanceAsync(string jobName, string instanceId, CancellationToken cancellationToken = default);

    Task EnableInstanceAsync(string jobName, string instanceId, CancellationToken cancellationToken = default);

    /// <summary>The item runs nowhere from the next fire on (assignments stay as they are; no misfire, no compensation).</summary>
    Task DisableItemAsync(string jobName, int item, CancellationToken cancellationToken = default);

    Task EnableItemAsync(string jobName, int item, CancellationToken cancellationToken = default);

    /// <summary>Stops the job on this instance: no more fires, running items cancelled and awaited (bounded by the shutdown
    /// timeout), registration removed so the others re-shard. The other jobs of this host and other instances go on.</summary>
    Task ShutdownAsync(string jobName, CancellationToken cancellationToken = default);

    /// <summary>A snapshot of the job in the registry, read now.</summary>
    Task<JobStatus> GetStatusAsync(string jobName, CancellationToken cancellationToken = default);
}

/// <summary>A job as the registry shows it.</summary>
/// <param name="JobName">The job.</param>
/// <param name="Cron">The effective cron (the registry's config).</param>
/// <param name="Shards">The effective number of items.</param>
/// <param name="Disabled">The job is disabled cluster-wide.</param>
/// <param name="Leader">The leader's instance id, or null during an election.</param>
/// <param name="ReshardingPending">The leader re-shards at its next fire.</param>
/// <param name="Servers">Every server IP that ever ran the job, with its state.</param>
/// <param name="Instances">Every live instance.</param>
/// <param name="Items">Every item <c>0..Shards-1</c>.</param>
/// <param name="NextFireTime">When this instance fires next, or null when the job is shut down here or never fires again.</param>
/// <param name="ShutDownHere">The job was shut down on this instance.</param>
public sealed record JobStatus(
    string JobName,
    string Cron,
    int Shards,
    bool Disabled,
    string? Leader,
    bool ReshardingPending,
    IReadOnlyList<ServerState> Servers,
    IReadOnlyList<InstanceState> Instances,
    IReadOnlyList<ItemState> Items,
    DateTimeOffset? NextFireTime,
    bool ShutDownHere);

/// <summary>A server IP and whether its instances may run the job.</summary>
public sealed record ServerState(string ServerIp, bool Enabled);

/// <summary>A live instance.</summary>
public sealed record InstanceState(string InstanceId, string ServerIp, bool Disabled, bool IsLeader, bool IsThisInstance);

/// <summary>One item: who owns it and every marker on it.</summary>
/// <param name="Item">The item number.</param>
/// <param name="Instance">The owning instance by the last sharding, or null.</param>
/// <param name="Parameter">The item's parameter, or null.</param>
/// <param name="Disabled">Disabled by an operator.</param>
/// <param name="Running">Who runs it now (instance, fire time, task id), or null.</param>
/// <param name="Misfire">A fire found it still running; a catch-up follows.</param>
/// <param name="FailoverClaim">Who compensates it, or null.</param>
/// <param name="FailoverPending">It waits to be compensated, or null.</param>
public sealed record ItemState(
    int Item,
    string? Instance,
    string? Parameter,
    bool Disabled,
    ItemMarker? Running,
    bool Misfire,
    ItemMarker? FailoverClaim,
    FailoverFlag? FailoverPending);
