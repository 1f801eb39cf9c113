using System.Globalization;
using ShardedJobs.ZooKeeper;

namespace ShardedJobs.Coordination;

/// <summary>
/// Every registry path of one job, in one place. The layout under <c>/{namespace}/{job}</c> follows ElasticJob-Lite's, so
/// operators read it the same way; the namespace is the registry's chroot, so paths here start at the job.
/// <para>Differences from ElasticJob, each closing a gap in its guarantees (see README, "Operations"):</para>
/// <list type="bullet">
/// <item><c>sharding/{item}/running</c> is always persistent and records who runs the item, for which fire time and task id,
/// so a crash leaves the evidence of what was unfinished (ElasticJob: ephemeral without failover, owner id only).</item>
/// <item><c>sharding/{item}/failover</c> is persistent and carries the claim (claimant, interrupted fire time, task id), which
/// also serves ElasticJob's separate <c>failovering</c> node (failover of a failover).</item>
/// <item><c>leader/failover/items/{item}</c> records the interrupted fire time, task id and crashed instance, and is claimed by
/// one multi (delete at version + write the claim), so no <c>leader/failover/latch</c> exists.</item>
/// <item><c>progress/{instanceId}</c> (new) records the fire time an instance last started, to tell "assigned but never
/// started" items after a crash. It exists while the instance lives and until its departure has been handled: the multi that
/// flags a departed instance's items for failover deletes it, so a departure is handled exactly once however many instances
/// see it.</item>
/// <item>No <c>leader/election/latch</c>: the election is one atomic create of the ephemeral <c>leader/election/instance</c>.</item>
/// <item><c>sharding</c> (new data) records what the last sharding was computed from (<see cref="ShardingStamp"/>); its version is
/// the sharding generation that every fire's marker multi checks, so no fire starts items of a replaced assignment.</item>
/// <item><c>sharding/{item}</c> (new data) records the item's latest start; its version is the fencing token.</item>
/// <item><c>config</c> is JSON with ElasticJob's key names instead of YAML.</item>
/// <item><c>instances/{instanceId}</c> may carry a third line <c>disabled: true</c>: one instance disabled by an operator; and a
/// line <c>firesAfter: {ISO 8601}</c>: the instant its trigger started from (it runs the fires strictly after it), so the leader
/// knows a fire it shards at is not run by an instance that registered after it came due. On a new session it is written in
/// one multi with the progress record, never before it.</item>
/// </list>
/// </summary>
public sealed class JobNodes
{
    public JobNodes(string jobName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobName);
        if (jobName.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"The job name '{jobName}' cannot contain '/': it is a registry node name.", nameof(jobName));
        }

        JobName = jobName;
        Root = "/" + jobName;
        ZooKeeperPaths.Validate(Root, "job node");
    }

    public string JobName { get; }

    /// <summary><c>/{job}</c>, persistent; data: the job's type name (as ElasticJob's class name).</summary>
    public string Root { get; }

    /// <summary><c>config</c>, persistent; data: the effective configuration as UTF-8 JSON (the cluster's truth once written; replaced only with Overwrite).</summary>
    public string Config => Root + "/config";

    /// <summary><c>servers</c>: one child per server IP.</summary>
    public string Servers => Root + "/servers";

    /// <summary><c>servers/{ip}</c>, persistent; data: <c>ENABLED</c> or <c>DISABLED</c> (an operator's DISABLED survives restarts).</summary>
    public string Server(string ip) => Servers + "/" + ip;

    /// <summary><c>instances</c>: one ephemeral child per live instance.</summary>
    public string Instances => Root + "/instances";

    /// <summary><c>instances/{instanceId}</c>, ephemeral; data: ElasticJob's two lines <c>jobInstanceId: {id}</c> and <c>serverIp: {ip}</c>.</summary>
    public string Instance(string instanceId) => Instances + "/" + instanceId;

    /// <summary><c>sharding</c>: one child per item <c>0..shards-1</c>; data: the <see cref="ShardingStamp"/> of the last sharding (JSON), version = sharding generation.</summary>
    public string Sharding => Root + "/sharding";

    /// <summary><c>sharding/{item}</c>, persistent; data: JSON <c>{"instance","fireTime","taskId"}</c> of the item's latest start
    /// (written by every start's marker multi), so a re-sharded fire does not run an item its previous owner already started
    /// for it; its version, which every start bumps, is the item's fencing token (<see cref="ShardContext.FencingToken"/>).</summary>
    public string Item(int item) => Sharding + "/" + item.ToString(CultureInfo.InvariantCulture);

    /// <summary><c>sharding/{item}/instance</c>, persistent; data: the owning instance id, written by the leader in one multi.</summary>
    public string ItemInstance(int item) => Item(item) + "/instance";

    /// <summary><c>sharding/{item}/running</c>, persistent; data: JSON <c>{"instance","fireTime","taskId"}</c> (fireTime in Unix ms).
    /// Never counts as running when its instance is not live.</summary>
    public string ItemRunning(int item) => Item(item) + "/running";

    /// <summary><c>sharding/{item}/misfire</c>, persistent, empty: a fire found the item still running.</summary>
    public string ItemMisfire(int item) => Item(item) + "/misfire";

    /// <summary><c>sharding/{item}/disabled</c>, persistent, empty: the item runs nowhere.</summary>
    public string ItemDisabled(int item) => Item(item) + "/disabled";

    /// <summary><c>sharding/{item}/failover</c>, persistent; data: JSON <c>{"instance","fireTime","taskId"}</c>: who compensates which fire.</summary>
    public string ItemFailover(int item) => Item(item) + "/failover";

    /// <summary><c>leader/election/instance</c>, ephemeral; data: the leader's instance id.</summary>
    public string LeaderInstance => Root + "/leader/election/instance";

    /// <summary><c>leader/sharding/necessary</c>, persistent, empty: re-sharding is due at the leader's next fire.</summary>
    public string ShardingNecessary => Root + "/leader/sharding/necessary";

    /// <summary><c>leader/sharding/processing</c>, ephemeral, empty: the leader is writing assignments.</summary>
    public string ShardingProcessing => Root + "/leader/sharding/processing";

    /// <summary><c>leader/failover/items</c>: items waiting to be compensated.</summary>
    public string FailoverItems => Root + "/leader/failover/items";

    /// <summary><c>leader/failover/items/{item}</c>, persistent; data: JSON <c>{"crashedInstance","fireTime","taskId","flaggedAt"[,"missedFireTime"]}</c>.</summary>
    public string FailoverItem(int item) => FailoverItems + "/" + item.ToString(CultureInfo.InvariantCulture);

    /// <summary><c>progress</c>: one child per instance that ever started a fire.</summary>
    public string ProgressRoot => Root + "/progress";

    /// <summary><c>progress/{instanceId}</c>, persistent; data: JSON <c>{"fireTime","taskId"}</c> of the fire the instance last started.</summary>
    public string Progress(string instanceId) => ProgressRoot + "/" + instanceId;

    /// <summary><c>trigger</c>: one child per instance asked to fire now.</summary>
    public string TriggerRoot => Root + "/trigger";

    /// <summary><c>trigger/{instanceId}</c>, persistent, empty: an operator asked this instance to fire now.</summary>
    public string Trigger(string instanceId) => TriggerRoot + "/" + instanceId;

    /// <summary><c>systemTime/current</c>, persistent: written to read the registry's clock (mtime) for MaxTimeDiffSeconds.</summary>
    public string SystemTime => Root + "/systemTime/current";

    /// <summary>Parses a <c>sharding</c> or <c>leader/failover/items</c> child name; false for anything that is not a non-negative item number.</summary>
    public static bool TryParseItem(string name, out int item) =>
        int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out item) && item.ToString(CultureInfo.InvariantCulture) == name;
}
