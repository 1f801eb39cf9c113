using System.Text;
using Microsoft.Extensions.Logging;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;

namespace ShardedJobs.Cluster;

/// <summary>
/// Re-sharding for one job on one instance, lazily as ElasticJob does it: the leader flags it (<c>leader/sharding/necessary</c>)
/// when the live, enabled instances, the item count or the strategy no longer match the last sharding's stamp; at its next fire
/// the leader computes the assignment and writes it in one multi (owners, stamp, flag removed); non-leaders' fires wait for that.
/// <para>
/// Differences from ElasticJob, each deliberate: the leader does not wait for running items before re-sharding (a fire's marker
/// multi refuses to start an item that is still running anywhere, so a moved item cannot overlap; it is caught up as a misfire
/// instead); a non-leader waits at most until its next fire or <see cref="ShardedJobsOptions.ShardingWaitTimeout"/> and then
/// skips the fire visibly; misfire flags of items that change owner are removed with the new assignment, so no stale catch-up
/// runs on the new owner.
/// </para>
/// </summary>
internal sealed class ShardingCoordinator : IDisposable
{
    private readonly IRegistry _registry;
    private readonly JobNodes _nodes;
    private readonly JobClusterView _view;
    private readonly LeaderElection _election;
    private readonly ShardingStrategyResolver _strategies;
    private readonly Func<JobConfig> _config;
    private readonly string _instanceId;
    private readonly ILogger _logger;
    private readonly ShardedJobsMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _evaluating = new(1, 1);
    private volatile bool _waiting;
    private readonly CancellationTokenSource _stop = new();

    public ShardingCoordinator(IRegistry registry, JobNodes nodes, JobClusterView view, LeaderElection election, ShardingStrategyResolver strategies,
        Func<JobConfig> config, string instanceId, ILogger logger, ShardedJobsMetrics metrics, TimeProvider time)
    {
        _registry = registry;
        _nodes = nodes;
        _view = view;
        _election = election;
        _strategies = strategies;
        _config = config;
        _instanceId = instanceId;
        _logger = logger;
        _metrics = metrics;
        _time = time;
        _election.LeaderChanged += OnLeaderChanged;
    }

    /// <summary>A fire is waiting for the leader's sharding (only a registry change or the deadline moves it on).</summary>
    internal bool IsWaiting => _waiting;

    /// <summary>Why the last sharding no longer fits the cluster as the view sees it, or null when it fits.</summary>
    public static string? ReshardingReason(JobConfig config, ShardingSnapshot sharding, IReadOnlyList<string> available)
    {
        if (available.Count == 0)
        {
            return null; // nobody to shard over; nothing would change
        }

        if (sharding.Stamp is not { } stamp)
        {
            return "the job has never been sharded";
        }

        if (stamp.Shards != config.Shards)
        {
            return $"the item count changed from {stamp.Shards} to {config.Shards}";
        }

        if (stamp.Strategy != config.ShardingStrategy)
        {
            return $"the sharding strategy changed from '{stamp.Strategy}' to '{config.ShardingStrategy}'";
        }

        var joined = available.Except(stamp.Instances, StringComparer.Ordinal).ToList();
        var left = stamp.Instances.Except(available, StringComparer.Ordinal).ToList();
        if (joined.Count > 0 || left.Count > 0)
        {
            return $"the available instances changed ({Describe("joined", joined)}{(joined.Count > 0 && left.Count > 0 ? ", " : "")}{Describe("left", left)})";
        }

        var unowned = Enumerable.Range(0, config.Shards).Where(i => !sharding.Owners.TryGetValue(i, out var owner) || !available.Contains(owner, StringComparer.Ordinal)).ToList();
        return unowned.Count > 0 ? $"item(s) {string.Join(",", unowned)} have no available owner" : null;

        static string Describe(string what, List<string> ids) => ids.Count == 0 ? "" : $"{what}: {string.Join(", ", ids)}";
    }

    /// <summary>
    /// Called at the start of the fire of <paramref name="fireTime"/>: returns the assignment the fire must use, after the
    /// leader's pending re-sharding (computed here when this instance leads); null when the fire must be skipped (the wait ended
    /// at <paramref name="deadline"/>). <paramref name="laterFire"/> is the schedule's fire after this one (null for a fire off
    /// the schedule). A re-sharding flagged while the leader's fire has run this one on the assignment in effect is made only
    /// at a later fire; waiting for it and then running this fire on it lost the items it gives this instance's items of this
    /// fire to an instance that ran it already, or registered after it came due. So:
    /// <list type="bullet">
    /// <item>a re-sharding flagged again right after the leader sharded for this fire (an instance joined or left just then)
    /// is the next fire's: this fire runs at once on the assignment the leader made for it, as the leader's own fire did;</item>
    /// <item>one waited for that turns out stamped at or after <paramref name="laterFire"/> was made at a later fire: this fire
    /// keeps the owners in effect when it came due (checked against the new generation).</item>
    /// </list>
    /// </summary>
    public async Task<ShardingSnapshot?> PrepareAsync(DateTimeOffset fireTime, DateTimeOffset? laterFire, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var inEffectAtFire = _view.Sharding;
        var sharding = await WaitForReshardingAsync(fireTime, laterFire, deadline, cancellationToken).ConfigureAwait(false);
        return sharding is { Stamp: { } stamp } && laterFire is { } later && stamp.ShardedAt >= later
            && inEffectAtFire.Stamp is not null && sharding.Generation != inEffectAtFire.Generation
            ? inEffectAtFire with { Generation = sharding.Generation }
            : sharding;
    }

    private async Task<ShardingSnapshot?> WaitForReshardingAsync(DateTimeOffset fireTime, DateTimeOffset? laterFire, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var readBackAfterLostReply = false;
        var (from, until) = ShardingWindow(fireTime, laterFire);
        while (true)
        {
            var config = _config();
            var leading = _election.IsLeader;
            var reason = leading ? ReshardingReason(config, _view.Sharding, _view.AvailableInstances()) : null;
            if ((!_view.ReshardingNecessary && reason is null) || (!leading && ShardedForThisFire(_view.Sharding)))
            {
                return _view.Sharding;
            }

            if (leading)
            {
                try
                {
                    await ShardAsync(reason ?? "re-sharding was flagged", cancellationToken).ConfigureAwait(false);
                }
                catch (RegistryException e) when (e is not RegistryMultiException && e.Code == RegistryErrorCode.ConnectionLoss && !readBackAfterLostReply)
                {
                    // Applied or not, nobody can tell from the error: the reply may have been lost after the registry applied the
                    // assignment. Skipping the fire then ran it on neither assignment: the items moved to this leader had no
                    // owner left for it. The view can tell: read again (by the deadline), and use the new assignment or shard again.
                    readBackAfterLostReply = true;
                    if (!await RefreshByAsync(deadline, cancellationToken).ConfigureAwait(false))
                    {
                        throw;
                    }

                    continue;
                }

                await _view.RefreshAsync(ViewParts.Sharding | ViewParts.ReshardingFlag).WaitAsync(cancellationToken).ConfigureAwait(false);
                return _view.Sharding;
            }

            var remaining = deadline - _time.GetUtcNow();
            using var deadlineSource = new CancellationTokenSource(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, _time);
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadlineSource.Token);
            bool done;
            _waiting = true;
            try
            {
                done = await _view.WaitUntilAsync(v => !v.ReshardingNecessary || _election.IsLeader || ShardedForThisFire(v.Sharding), either.Token).ConfigureAwait(false);
            }
            finally
            {
                _waiting = false;
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (!done)
            {
                JobLog.ShardingWaitTimedOut(_logger, _nodes.JobName, _election.Leader ?? "(none)", remaining);
                return null;
            }

            if (!_election.IsLeader)
            {
                // The flag is gone (or the assignment for this fire came): the leader wrote one. Read it before using it.
                await _view.RefreshAsync(ViewParts.Sharding | ViewParts.ReshardingFlag).WaitAsync(either.Token).ConfigureAwait(false);
            }
        }

        bool ShardedForThisFire(ShardingSnapshot sharding) =>
            sharding.Stamp is { } stamp && stamp.ShardedAt >= from && stamp.ShardedAt < until;
    }

    /// <summary>
    /// When the leader's sharding at the fire of <paramref name="fireTime"/> is written, by its clock (the leader shards at its
    /// fire): from a little before the fire — its clock may be ahead; 5 s, or half the interval for a frequent job — to as long
    /// before the next fire <paramref name="nextFire"/>. A sharding written before <c>Until</c> is the one that fire ran on, or
    /// an earlier one.
    /// </summary>
    private static (DateTimeOffset From, DateTimeOffset Until) ShardingWindow(DateTimeOffset fireTime, DateTimeOffset? nextFire)
    {
        var slack = nextFire is { } next ? TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(5).Ticks, (next - fireTime).Ticks / 2)) : TimeSpan.FromSeconds(5);
        return (fireTime - slack, nextFire is { } later ? later - slack : DateTimeOffset.MaxValue);
    }

    /// <summary>Reads the assignment and the flag again; false when that did not finish by <paramref name="deadline"/>.</summary>
    private async Task<bool> RefreshByAsync(DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var remaining = deadline - _time.GetUtcNow();
        using var deadlineSource = new CancellationTokenSource(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, _time);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadlineSource.Token);
        try
        {
            await _view.RefreshAsync(ViewParts.Sharding | ViewParts.ReshardingFlag).WaitAsync(either.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Computes and writes the assignment (leader only). Failures are logged; the flag stays for the next fire.</summary>
    public async Task ShardAsync(string reason, CancellationToken cancellationToken)
    {
        var config = _config();
        await _view.RefreshAsync(ViewParts.Instances | ViewParts.Servers).WaitAsync(cancellationToken).ConfigureAwait(false);
        var available = _view.AvailableInstances();
        if (available.Count == 0)
        {
            JobLog.NoAvailableInstances(_logger, _nodes.JobName);
            return;
        }

        if (!_strategies.TryResolve(config.ShardingStrategy, out var strategy, out var strategyError))
        {
            JobLog.ShardingFailed(_logger, _nodes.JobName, strategyError, null);
            return;
        }

        IReadOnlyDictionary<string, IReadOnlyList<int>> assignment;
        try
        {
            assignment = ShardingAssignment.Assign(strategy, available, _nodes.JobName, config.Shards);
        }
        catch (InvalidOperationException e)
        {
            // A custom strategy that throws or returns a broken assignment must not take the old assignment down with it.
            JobLog.ShardingFailed(_logger, _nodes.JobName, e.Message, e);
            return;
        }

        var owners = assignment.SelectMany(a => a.Value.Select(item => (item, instance: a.Key))).ToDictionary(a => a.item, a => a.instance);

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await WriteAssignmentAsync(config, available, owners, cancellationToken).ConfigureAwait(false);
                _metrics.Sharded(_nodes.JobName);
                JobLog.Sharded(_logger, _nodes.JobName, config.Shards, available.Count, reason, Summarize(assignment));
                return;
            }
            catch (RegistryException e) when (attempt < 3 && !e.IsTransient)
            {
                // Someone changed a node between our reads and the multi (an operator, a shrinking count): read again.
            }
        }
    }

    /// <summary>
    /// Sets <c>leader/sharding/necessary</c> and, in the same multi, bumps the sharding generation: a fire of another instance
    /// that read the assignment before the flag then fails its marker multi, re-reads, and waits for the new assignment instead
    /// of starting items of the old one. (A change the leader has not seen yet when a fire starts can still be acted on one fire
    /// late, as in ElasticJob.) Idempotent.
    /// </summary>
    public async Task FlagAsync(string reason, CancellationToken cancellationToken)
    {
        await _registry.EnsurePathAsync(ZooKeeper.ZooKeeperPaths.Parent(_nodes.ShardingNecessary), cancellationToken).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            var sharding = await _registry.GetAsync(_nodes.Sharding, cancellationToken: cancellationToken).ConfigureAwait(false);
            List<RegistryOp> operations = [new RegistryOp.Create(_nodes.ShardingNecessary, ReadOnlyMemory<byte>.Empty)];
            if (sharding is not null)
            {
                operations.Add(new RegistryOp.SetData(_nodes.Sharding, sharding.Data, sharding.Stat.Version));
            }

            try
            {
                await _registry.MultiAsync(operations, cancellationToken).ConfigureAwait(false);
                JobLog.ReshardingFlagged(_logger, _nodes.JobName, reason);
                return;
            }
            catch (RegistryMultiException e) when (e.Code == RegistryErrorCode.NodeExists && e.FailedIndex == 0)
            {
                return; // flagged already
            }
            catch (RegistryMultiException e) when (e.Code is RegistryErrorCode.BadVersion or RegistryErrorCode.NoNode && attempt < 5)
            {
                // the sharding node changed meanwhile: read it again
            }
        }
    }

    public void Dispose()
    {
        _election.LeaderChanged -= OnLeaderChanged;
        _stop.Cancel();
        _stop.Dispose();
    }

    private async Task WriteAssignmentAsync(JobConfig config, IReadOnlyList<string> available, Dictionary<int, string> owners, CancellationToken cancellationToken)
    {
        await _registry.EnsurePathAsync(_nodes.Sharding, cancellationToken).ConfigureAwait(false);
        await MarkProcessingAsync(cancellationToken).ConfigureAwait(false);

        var existing = await _registry.GetChildrenAsync(_nodes.Sharding, cancellationToken: cancellationToken).ConfigureAwait(false) ?? [];
        foreach (var name in existing)
        {
            if (JobNodes.TryParseItem(name, out var removed) && removed >= config.Shards)
            {
                // The count shrank: the item goes with everything on it, and so does a compensation waiting for it.
                await _registry.DeleteRecursiveAsync(_nodes.Item(removed), cancellationToken).ConfigureAwait(false);
                await _registry.DeleteRecursiveAsync(_nodes.FailoverItem(removed), cancellationToken).ConfigureAwait(false);
            }
        }

        var items = await Task.WhenAll(Enumerable.Range(0, config.Shards).Select(async item =>
        {
            var children = await _registry.GetChildrenAsync(_nodes.Item(item), cancellationToken: cancellationToken).ConfigureAwait(false);
            var owner = children?.Contains("instance") == true ? await _registry.GetStringAsync(_nodes.ItemInstance(item), cancellationToken).ConfigureAwait(false) : null;
            return (item, exists: children is not null, owner, misfire: children?.Contains("misfire") == true);
        })).ConfigureAwait(false);

        var operations = new List<RegistryOp>();
        foreach (var (item, exists, owner, misfire) in items)
        {
            var data = Encoding.UTF8.GetBytes(owners[item]);
            if (!exists)
            {
                operations.Add(new RegistryOp.Create(_nodes.Item(item), ReadOnlyMemory<byte>.Empty));
            }

            operations.Add(owner is null ? new RegistryOp.Create(_nodes.ItemInstance(item), data) : new RegistryOp.SetData(_nodes.ItemInstance(item), data));
            if (misfire && owner != owners[item])
            {
                operations.Add(new RegistryOp.Delete(_nodes.ItemMisfire(item)));
            }
        }

        if (await _registry.ExistsAsync(_nodes.ShardingNecessary, cancellationToken: cancellationToken).ConfigureAwait(false) is not null)
        {
            operations.Add(new RegistryOp.Delete(_nodes.ShardingNecessary));
        }

        operations.Add(new RegistryOp.Delete(_nodes.ShardingProcessing));
        operations.Add(new RegistryOp.SetData(_nodes.Sharding, JobNodeData.Encode(new ShardingStamp(available, config.Shards, config.ShardingStrategy, _instanceId, _time.GetUtcNow()))));
        await _registry.MultiAsync(operations, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates <c>leader/sharding/processing</c>; one left by a leader that resigned (its session still alive) is replaced.</summary>
    private async Task MarkProcessingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _registry.CreateWithParentsAsync(_nodes.ShardingProcessing, ReadOnlyMemory<byte>.Empty, NodeKind.Ephemeral, cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
            var stat = await _registry.ExistsAsync(_nodes.ShardingProcessing, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (stat is not null && stat.EphemeralOwner != _registry.SessionId)
            {
                await _registry.DeleteAsync(_nodes.ShardingProcessing, stat.Version, cancellationToken).ConfigureAwait(false);
                await _registry.CreateAsync(_nodes.ShardingProcessing, ReadOnlyMemory<byte>.Empty, NodeKind.Ephemeral, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Called by the job runtime after it has applied a registry change (so a new config is already in force).</summary>
    public void OnViewChanged(ViewParts changed)
    {
        if ((changed & (ViewParts.Config | ViewParts.Instances | ViewParts.Servers | ViewParts.Sharding | ViewParts.ReshardingFlag)) != 0)
        {
            _ = FlagIfNecessaryAsync();
        }
    }

    private void OnLeaderChanged(string? leader)
    {
        if (leader == _instanceId)
        {
            JobLog.BecameLeader(_logger, _nodes.JobName, _instanceId);
            _ = FlagIfNecessaryAsync();
        }
    }

    /// <summary>The leader's duty: flag re-sharding when the last sharding no longer fits. Idempotent; serialised.</summary>
    private async Task FlagIfNecessaryAsync()
    {
        if (!_election.IsLeader || _stop.IsCancellationRequested)
        {
            return;
        }

        try
        {
            await _evaluating.WaitAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }

        try
        {
            if (!_election.IsLeader || _view.ReshardingNecessary)
            {
                return;
            }

            if (ReshardingReason(_config(), _view.Sharding, _view.AvailableInstances()) is null)
            {
                return;
            }

            // The view may be between two events of one change (our own sharding deletes the flag and writes the stamp in one
            // multi, but they arrive as two watch events): confirm on a fresh read before flagging.
            await _view.RefreshAsync(ViewParts.Sharding | ViewParts.ReshardingFlag | ViewParts.Instances | ViewParts.Servers).WaitAsync(_stop.Token).ConfigureAwait(false);
            var reason = ReshardingReason(_config(), _view.Sharding, _view.AvailableInstances());
            if (reason is null || _view.ReshardingNecessary || !_election.IsLeader)
            {
                return;
            }

            await FlagAsync(reason, _stop.Token).ConfigureAwait(false);
        }
        catch (RegistryException e)
        {
            // The leader's next fire recomputes the same reason and shards anyway; reconcile flags it too.
            JobLog.RegistryCallFailed(_logger, _nodes.JobName, "flagging re-sharding", e.Message);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            _evaluating.Release();
        }
    }

    private static string Summarize(IReadOnlyDictionary<string, IReadOnlyList<int>> assignment) =>
        string.Join("; ", assignment.OrderByDescending(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key}: [{string.Join(",", a.Value)}]"));
}
