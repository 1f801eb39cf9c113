using System.Collections.Immutable;
using System.Globalization;
using Microsoft.Extensions.Logging;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;
using ShardedJobs.Scheduling;

namespace ShardedJobs.Cluster;

/// <summary>An item this instance claimed for compensation.</summary>
internal sealed record FailoverClaim(int Item, FailoverFlag Flag);

/// <summary>
/// The failover protocol of one job on one instance, in one place (design §3; ElasticJob's §5 with its gaps closed).
/// <list type="number">
/// <item><b>Flag.</b> When an instance leaves (its ephemeral registration vanishes: crash, kill, partition, or a stop that cut
/// items short), every live instance flags its unfinished items in <c>leader/failover/items/{item}</c>: the items whose
/// running marker names it, the items it was compensating (claims naming it: failover of a failover), and the items it was
/// assigned for a fire that had come but that it never started (its progress record is older than that fire). Completed
/// items have no marker, so they are never flagged. One multi writes every flag, removes the evidence it replaces and deletes
/// the instance's progress record at the version read: the departure is handled exactly once, however many instances see it,
/// and never after the instance came back (coming back bumps that version).</item>
/// <item><b>Claim.</b> One multi per item: delete the flag at its version and write <c>sharding/{item}/failover</c> = the
/// claimant with the interrupted fire time and task id. Two instances can never claim the same item; no latch.</item>
/// <item><b>Compensate.</b> The job runtime runs the claimed item with <see cref="ShardContext.IsFailover"/> and the original
/// fire time under the usual running-marker discipline, and calls <see cref="ReleaseClaimAsync"/> when it ends.</item>
/// <item><b>Repair.</b> <see cref="ReconcileAsync"/> handles departures nobody handled (total loss: the first instance back
/// flags what the dead ones left) and evidence naming dead instances that has no progress record.</item>
/// </list>
/// </summary>
internal sealed class FailoverCoordinator
{
    private readonly IRegistry _registry;
    private readonly JobNodes _nodes;
    private readonly JobClusterView _view;
    private readonly string _instanceId;
    private readonly Func<ResolvedJobConfig> _config;
    private readonly ILogger _logger;
    private readonly ShardedJobsMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, FailoverFlag> _unsettledClaims = new();

    public FailoverCoordinator(IRegistry registry, JobNodes nodes, JobClusterView view, string instanceId, Func<ResolvedJobConfig> config,
        ILogger logger, ShardedJobsMetrics metrics, TimeProvider time)
    {
        _registry = registry;
        _nodes = nodes;
        _view = view;
        _instanceId = instanceId;
        _config = config;
        _logger = logger;
        _metrics = metrics;
        _time = time;
    }

    /// <summary>
    /// Flags the unfinished items of <paramref name="instanceId"/>, which left. Returns the items flagged by this call (empty when
    /// another instance handled the departure first, when there was nothing unfinished, or when the instance is live again).
    /// </summary>
    public async Task<IReadOnlyList<int>> FlagDepartedAsync(string instanceId, string how, CancellationToken cancellationToken)
    {
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            var progressNode = await _registry.GetAsync(_nodes.Progress(instanceId), cancellationToken: cancellationToken).ConfigureAwait(false);
            if (progressNode is null)
            {
                return []; // handled already (or it never ran anything)
            }

            if (await _registry.ExistsAsync(_nodes.Instance(instanceId), cancellationToken: cancellationToken).ConfigureAwait(false) is not null)
            {
                return []; // it is live (it came back, or never left): it handles its own items
            }

            var progress = JobNodeData.TryDecodeProgress(_nodes.Progress(instanceId), progressNode.Data, out var read, out var error) ? read : null;
            if (error is not null)
            {
                JobLog.CorruptNode(_logger, _nodes.JobName, _nodes.Progress(instanceId), error.Message);
            }

            var evidence = await ReadEvidenceAsync(cancellationToken).ConfigureAwait(false);
            var plan = new FlagPlan(_time.GetUtcNow(), Merge);
            var missedFire = MissedFire(instanceId, progress);
            foreach (var (item, state) in evidence.Items)
            {
                if (state.Marker is { } marker && marker.Content.Instance == instanceId)
                {
                    // Its session outlived a later fire while this item still ran there: alive, it would have run that fire as a
                    // misfire right after; the compensation does it instead, so no fire of the item is lost. That later fire may
                    // have come while the instance started others of its items (its progress record moved on): the item's
                    // misfire flag then says the fire found it still running and owes it a catch-up.
                    var due = missedFire ?? (state.Misfired ? LatestFire(instanceId, marker.Content.FireTime) : null);
                    var missed = due is { } later && later > marker.Content.FireTime && _config().Config.Misfire && Owns(instanceId, item) ? later : (DateTimeOffset?)null;
                    // A compensation it ran holds the missed fire its claim carried on from the one before (failover of a failover):
                    // the claim's flag below merges into this one.
                    FlagUnfinished(plan, item, state, new FailoverFlag(instanceId, marker.Content.FireTime, marker.Content.TaskId, MissedFireTime: missed));
                    plan.Operations.Add(new RegistryOp.Delete(_nodes.ItemRunning(item), marker.Version));
                }

                if (state.Claim is { } claim && claim.Content.Instance == instanceId)
                {
                    FlagUnfinished(plan, item, state, new FailoverFlag(instanceId, claim.Content.FireTime, claim.Content.TaskId, MissedFireTime: claim.Content.MissedFireTime));
                    plan.Operations.Add(new RegistryOp.Delete(_nodes.ItemFailover(item), claim.Version));
                }
            }

            foreach (var (item, fireTime) in NeverStarted(instanceId, progress, evidence))
            {
                plan.Flag(item, new FailoverFlag(instanceId, fireTime, NeverStartedTaskId(item, instanceId, fireTime)));
            }

            await AddFlagOperationsAsync(plan, evidence, cancellationToken).ConfigureAwait(false);
            plan.Operations.Add(new RegistryOp.Delete(_nodes.Progress(instanceId), progressNode.Stat.Version));
            try
            {
                await _registry.EnsurePathAsync(_nodes.FailoverItems, cancellationToken).ConfigureAwait(false);
                await _registry.MultiAsync(plan.Operations, cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryMultiException e) when (e.Path == _nodes.Progress(instanceId))
            {
                return []; // another instance handled it, or it came back (its progress version moved)
            }
            catch (RegistryMultiException) when (attempt < 5)
            {
                continue; // evidence changed between the reads and the multi: read again
            }

            var flagged = plan.Flags.Keys.Order().ToList();
            _metrics.FailoversFlagged(_nodes.JobName, flagged.Count);
            JobLog.DepartureHandled(_logger, _nodes.JobName, instanceId, how, flagged.Count == 0 ? "none" : string.Join(",", flagged));
            return flagged;
        }

        return [];
    }

    /// <summary>
    /// A fire of <paramref name="fireTime"/> found <paramref name="items"/> assigned to <paramref name="owner"/>, which has no
    /// registration: nobody runs them at that fire (the leader that would re-shard may be gone too, its session not yet expired).
    /// If the owner's departure has not been handled, it is handled now (this clock has reached the fire, so the fire is among
    /// those it missed). If it has been — before this fire came due, so its handling could not flag it — each such item not
    /// started for this fire (or a later one) is flagged as never started by its owner, in one multi that checks every item
    /// node's version (a start bumps it): the fire is compensated once, however many instances see it. Returns the items flagged.
    /// </summary>
    public async Task<IReadOnlyList<int>> FlagUnrunAsync(string owner, IReadOnlyCollection<int> items, DateTimeOffset fireTime, CancellationToken cancellationToken)
    {
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            if (await _registry.ExistsAsync(_nodes.Instance(owner), cancellationToken: cancellationToken).ConfigureAwait(false) is not null)
            {
                return []; // live after all (the view lagged, or it came back): it answers for its fires itself
            }

            if (await _registry.ExistsAsync(_nodes.Progress(owner), cancellationToken: cancellationToken).ConfigureAwait(false) is not null)
            {
                return await FlagDepartedAsync(owner, "left (its registration is gone; found by a fire its assignment still names)", cancellationToken).ConfigureAwait(false);
            }

            // The item nodes' versions first, then their last starts: a start between the two reads fails the multi's checks.
            var versions = new Dictionary<int, int>();
            // The items of the assignment the fire ran on (the caller's), not of the current one: a fire that waited for a
            // re-sharding made at a later fire ran on the one it came due under, where the gone owner still has them.
            foreach (var item in items.Where(i => i < _config().Config.Shards && !_view.DisabledItems.Contains(i)).Order())
            {
                if (await _registry.ExistsAsync(_nodes.Item(item), cancellationToken: cancellationToken).ConfigureAwait(false) is { } stat)
                {
                    versions[item] = stat.Version;
                }
            }

            var evidence = await ReadEvidenceAsync(cancellationToken).ConfigureAwait(false);
            var plan = new FlagPlan(_time.GetUtcNow(), Merge);
            foreach (var (item, version) in versions)
            {
                if (!evidence.Items.TryGetValue(item, out var state)
                    || (state.LastStart is { } last && last.FireTime >= fireTime)
                    || (state.Claim is { } claim && (claim.Content.MissedFireTime ?? claim.Content.FireTime) >= fireTime))
                {
                    continue; // run for this fire already (a re-sharding moved it), or a compensation answers for it
                }

                plan.Flag(item, new FailoverFlag(owner, fireTime, NeverStartedTaskId(item, owner, fireTime)));
                plan.Operations.Add(new RegistryOp.Check(_nodes.Item(item), version));
            }

            if (plan.Flags.Count == 0)
            {
                return [];
            }

            await AddFlagOperationsAsync(plan, evidence, cancellationToken).ConfigureAwait(false);
            try
            {
                await _registry.EnsurePathAsync(_nodes.FailoverItems, cancellationToken).ConfigureAwait(false);
                await _registry.MultiAsync(plan.Operations, cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryMultiException) when (attempt < 5)
            {
                continue; // an item started, or a flag changed, between the reads and the multi: read again
            }

            var flagged = plan.Flags.Keys.Order().ToList();
            _metrics.FailoversFlagged(_nodes.JobName, flagged.Count);
            JobLog.DepartureHandled(_logger, _nodes.JobName, owner, $"is gone but still assigned item(s) at fire {fireTime:O}", string.Join(",", flagged));
            return flagged;
        }

        return [];
    }

    /// <summary>The items of <paramref name="items"/> whose <paramref name="fireTime"/> (or a later fire) a waiting flag or a claim
    /// answers for: failover runs that fire of them.</summary>
    public async Task<IReadOnlyList<int>> AnsweredByFailoverAsync(IReadOnlyCollection<int> items, DateTimeOffset fireTime, CancellationToken cancellationToken)
    {
        var answered = new List<int>();
        foreach (var item in items.Order())
        {
            var flagNode = await _registry.GetAsync(_nodes.FailoverItem(item), cancellationToken: cancellationToken).ConfigureAwait(false);
            if (flagNode is not null && JobNodeData.TryDecodeFailoverFlag(_nodes.FailoverItem(item), flagNode.Data, out var flag, out _)
                && OwedUntil(flag!) >= fireTime)
            {
                answered.Add(item);
                continue;
            }

            if (await ReadMarkerAsync(_nodes.ItemFailover(item), cancellationToken).ConfigureAwait(false) is { } claim
                && (claim.Content.MissedFireTime ?? claim.Content.FireTime) >= fireTime)
            {
                answered.Add(item);
            }
        }

        return answered;
    }

    /// <summary>
    /// This instance cut items short while it was cut off (self-fencing) and is back: it flags them itself, if they are still its
    /// own (their markers carry its task ids) and its departure was not handled meanwhile (its progress record, at the version
    /// read, is the guard). Returns the items flagged.
    /// </summary>
    public async Task<IReadOnlyList<int>> FlagOwnAsync(IReadOnlyCollection<(int Item, string TaskId)> items, CancellationToken cancellationToken)
    {
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            var progress = await _registry.ExistsAsync(_nodes.Progress(_instanceId), cancellationToken: cancellationToken).ConfigureAwait(false);
            if (progress is null || items.Count == 0)
            {
                return []; // handled by the others while this instance was gone
            }

            var evidence = await ReadEvidenceAsync(cancellationToken).ConfigureAwait(false);
            var plan = new FlagPlan(_time.GetUtcNow(), Merge);
            foreach (var (item, taskId) in items)
            {
                if (!evidence.Items.TryGetValue(item, out var state))
                {
                    continue;
                }

                if (state.Marker is { } marker && marker.Content.Instance == _instanceId && marker.Content.TaskId == taskId)
                {
                    FlagUnfinished(plan, item, state, new FailoverFlag(_instanceId, marker.Content.FireTime, taskId));
                    plan.Operations.Add(new RegistryOp.Delete(_nodes.ItemRunning(item), marker.Version));
                    if (state.Claim is { } claim && claim.Content.Instance == _instanceId)
                    {
                        // The claim's fires (the same as the cut-short run's, or one its compensation waited with behind that run)
                        // merge into the flag: the claim goes.
                        FlagUnfinished(plan, item, state, new FailoverFlag(_instanceId, claim.Content.FireTime, claim.Content.TaskId, MissedFireTime: claim.Content.MissedFireTime));
                        plan.Operations.Add(new RegistryOp.Delete(_nodes.ItemFailover(item), claim.Version));
                    }
                }
            }

            if (plan.Operations.Count == 0)
            {
                return []; // (a run whose fire completed elsewhere is not flagged, but its marker and claim still go)
            }

            await AddFlagOperationsAsync(plan, evidence, cancellationToken).ConfigureAwait(false);
            plan.Operations.Add(new RegistryOp.Check(_nodes.Progress(_instanceId), progress.Version));
            try
            {
                await _registry.EnsurePathAsync(_nodes.FailoverItems, cancellationToken).ConfigureAwait(false);
                await _registry.MultiAsync(plan.Operations, cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryMultiException) when (attempt < 5)
            {
                continue;
            }

            var flagged = plan.Flags.Keys.Order().ToList();
            _metrics.FailoversFlagged(_nodes.JobName, flagged.Count);
            JobLog.DepartureHandled(_logger, _nodes.JobName, _instanceId, "cut its own items short while cut off from the registry (self-fencing)", flagged.Count == 0 ? "none" : string.Join(",", flagged));
            return flagged;
        }

        return [];
    }

    /// <summary>Claims whose multi's outcome is unknown (the connection was lost before its reply): the next
    /// <see cref="ClaimAsync"/> reads whether they are ours.</summary>
    public bool HasUnsettledClaims => !_unsettledClaims.IsEmpty;

    /// <summary>Claims up to <paramref name="capacity"/> waiting items, each atomically; returns what this instance won.</summary>
    public async Task<IReadOnlyList<FailoverClaim>> ClaimAsync(int capacity, CancellationToken cancellationToken)
    {
        var shards = _config().Config.Shards;
        var claims = new List<FailoverClaim>();
        try
        {
            await SettleUnknownClaimsAsync(claims, cancellationToken).ConfigureAwait(false);
            var waiting = await _registry.GetChildrenAsync(_nodes.FailoverItems, cancellationToken: cancellationToken).ConfigureAwait(false) ?? [];
            var flagNodes = new List<(int Item, RegistryNode Node, DateTimeOffset FlaggedAt)>();
            foreach (var item in waiting.Select(n => JobNodes.TryParseItem(n, out var i) ? i : -1).Where(i => i >= 0))
            {
                // Null: someone else was faster. An unreadable flag sorts first, to be cleared at once.
                if (await _registry.GetAsync(_nodes.FailoverItem(item), cancellationToken: cancellationToken).ConfigureAwait(false) is { } node)
                {
                    var flaggedAt = JobNodeData.TryDecodeFailoverFlag(_nodes.FailoverItem(item), node.Data, out var read, out _) ? read!.FlaggedAt ?? DateTimeOffset.MinValue : DateTimeOffset.MinValue;
                    flagNodes.Add((item, node, flaggedAt));
                }
            }

            // Oldest flag first, not lowest item first: where claimants have a free slot only now and then and flags keep coming
            // (an overloaded job), item order passed a high item's flag over for minutes, while its new owner's fires overtook
            // the fire it owed — lost.
            foreach (var (item, flagNode, _) in flagNodes.OrderBy(f => f.FlaggedAt).ThenBy(f => f.Item))
            {
                if (claims.Count >= capacity)
                {
                    break;
                }

                var flagPath = _nodes.FailoverItem(item);
                FailoverFlag? flag = null;
                RegistryDataException? error = null;
                if (item >= shards || !JobNodeData.TryDecodeFailoverFlag(flagPath, flagNode.Data, out flag, out error))
                {
                    // An item that no longer exists, or a flag nobody can read: nothing to compensate; say so and clear it.
                    JobLog.FailoverDiscarded(_logger, _nodes.JobName, item, item >= shards ? $"the job has {shards} item(s) now" : error!.Message);
                    await DeleteQuietlyAsync(flagPath, flagNode.Stat.Version, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var claimPath = _nodes.ItemFailover(item);
                var existing = await _registry.ExistsAsync(claimPath, cancellationToken: cancellationToken).ConfigureAwait(false) is null
                    ? null
                    : await _registry.GetAsync(claimPath, cancellationToken: cancellationToken).ConfigureAwait(false);
                if (existing is not null && JobNodeData.TryDecodeItemMarker(claimPath, existing.Data, out var holder, out _)
                    && await _registry.ExistsAsync(_nodes.Instance(holder!.Instance), cancellationToken: cancellationToken).ConfigureAwait(false) is not null)
                {
                    // A live instance holds a claim on the item: never overwrite it (two compensations would run). The flag waits
                    // until that compensation has ended and its claim is gone.
                    continue;
                }

                var claimData = JobNodeData.Encode(new ItemMarker(_instanceId, flag!.FireTime, flag.TaskId, flag.MissedFireTime));
                RegistryOp write = existing is null ? new RegistryOp.Create(claimPath, claimData) : new RegistryOp.SetData(claimPath, claimData, existing.Stat.Version);
                try
                {
                    await _registry.MultiAsync([new RegistryOp.Delete(flagPath, flagNode.Stat.Version), write], cancellationToken).ConfigureAwait(false);
                }
                catch (RegistryMultiException)
                {
                    continue; // claimed by another instance between our read and our multi
                }
                catch (RegistryException)
                {
                    // Applied or not: nobody else can tell. If it was, the claim names us and only we would ever run it.
                    _unsettledClaims[item] = flag;
                    throw;
                }

                Claimed(item, flag, claims);
            }
        }
        catch (RegistryException e) when (claims.Count > 0)
        {
            // Keep what is ours already: dropping it would leave claims naming this live instance that nobody runs.
            JobLog.RegistryCallFailed(_logger, _nodes.JobName, "claiming more items to compensate", e.Message);
        }

        return claims;
    }

    /// <summary>Reads the claims whose multi may or may not have been applied: one naming us with the flag's fire and task id is ours.</summary>
    private async Task SettleUnknownClaimsAsync(List<FailoverClaim> claims, CancellationToken cancellationToken)
    {
        foreach (var (item, flag) in _unsettledClaims)
        {
            var held = await ReadOwnClaimAsync(item, cancellationToken).ConfigureAwait(false);
            _unsettledClaims.TryRemove(item, out _);
            if (held is not null && held.Content.FireTime == flag.FireTime && held.Content.TaskId == flag.TaskId)
            {
                Claimed(item, flag, claims);
            }
        }
    }

    private void Claimed(int item, FailoverFlag flag, List<FailoverClaim> claims)
    {
        _metrics.FailoverClaimed(_nodes.JobName);
        JobLog.FailoverClaimed(_logger, _nodes.JobName, item, flag.CrashedInstance, flag.FireTime, _instanceId);
        claims.Add(new FailoverClaim(item, flag));
    }

    /// <summary>The compensation of <paramref name="item"/> ended (ran to the end, or failed): the claim goes, if it is still ours.</summary>
    public async Task ReleaseClaimAsync(int item, CancellationToken cancellationToken)
    {
        if (await ReadOwnClaimAsync(item, cancellationToken).ConfigureAwait(false) is { } claim)
        {
            await DeleteQuietlyAsync(_nodes.ItemFailover(item), claim.Version, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A compensation (task <paramref name="taskId"/>) ended — completed, failed, or cancelled other than by fencing or shutdown:
    /// in ONE multi its running marker goes and its claim goes too, or, when <paramref name="advance"/> and the crashed instance
    /// also missed a later fire (<see cref="FailoverFlag.MissedFireTime"/>), the claim moves on to that fire, which is returned
    /// for the caller to run next (so that a crash of this instance now is compensated for it). Only what is still this
    /// instance's is touched. A lost connection is retried until it is back (a claim left behind would make the finished
    /// compensation run again when this instance leaves); <paramref name="giveUp"/> (shutdown) ends the retries.
    /// </summary>
    public async Task<FailoverClaim?> SettleCompensationAsync(FailoverClaim claim, string taskId, bool advance, CancellationToken giveUp)
    {
        var item = claim.Item;
        var pause = TimeSpan.FromMilliseconds(100);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var marker = await ReadMarkerAsync(_nodes.ItemRunning(item), CancellationToken.None).ConfigureAwait(false);
                var held = await ReadOwnClaimAsync(item, CancellationToken.None).ConfigureAwait(false);
                List<RegistryOp> operations = [];
                if (marker is not null && marker.Content.Instance == _instanceId && marker.Content.TaskId == taskId)
                {
                    operations.Add(new RegistryOp.Delete(_nodes.ItemRunning(item), marker.Version));
                }

                FailoverClaim? next = null;
                if (held is not null)
                {
                    // The claim's own missed fire, not the one it was claimed with: a run of it that completed after all took it off.
                    if (advance && held.Content.MissedFireTime is { } missed)
                    {
                        next = claim with { Flag = OnToMissedFire(item, claim.Flag, missed) };
                        operations.Add(new RegistryOp.SetData(_nodes.ItemFailover(item), JobNodeData.Encode(new ItemMarker(_instanceId, missed, next.Flag.TaskId)), held.Version));
                    }
                    else
                    {
                        operations.Add(new RegistryOp.Delete(_nodes.ItemFailover(item), held.Version));
                    }
                }

                if (operations.Count > 0)
                {
                    await _registry.MultiAsync(operations, CancellationToken.None).ConfigureAwait(false);
                }

                return next;
            }
            catch (RegistryMultiException) when (attempt < 5)
            {
                // changed between the reads and the multi: read again
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.ConnectionLoss && !giveUp.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(pause, _time, giveUp).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    JobLog.MarkerReleaseFailed(_logger, _nodes.JobName, item, "stopped while the registry was unreachable");
                    return null;
                }

                pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 1000));
            }
            catch (RegistryException e)
            {
                // The session ended: the marker and claim name this instance; its departure hands them to failover.
                JobLog.MarkerReleaseFailed(_logger, _nodes.JobName, item, e.Message);
                return null;
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="claim"/> is still this instance's, for the same fire and task: a compensation runs only under
    /// its claim. A claim its departure handed back to failover (and that this instance may have claimed again, as a new
    /// compensation) or that a finished compensation settled is not the one an older, still waiting compensation holds.
    /// </summary>
    /// <returns>The claim as the registry holds it (<see cref="ItemMarker.FireCompleted"/> may be set since), or null.</returns>
    public async Task<ItemMarker?> HeldClaimAsync(FailoverClaim claim, CancellationToken cancellationToken) =>
        await ReadOwnClaimAsync(claim.Item, cancellationToken).ConfigureAwait(false) is { } held
        && held.Content.FireTime == claim.Flag.FireTime && held.Content.TaskId == claim.Flag.TaskId ? held.Content : null;

    /// <summary>
    /// A run of <paramref name="item"/> for <paramref name="fireTime"/> completed here after its session had ended: the
    /// departure of that session flagged the item for that fire (the run was unfinished then, and ignored the cancellation),
    /// but the fire is done now and its compensation would run it a second time. The flag still waiting for it is withdrawn
    /// — or, when it also owes a later fire the crashed owner missed, it waits for that one only; a flag that only carries
    /// this fire as its missed fire keeps its own. A flag claimed meanwhile keeps its claim, which now says the fire completed
    /// (<see cref="ItemMarker.FireCompleted"/>; or loses it as its missed fire): a compensation running already is the overlap
    /// the fencing token is for, but one not started yet is not started, and one that ends without completing — cut short by
    /// its claimant's own fencing or departure — is not handed on.
    /// </summary>
    public async Task WithdrawCompletedAsync(int item, DateTimeOffset fireTime, CancellationToken cancellationToken)
    {
        var path = _nodes.FailoverItem(item);
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            var node = await _registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
            var flag = node is not null && JobNodeData.TryDecodeFailoverFlag(path, node.Data, out var read, out _) ? read : null;
            RegistryOp operation;
            if (flag is not null && flag.FireTime == fireTime)
            {
                operation = flag.MissedFireTime is { } missed && missed > fireTime
                    ? new RegistryOp.SetData(path, JobNodeData.Encode(OnToMissedFire(item, flag, missed)), node!.Stat.Version)
                    : new RegistryOp.Delete(path, node!.Stat.Version);
            }
            else if (flag is not null && flag.MissedFireTime == fireTime)
            {
                operation = new RegistryOp.SetData(path, JobNodeData.Encode(flag with { MissedFireTime = null }), node!.Stat.Version);
            }
            else if (await ReadMarkerAsync(_nodes.ItemFailover(item), cancellationToken).ConfigureAwait(false) is { } claim
                && ((claim.Content.FireTime == fireTime && !claim.Content.FireCompleted) || claim.Content.MissedFireTime == fireTime))
            {
                var settled = claim.Content.FireTime == fireTime ? claim.Content with { FireCompleted = true } : claim.Content with { MissedFireTime = null };
                operation = new RegistryOp.SetData(_nodes.ItemFailover(item), JobNodeData.Encode(settled), claim.Version);
            }
            else
            {
                return; // nothing waits for this fire (any more)
            }

            try
            {
                await _registry.MultiAsync([operation], cancellationToken).ConfigureAwait(false);
                JobLog.FailoverDiscarded(_logger, _nodes.JobName, item, $"fire {fireTime:O} completed on {_instanceId} after its session had ended (the run outlived it)");
                return;
            }
            catch (RegistryMultiException)
            {
                // claimed or changed meanwhile: read again
            }
        }
    }

    /// <summary>This instance cannot compensate a claimed item now (job or item disabled, instance unavailable): the item waits again.</summary>
    public async Task ReturnClaimAsync(FailoverClaim claim, string reason, CancellationToken cancellationToken)
    {
        if (await ReadOwnClaimAsync(claim.Item, cancellationToken).ConfigureAwait(false) is not { } current)
        {
            return;
        }

        var plan = new FlagPlan(_time.GetUtcNow(), Merge);
        FlagUnfinished(plan, claim.Item, current.Content, claim.Flag with { MissedFireTime = current.Content.MissedFireTime });
        List<RegistryOp> operations = [new RegistryOp.Delete(_nodes.ItemFailover(claim.Item), current.Version)];
        operations.AddRange(plan.Flags.Values.Select(flag => new RegistryOp.Create(_nodes.FailoverItem(claim.Item), JobNodeData.Encode(flag))));
        try
        {
            await _registry.MultiAsync(operations, cancellationToken).ConfigureAwait(false);
            JobLog.FailoverDiscarded(_logger, _nodes.JobName, claim.Item, $"handed back to wait again: {reason}");
        }
        catch (RegistryMultiException)
        {
            // changed meanwhile: whoever changed it owns it now
        }
    }

    /// <summary>
    /// Handles every departure nobody handled (a progress record of an instance that is not live: after a total loss the first
    /// instance back does it), then flags evidence naming instances that are not live and have no progress record, and drops
    /// flags of items that no longer exist. Logs what it repaired.
    /// </summary>
    public async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var live = (await _registry.GetChildrenAsync(_nodes.Instances, cancellationToken: cancellationToken).ConfigureAwait(false) ?? []).ToHashSet(StringComparer.Ordinal);
        var progress = await _registry.GetChildrenAsync(_nodes.ProgressRoot, cancellationToken: cancellationToken).ConfigureAwait(false) ?? [];
        foreach (var instance in progress.Where(p => !live.Contains(p) && p != _instanceId))
        {
            await FlagDepartedAsync(instance, "was found gone by reconcile", cancellationToken).ConfigureAwait(false);
        }

        var withProgress = (await _registry.GetChildrenAsync(_nodes.ProgressRoot, cancellationToken: cancellationToken).ConfigureAwait(false) ?? []).ToHashSet(StringComparer.Ordinal);
        var evidence = await ReadEvidenceAsync(cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        foreach (var (item, state) in evidence.Items)
        {
            foreach (var (path, found) in new[] { (_nodes.ItemRunning(item), state.Marker), (_nodes.ItemFailover(item), state.Claim) })
            {
                if (found is not { } evidenceNode || live.Contains(evidenceNode.Content.Instance) || withProgress.Contains(evidenceNode.Content.Instance))
                {
                    continue;
                }

                var plan = new FlagPlan(now, Merge);
                FlagUnfinished(plan, item, state, new FailoverFlag(evidenceNode.Content.Instance, evidenceNode.Content.FireTime, evidenceNode.Content.TaskId, MissedFireTime: evidenceNode.Content.MissedFireTime));
                plan.Operations.Add(new RegistryOp.Delete(path, evidenceNode.Version));
                await AddFlagOperationsAsync(plan, evidence, cancellationToken).ConfigureAwait(false);
                var operations = plan.Operations;

                try
                {
                    await _registry.EnsurePathAsync(_nodes.FailoverItems, cancellationToken).ConfigureAwait(false);
                    await _registry.MultiAsync(operations, cancellationToken).ConfigureAwait(false);
                    JobLog.Reconciled(_logger, _nodes.JobName, $"flagged item {item} for failover: '{path}' named {evidenceNode.Content.Instance}, which is gone and left no progress record");
                }
                catch (RegistryMultiException)
                {
                    // changed meanwhile; the next reconcile looks again
                }
            }
        }

        var shards = _config().Config.Shards;
        foreach (var stale in evidence.PendingFlags.Where(i => i >= shards))
        {
            await DeleteQuietlyAsync(_nodes.FailoverItem(stale), -1, cancellationToken).ConfigureAwait(false);
            JobLog.Reconciled(_logger, _nodes.JobName, $"dropped the failover flag of item {stale}: the job has {shards} item(s)");
        }
    }

    /// <summary>Failover switched off: waiting flags are dropped (nobody would compensate them), with a log line each.</summary>
    public async Task DropPendingAsync(CancellationToken cancellationToken)
    {
        foreach (var item in await _registry.GetChildrenAsync(_nodes.FailoverItems, cancellationToken: cancellationToken).ConfigureAwait(false) ?? [])
        {
            await DeleteQuietlyAsync(_nodes.FailoverItems + "/" + item, -1, cancellationToken).ConfigureAwait(false);
            JobLog.Reconciled(_logger, _nodes.JobName, $"dropped the failover flag of item {item}: Failover is off");
        }
    }

    /// <summary>
    /// Adds to <paramref name="plan"/> the flag of what a run (or claim) of the item that ended unfinished leaves owed — unless
    /// the item's claim says that fire completed after all (<see cref="ItemMarker.FireCompleted"/>: the run it compensates
    /// outlived its session): then only the later fire the flag also owes, if any, as never started; otherwise nothing.
    /// </summary>
    private void FlagUnfinished(FlagPlan plan, int item, ItemEvidence state, FailoverFlag flag) =>
        FlagUnfinished(plan, item, state.Claim?.Content, flag);

    private void FlagUnfinished(FlagPlan plan, int item, ItemMarker? claim, FailoverFlag flag)
    {
        if (claim is not { FireCompleted: true } || claim.FireTime != flag.FireTime)
        {
            plan.Flag(item, flag);
        }
        else if (flag.MissedFireTime is { } missed && missed > flag.FireTime)
        {
            plan.Flag(item, OnToMissedFire(item, flag, missed));
        }
    }

    /// <summary>
    /// Adds to <paramref name="plan"/> the writes of its flags. An item nobody waits for gets its flag. An item that waits
    /// already (another departure flagged it and nobody has claimed it yet) keeps its one flag, but that flag must answer for
    /// this departure too, merged as <see cref="Merge"/> merges two reasons: the later fire this one leaves unfinished
    /// becomes the flag's <see cref="FailoverFlag.MissedFireTime"/> (the latest wins: one late run makes up for the fires missed
    /// before it), so the compensation of the earlier fire moves on to it — and an earlier fire (a claim of a fire before the
    /// waiting flag's, which held the item so that the flag waited behind it) becomes the flag's own fire, compensated first,
    /// with the waiting one as its missed fire. Dropping either would lose that fire: nothing else is owed for it any more, since
    /// the flagging multi deletes the marker or claim that was its evidence. The write is at the flag's version: a claim
    /// meanwhile fails the multi, which reads the evidence again.
    /// </summary>
    private async Task AddFlagOperationsAsync(FlagPlan plan, Evidence evidence, CancellationToken cancellationToken)
    {
        foreach (var (item, flag) in plan.Flags)
        {
            var path = _nodes.FailoverItem(item);
            var node = evidence.PendingFlags.Contains(item) ? await _registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false) : null;
            if (node is null)
            {
                plan.Operations.Add(new RegistryOp.Create(path, JobNodeData.Encode(flag with { FlaggedAt = plan.Now })));
                continue;
            }

            if (!JobNodeData.TryDecodeFailoverFlag(path, node.Data, out var waiting, out _))
            {
                // Unreadable (a claimant would discard it): this departure's flag replaces it.
                plan.Operations.Add(new RegistryOp.SetData(path, JobNodeData.Encode(flag with { FlaggedAt = plan.Now }), node.Stat.Version));
                continue;
            }

            // The flag keeps when it was first raised: claimants take the oldest first.
            var merged = Merge(item, waiting!, flag) with { FlaggedAt = waiting!.FlaggedAt };
            if (merged != waiting)
            {
                plan.Operations.Add(new RegistryOp.SetData(path, JobNodeData.Encode(merged), node.Stat.Version));
            }
        }
    }

    /// <summary>
    /// One flag for two reasons of one item: the earliest fire is the flag's, with its task id, and the latest one owed becomes
    /// its <see cref="FailoverFlag.MissedFireTime"/> (one late run makes up for the fires between, as misfire coalescing does).
    /// But one flag holds two fires, and an earlier flag with a missed fire of its own that a later reason, for a later fire,
    /// joins owes three: then the earlier flag's own fire goes, coalesced into its missed fire (that fire came while the run of
    /// its own held the item, so only it is owed). Keeping the own fire dropped the missed one, which was lost whenever runs on
    /// time came between it and the later fire (an item whose runs outlast the interval, its owner gone twice before the first
    /// compensation could start).
    /// </summary>
    private FailoverFlag Merge(int item, FailoverFlag first, FailoverFlag second)
    {
        var (earlier, later) = first.FireTime <= second.FireTime ? (first, second) : (second, first);
        var latest = OwedUntil(first) > OwedUntil(second) ? OwedUntil(first) : OwedUntil(second);
        if (earlier.MissedFireTime is { } missed && missed > earlier.FireTime && later.FireTime > earlier.FireTime && latest > missed)
        {
            earlier = OnToMissedFire(item, earlier, missed);
        }

        return earlier with { MissedFireTime = latest > earlier.FireTime ? latest : null };
    }

    /// <summary>The flag (or claim) moved on to its missed fire, which its crashed owner never started: that fire is its own now,
    /// with nothing missed after it.</summary>
    private FailoverFlag OnToMissedFire(int item, FailoverFlag flag, DateTimeOffset missed) =>
        flag with { FireTime = missed, TaskId = NeverStartedTaskId(item, flag.CrashedInstance, missed), MissedFireTime = null };

    /// <summary>The latest fire a flag owes: its missed fire when it has one, else its own.</summary>
    private static DateTimeOffset OwedUntil(FailoverFlag flag) => flag.MissedFireTime is { } missed && missed > flag.FireTime ? missed : flag.FireTime;

    /// <summary>The fires <paramref name="instanceId"/> should have started with its assignment but did not: the latest fire
    /// time since its last started fire (<see cref="MissedFire"/>), for each of its enabled items that nobody is running.</summary>
    private IEnumerable<(int Item, DateTimeOffset FireTime)> NeverStarted(string instanceId, InstanceProgress? progress, Evidence evidence)
    {
        // Every item missed the latest fire when the instance started nothing for it; an item whose misfire flag is up missed
        // it too (the fire found it running elsewhere, and the catch-up it owed lived in the instance's memory).
        var allMissed = MissedFire(instanceId, progress) is not null;
        if (LatestFire(instanceId, DateTimeOffset.MinValue) is not { } missed)
        {
            yield break;
        }

        foreach (var item in _view.Sharding.Owners.Keys)
        {
            // Not if the item has started that fire (or a later one) since: a re-sharding gave it to another instance, which ran it.
            // A misfire flag is owed even while another instance still holds the item (a compensation of an earlier fire): the
            // catch-up would have run once that ended, and so does the compensation of this flag (it waits for the item).
            // A marker or claim of another instance for an earlier fire (a compensation of a fire before this one, say) does not
            // answer for this fire: the flag waits for that run to end, as a claim waits for a live claim.
            if (Owns(instanceId, item) && evidence.Items.TryGetValue(item, out var state)
                && ((allMissed && Unanswered(state.Marker, instanceId, missed) && Unanswered(state.Claim, instanceId, missed)) || (state.Misfired && _config().Config.Misfire))
                && !(state.LastStart is { } last && last.FireTime >= missed))
            {
                yield return (item, missed);
            }
        }
    }

    /// <summary>No run or claim of the item answers for <paramref name="fire"/>: there is none, or it is another instance's and
    /// for an earlier fire. (The departed instance's own are flagged from themselves.)</summary>
    private static bool Unanswered(Versioned<ItemMarker>? evidence, string instanceId, DateTimeOffset fire) =>
        evidence is null || (evidence.Content.Instance != instanceId && (evidence.Content.MissedFireTime ?? evidence.Content.FireTime) < fire);

    /// <summary>The latest fire that came after the last one <paramref name="instanceId"/> started (and after its assignment was
    /// made), up to now; null when it missed none or has no assignment.</summary>
    private DateTimeOffset? MissedFire(string instanceId, InstanceProgress? progress)
    {
        var lastStarted = progress?.FireTime ?? DateTimeOffset.MinValue;
        return LatestFire(instanceId, lastStarted) is { } missed && missed > lastStarted ? missed : null;
    }

    /// <summary>The latest fire that came after <paramref name="lastStarted"/> (and after the current assignment was made), up
    /// to now, while <paramref name="instanceId"/> had an assignment; null when there is none.</summary>
    private DateTimeOffset? LatestFire(string instanceId, DateTimeOffset lastStarted)
    {
        var resolved = _config();
        var sharding = _view.Sharding;
        if (resolved.Config.Disabled || sharding.Stamp is not { } stamp || !stamp.Instances.Contains(instanceId))
        {
            return null;
        }

        // Fires before the assignment was made were not this assignment's: start just before the sharding (it happens at a fire).
        var from = lastStarted > stamp.ShardedAt - TimeSpan.FromSeconds(5) ? lastStarted : stamp.ShardedAt - TimeSpan.FromSeconds(5);
        var now = _time.GetUtcNow();
        if (from < now - TimeSpan.FromDays(1))
        {
            from = now - TimeSpan.FromDays(1);
        }

        DateTimeOffset? due = null;
        for (var (next, guard) = (resolved.Schedule.GetNextOccurrence(from), 0); next is { } fire && fire <= now && guard < 100_000; next = resolved.Schedule.GetNextOccurrence(fire), guard++)
        {
            due = fire;
        }

        return due;
    }

    /// <summary>The item is <paramref name="instanceId"/>'s by the current sharding, exists and is enabled.</summary>
    private bool Owns(string instanceId, int item) =>
        _view.Sharding.Owners.TryGetValue(item, out var owner) && owner == instanceId && item < _config().Config.Shards && !_view.DisabledItems.Contains(item);

    private string NeverStartedTaskId(int item, string instanceId, DateTimeOffset fireTime) =>
        string.Create(CultureInfo.InvariantCulture, $"{_nodes.JobName}@-@{item}@-@NEVER-STARTED@-@{instanceId}@-@{fireTime.ToUnixTimeMilliseconds()}");

    /// <summary>Every item's running marker and failover claim, and the items already waiting: 2 reads per item, concurrently.</summary>
    private async Task<Evidence> ReadEvidenceAsync(CancellationToken cancellationToken)
    {
        var shards = _config().Config.Shards;
        var items = await Task.WhenAll(Enumerable.Range(0, shards).Select(async item =>
        {
            var marker = await ReadMarkerAsync(_nodes.ItemRunning(item), cancellationToken).ConfigureAwait(false);
            var claim = await ReadMarkerAsync(_nodes.ItemFailover(item), cancellationToken).ConfigureAwait(false);
            var lastStart = await ReadMarkerAsync(_nodes.Item(item), cancellationToken).ConfigureAwait(false);
            var misfired = await _registry.ExistsAsync(_nodes.ItemMisfire(item), cancellationToken: cancellationToken).ConfigureAwait(false) is not null;
            return (item, state: new ItemEvidence(marker, claim, lastStart?.Content, misfired));
        })).ConfigureAwait(false);
        var pending = await _registry.GetChildrenAsync(_nodes.FailoverItems, cancellationToken: cancellationToken).ConfigureAwait(false) ?? [];
        return new Evidence(items.ToImmutableDictionary(i => i.item, i => i.state),
            [.. pending.Select(n => JobNodes.TryParseItem(n, out var i) ? i : -1).Where(i => i >= 0)]);
    }

    /// <summary>The claim of <paramref name="item"/> if it names this instance (with its version), else null.</summary>
    private async Task<Versioned<ItemMarker>?> ReadOwnClaimAsync(int item, CancellationToken cancellationToken) =>
        await ReadMarkerAsync(_nodes.ItemFailover(item), cancellationToken).ConfigureAwait(false) is { } claim && claim.Content.Instance == _instanceId ? claim : null;

    /// <summary>
    /// Whether the fire of <paramref name="claim"/> has been started for its item by another run since the interruption it
    /// compensates: a re-sharding gave the item to an instance that ran that fire as its own (or, for a fire flagged as never
    /// started, anyone started it). Its compensation would run it twice.
    /// </summary>
    public async Task<bool> RunElsewhereAsync(FailoverClaim claim, CancellationToken cancellationToken) =>
        await ReadMarkerAsync(_nodes.Item(claim.Item), cancellationToken).ConfigureAwait(false) is { } last
        && last.Content.FireTime == claim.Flag.FireTime && last.Content.TaskId != claim.Flag.TaskId
        // A fire flagged as never started by its owner is run by any start of it, the owner's own included (it was back in time
        // after all); a fire the crashed instance had started is not re-run by that start, which is what the flag compensates.
        && (last.Content.Instance != claim.Flag.CrashedInstance || claim.Flag.TaskId == NeverStartedTaskId(claim.Item, claim.Flag.CrashedInstance, claim.Flag.FireTime));

    private async Task<Versioned<ItemMarker>?> ReadMarkerAsync(string path, CancellationToken cancellationToken)
    {
        var node = await _registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (node is null || node.Data.Length == 0)
        {
            return null;
        }

        if (JobNodeData.TryDecodeItemMarker(path, node.Data, out var marker, out var error))
        {
            return new Versioned<ItemMarker>(marker!, node.Stat.Version);
        }

        JobLog.CorruptNode(_logger, _nodes.JobName, path, error!.Message);
        return null;
    }

    private async Task DeleteQuietlyAsync(string path, int version, CancellationToken cancellationToken)
    {
        try
        {
            await _registry.DeleteAsync(path, version, cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code is RegistryErrorCode.NoNode or RegistryErrorCode.BadVersion)
        {
        }
    }

    private sealed record Versioned<T>(T Content, int Version);

    /// <param name="Marker">The item's running marker.</param>
    /// <param name="Claim">The item's failover claim.</param>
    /// <param name="LastStart">The item node's record of the item's latest start, anywhere (null before the first).</param>
    /// <param name="Misfired">The item's misfire flag is set: a fire found it still running and owes it a catch-up.</param>
    private sealed record ItemEvidence(Versioned<ItemMarker>? Marker, Versioned<ItemMarker>? Claim, ItemMarker? LastStart, bool Misfired);

    private sealed record Evidence(ImmutableDictionary<int, ItemEvidence> Items, ImmutableHashSet<int> PendingFlags);

    private sealed class FlagPlan(DateTimeOffset now, Func<int, FailoverFlag, FailoverFlag, FailoverFlag> merge)
    {
        public DateTimeOffset Now { get; } = now;

        public Dictionary<int, FailoverFlag> Flags { get; } = [];

        public List<RegistryOp> Operations { get; } = [];

        /// <summary>
        /// Every reason found for an item goes into its one flag (<see cref="Merge"/>). A marker and a claim of one compensation
        /// name the same fire, but a claim may wait behind its claimant's own run of the item for another fire (a catch-up, or a
        /// fire of its own). Keeping the first reason only lost the other's fire: the flagging multi deletes the evidence of both.
        /// </summary>
        public void Flag(int item, FailoverFlag flag) =>
            Flags[item] = Flags.TryGetValue(item, out var found) ? merge(item, found, flag) : flag;
    }
}
