using Microsoft.Extensions.Logging;

namespace ShardedJobs.Diagnostics;

/// <summary>Every log line of the runtime (LoggerMessage-generated: no boxing, no parsing at run time). Event ids 3000–3199.</summary>
internal static partial class JobLog
{
    // ----- host -----
    [LoggerMessage(EventId = 3000, Level = LogLevel.Warning, Message = "No ShardedJobs:ZooKeeper:ConnectionString is configured: jobs run on the embedded in-process registry, which is NOT distributed (each process is its own cluster). Configure a ZooKeeper connection string to run the jobs across instances")]
    public static partial void EmbeddedRegistry(ILogger logger);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "ShardedJobs instance {InstanceId} starting {JobCount} job(s) in namespace '{Namespace}' on {Registry}")]
    public static partial void HostStarting(ILogger logger, string instanceId, int jobCount, string @namespace, string registry);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "ShardedJobs instance {InstanceId} stopped")]
    public static partial void HostStopped(ILogger logger, string instanceId);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Error, Message = "Job '{Job}' could not start on this instance; the other jobs go on")]
    public static partial void JobStartFailed(ILogger logger, string job, Exception exception);

    // ----- job lifecycle and configuration -----
    [LoggerMessage(EventId = 3010, Level = LogLevel.Information, Message = "Job '{Job}' started on instance {InstanceId}: cron '{Cron}', {Shards} item(s), next fire {NextFire}")]
    public static partial void JobStarted(ILogger logger, string job, string instanceId, string cron, int shards, DateTimeOffset? nextFire);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Information, Message = "Job '{Job}' stopped on instance {InstanceId}")]
    public static partial void JobStopped(ILogger logger, string job, string instanceId);

    [LoggerMessage(EventId = 3012, Level = LogLevel.Warning, Message = "Job '{Job}' has Failover = true but MonitorExecution = false: without running markers nothing can be compensated, so failover does nothing. Set MonitorExecution = true (analyzer SJ0001)")]
    public static partial void FailoverWithoutMonitoring(ILogger logger, string job);

    [LoggerMessage(EventId = 3013, Level = LogLevel.Information, Message = "Job '{Job}': config node {How}")]
    public static partial void ConfigWritten(ILogger logger, string job, string how);

    [LoggerMessage(EventId = 3014, Level = LogLevel.Information, Message = "Job '{Job}': the registry's config differs from this instance's attribute and configuration; using the registry's (the cluster's truth). Set Overwrite = true to replace it")]
    public static partial void ConfigAdopted(ILogger logger, string job);

    [LoggerMessage(EventId = 3015, Level = LogLevel.Error, Message = "Job '{Job}': cannot use the config node '{Path}': {Problem}. Keeping the current config (cron '{Cron}') until the node is repaired")]
    public static partial void RegistryConfigRejected(ILogger logger, string job, string path, string problem, string cron);

    [LoggerMessage(EventId = 3016, Level = LogLevel.Information, Message = "Job '{Job}' rescheduled: cron '{Cron}' in time zone {TimeZone}")]
    public static partial void Rescheduled(ILogger logger, string job, string cron, string timeZone);

    [LoggerMessage(EventId = 3017, Level = LogLevel.Warning, Message = "Job '{Job}': cron '{Cron}' never fires again; the job waits for a new cron")]
    public static partial void ScheduleEnded(ILogger logger, string job, string cron);

    [LoggerMessage(EventId = 3018, Level = LogLevel.Warning, Message = "Job '{Job}': this instance's registration {InstanceId} was deleted while its session lives; registered again")]
    public static partial void RegistrationRestored(ILogger logger, string job, string instanceId);

    [LoggerMessage(EventId = 3019, Level = LogLevel.Error, Message = "Job '{Job}': the registry node '{Path}' is unreadable ({Problem}); treating it as absent until it is repaired")]
    public static partial void CorruptNode(ILogger logger, string job, string path, string problem);

    // ----- leadership and sharding -----
    [LoggerMessage(EventId = 3030, Level = LogLevel.Information, Message = "Job '{Job}': instance {InstanceId} is now the leader")]
    public static partial void BecameLeader(ILogger logger, string job, string instanceId);

    [LoggerMessage(EventId = 3031, Level = LogLevel.Information, Message = "Job '{Job}': re-sharding flagged for the next fire because {Reason}")]
    public static partial void ReshardingFlagged(ILogger logger, string job, string reason);

    [LoggerMessage(EventId = 3032, Level = LogLevel.Information, Message = "Job '{Job}': sharded {Shards} item(s) over {Instances} instance(s) because {Reason}: {Assignment}")]
    public static partial void Sharded(ILogger logger, string job, int shards, int instances, string reason, string assignment);

    [LoggerMessage(EventId = 3033, Level = LogLevel.Error, Message = "Job '{Job}': sharding failed: {Reason}. The old assignment stays; the flag stays for the next fire")]
    public static partial void ShardingFailed(ILogger logger, string job, string reason, Exception? exception);

    [LoggerMessage(EventId = 3034, Level = LogLevel.Warning, Message = "Job '{Job}': no available instance to shard over (all disabled or gone)")]
    public static partial void NoAvailableInstances(ILogger logger, string job);

    [LoggerMessage(EventId = 3035, Level = LogLevel.Warning, Message = "Job '{Job}': the leader ({Leader}) did not finish re-sharding within {Waited}; skipping this fire rather than running an outdated assignment")]
    public static partial void ShardingWaitTimedOut(ILogger logger, string job, string leader, TimeSpan waited);

    [LoggerMessage(EventId = 3036, Level = LogLevel.Warning, Message = "Job '{Job}': reconcile repaired: {What}")]
    public static partial void Reconciled(ILogger logger, string job, string what);

    [LoggerMessage(EventId = 3037, Level = LogLevel.Information, Message = "Job '{Job}': instance(s) left the cluster: {Instances}")]
    public static partial void InstancesLeft(ILogger logger, string job, string instances);

    // ----- fires and executions -----
    [LoggerMessage(EventId = 3050, Message = "Job '{Job}': {Source} fire of {FireTime:O} skipped on this instance: {Reason}")]
    public static partial void FireSkipped(ILogger logger, LogLevel level, string job, DateTimeOffset fireTime, ExecutionSource source, string reason);

    [LoggerMessage(EventId = 3051, Level = LogLevel.Warning, Message = "Job '{Job}': {Missed} fire time(s) passed while the trigger was held up; firing once for the latest, {FireTime:O}")]
    public static partial void FiresCollapsed(ILogger logger, string job, int missed, DateTimeOffset fireTime);

    [LoggerMessage(EventId = 3052, Level = LogLevel.Debug, Message = "Job '{Job}': execution {TaskId} ({Source}, fire {FireTime:O}) starting items {Items}")]
    public static partial void ExecutionStarting(ILogger logger, string job, string taskId, DateTimeOffset fireTime, ExecutionSource source, string items);

    [LoggerMessage(EventId = 3053, Level = LogLevel.Debug, Message = "Job '{Job}': execution {TaskId} finished: {Succeeded} of {Total} item(s) succeeded in {Duration}")]
    public static partial void ExecutionFinished(ILogger logger, string job, string taskId, int succeeded, int total, TimeSpan duration);

    [LoggerMessage(EventId = 3054, Level = LogLevel.Error, Message = "Job '{Job}' item {Item} (fire {FireTime:O}, task {TaskId}) failed; it runs again at its next fire")]
    public static partial void ItemFailed(ILogger logger, string job, int item, DateTimeOffset fireTime, string taskId, Exception exception);

    [LoggerMessage(EventId = 3055, Level = LogLevel.Debug, Message = "Job '{Job}' item {Item} (task {TaskId}) failed (ErrorPolicy = Ignore): {Message}")]
    public static partial void ItemFailedIgnored(ILogger logger, string job, int item, string taskId, string message);

    [LoggerMessage(EventId = 3056, Level = LogLevel.Information, Message = "Job '{Job}' item {Item} (fire {FireTime:O}, task {TaskId}) was cancelled")]
    public static partial void ItemCancelled(ILogger logger, string job, int item, DateTimeOffset fireTime, string taskId);

    [LoggerMessage(EventId = 3057, Level = LogLevel.Warning, Message = "Job '{Job}': fire {FireTime:O} found item(s) {Items} still running; not started again ({Then})")]
    public static partial void MisfiredCore(ILogger logger, string job, DateTimeOffset fireTime, string items, string then);

    public static void Misfired(ILogger logger, string job, DateTimeOffset fireTime, string items, bool catchUp) =>
        MisfiredCore(logger, job, fireTime, items, catchUp ? "caught up once right after they finish" : "Misfire = false: they run at their next fire");

    [LoggerMessage(EventId = 3058, Level = LogLevel.Information, Message = "Job '{Job}': catching up the missed fire {FireTime:O} for item(s) {Items}")]
    public static partial void CatchingUp(ILogger logger, string job, DateTimeOffset fireTime, string items);

    [LoggerMessage(EventId = 3059, Level = LogLevel.Information, Message = "Job '{Job}': catch-up of item(s) {Items} dropped: {Reason}")]
    public static partial void CatchUpDropped(ILogger logger, string job, string items, string reason);

    [LoggerMessage(EventId = 3060, Level = LogLevel.Error, Message = "Job '{Job}': fire {FireTime:O} skipped: this clock differs from the registry's by {Skew} (MaxTimeDiffSeconds = {Max}). Fix the clock (NTP) or raise MaxTimeDiffSeconds")]
    public static partial void ClockSkewTooLarge(ILogger logger, string job, DateTimeOffset fireTime, TimeSpan skew, int max);

    [LoggerMessage(EventId = 3061, Level = LogLevel.Information, Message = "Job '{Job}': manual trigger on instance {InstanceId}")]
    public static partial void ManualTrigger(ILogger logger, string job, string instanceId);

    [LoggerMessage(EventId = 3062, Level = LogLevel.Warning, Message = "Job '{Job}': item(s) {Items} did not stop within the shutdown timeout {Timeout}; abandoned (their running markers stay as evidence)")]
    public static partial void ItemsAbandoned(ILogger logger, string job, string items, TimeSpan timeout);

    [LoggerMessage(EventId = 3063, Level = LogLevel.Warning, Message = "Job '{Job}': took over the running marker of item {Item}, left by an instance that is no longer live")]
    public static partial void StaleMarkerTakenOver(ILogger logger, string job, int item);

    [LoggerMessage(EventId = 3064, Level = LogLevel.Warning, Message = "Job '{Job}': could not remove the running marker of item {Item}: {Reason}. It no longer counts once this instance is gone, and this instance's next fire takes it over")]
    public static partial void MarkerReleaseFailed(ILogger logger, string job, int item, string reason);

    [LoggerMessage(EventId = 3065, Level = LogLevel.Warning, Message = "Job '{Job}': listener {Listener} threw in its {Phase} hook (task {TaskId}); the execution goes on")]
    public static partial void ListenerFailed(ILogger logger, string job, string listener, string phase, string taskId, Exception exception);

    [LoggerMessage(EventId = 3066, Level = LogLevel.Error, Message = "Job '{Job}': error handler {Handler} threw")]
    public static partial void ErrorHandlerFailed(ILogger logger, string job, string handler, Exception exception);

    // ----- failover -----
    [LoggerMessage(EventId = 3070, Level = LogLevel.Warning, Message = "Job '{Job}': instance {Instance} {How}; its unfinished item(s) flagged for failover: {Items}")]
    public static partial void DepartureHandled(ILogger logger, string job, string instance, string how, string items);

    [LoggerMessage(EventId = 3071, Level = LogLevel.Information, Message = "Job '{Job}': item {Item} of {Crashed} (fire {FireTime:O}) claimed for compensation by {Claimant}")]
    public static partial void FailoverClaimed(ILogger logger, string job, int item, string crashed, DateTimeOffset fireTime, string claimant);

    [LoggerMessage(EventId = 3072, Level = LogLevel.Information, Message = "Job '{Job}': compensating item {Item} of {Crashed} for fire {FireTime:O} ({Latency} after it was flagged)")]
    public static partial void Compensating(ILogger logger, string job, int item, string crashed, DateTimeOffset fireTime, TimeSpan latency);

    [LoggerMessage(EventId = 3079, Level = LogLevel.Information, Message = "Job '{Job}': item {Item} compensated for fire {FireTime:O}; its crashed owner also missed fire {MissedFireTime:O}, which runs now")]
    public static partial void CompensatingMissedFire(ILogger logger, string job, int item, DateTimeOffset fireTime, DateTimeOffset missedFireTime);

    [LoggerMessage(EventId = 3073, Level = LogLevel.Warning, Message = "Job '{Job}': failover flag of item {Item} discarded: {Reason}")]
    public static partial void FailoverDiscarded(ILogger logger, string job, int item, string reason);

    [LoggerMessage(EventId = 3074, Level = LogLevel.Warning, Message = "Job '{Job}': the registry connection has been suspended for {Suspended} (over {Fraction:P0} of the session timeout {SessionTimeout}); cancelling running item(s) {Items} so that a compensation elsewhere cannot overlap them (self-fencing)")]
    public static partial void Fenced(ILogger logger, string job, TimeSpan suspended, double fraction, TimeSpan sessionTimeout, string items);

    [LoggerMessage(EventId = 3075, Level = LogLevel.Information, Message = "Job '{Job}': registry {How}; this instance takes part in the next sharding")]
    public static partial void Rejoined(ILogger logger, string job, string how);

    // ----- registry trouble -----
    [LoggerMessage(EventId = 3080, Level = LogLevel.Warning, Message = "Job '{Job}': {What} failed: {Reason}")]
    public static partial void RegistryCallFailed(ILogger logger, string job, string what, string reason);

    [LoggerMessage(EventId = 3081, Level = LogLevel.Debug, Message = "Job '{Job}': re-reading {Part} from the registry failed ({Reason}); retrying")]
    public static partial void ViewRefreshFailed(ILogger logger, string job, string part, string reason);

    [LoggerMessage(EventId = 3082, Level = LogLevel.Warning, Message = "Job '{Job}': instance id '{InstanceId}' is still registered by its previous session (a restart within the session timeout); waiting up to {Patience} for that session to expire, so that its unfinished items are handed over first")]
    public static partial void WaitingForPredecessor(ILogger logger, string job, string instanceId, TimeSpan patience);

    [LoggerMessage(EventId = 3088, Level = LogLevel.Information, Message = "Job '{Job}': fire {FireTime:O} of item(s) {Items} waits for the compensation their failover claim holds them for ({Then})")]
    public static partial void DeferredBehindCompensationCore(ILogger logger, string job, DateTimeOffset fireTime, string items, string then);

    public static void DeferredBehindCompensation(ILogger logger, string job, DateTimeOffset fireTime, string items, bool catchUp) =>
        DeferredBehindCompensationCore(logger, job, fireTime, items, catchUp ? "caught up once right after it" : "not run: Misfire is off");

    [LoggerMessage(EventId = 3083, Level = LogLevel.Information, Message = "Job '{Job}': item(s) {Items} of fire {FireTime:O} were started already by their previous owner before a re-sharding moved them here; not started again")]
    public static partial void AlreadyStarted(ILogger logger, string job, DateTimeOffset fireTime, string items);

    [LoggerMessage(EventId = 3084, Level = LogLevel.Information, Message = "Job '{Job}': item(s) {Items} of fire {FireTime:O} are assigned to {Owners}, which registered after that fire came due and runs only later ones; the leader runs them for it")]
    public static partial void RunningForLateJoiner(ILogger logger, string job, DateTimeOffset fireTime, string items, string owners);

    [LoggerMessage(EventId = 3085, Level = LogLevel.Information, Message = "Job '{Job}': item(s) {Items} of fire {FireTime:O} are assigned by this fire's re-sharding to {Owners}, which started that fire before it; the leader runs them for it")]
    public static partial void RunningForEarlyStarter(ILogger logger, string job, DateTimeOffset fireTime, string items, string owners);

    [LoggerMessage(EventId = 3099, Level = LogLevel.Error, Message = "Job '{Job}': unexpected error while {Operation}")]
    public static partial void UnexpectedError(ILogger logger, string job, string operation, Exception exception);
}
