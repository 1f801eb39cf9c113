using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;

namespace ShardedJobs.Cluster;

/// <summary>What <see cref="ExecutionMonitor.StartAsync"/> did.</summary>
/// <param name="Started">Items whose running markers are now written: run them.</param>
/// <param name="Busy">Items still running elsewhere (or here): not started; handle as a misfire.</param>
/// <param name="AssignmentChanged">The sharding generation moved since the fire read it: nothing was started; re-read and retry.</param>
internal sealed record StartResult(IReadOnlyList<int> Started, IReadOnlyList<int> Busy, bool AssignmentChanged)
{
    public static readonly StartResult Nothing = new([], [], false);

    /// <summary>The fencing token of each started item (<see cref="ShardContext.FencingToken"/>).</summary>
    public IReadOnlyDictionary<int, long> Tokens { get; init; } = new Dictionary<int, long>();

    /// <summary>For each busy item, the fire time of the run that holds it.</summary>
    public IReadOnlyDictionary<int, DateTimeOffset> BusyWith { get; init; } = new Dictionary<int, DateTimeOffset>();
}

/// <summary>What <see cref="ExecutionMonitor.StartedAlreadyAsync"/> found.</summary>
/// <param name="Started">Items whose fire is run (or compensated) elsewhere: not to start.</param>
/// <param name="Claimed">Items a live instance claimed for the compensation of an earlier (or other) fire: not to start before it ran.</param>
internal sealed record AlreadyHandled(IReadOnlyList<int> Started, IReadOnlyList<int> Claimed);

/// <summary>
/// Execution monitoring for one job on one instance: the persistent running markers (<c>sharding/{item}/running</c>: who runs
/// the item, for which fire time and task id) and this instance's progress record.
/// <para>
/// A fire writes the markers of all its items and its progress record in ONE multi, which also checks the sharding generation:
/// if any item is still running anywhere, creating its marker fails and nothing is written, so no item ever runs twice at the
/// same time and no fire starts items of an assignment that was replaced. Only then (rare) are the markers read, one by one, to
/// tell running items from stale markers (owner no longer live), which are taken over. Markers are removed as items complete;
/// completions that arrive while a removal is in flight are removed together in the next multi. A trigger on a stable cluster
/// therefore costs two round trips for markers, whatever the number of items.
/// </para>
/// </summary>
internal sealed class ExecutionMonitor : IAsyncDisposable
{
    private readonly IRegistry _registry;
    private readonly JobNodes _nodes;
    private readonly string _instanceId;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConcurrentQueue<Release> _releases = new();
    private readonly SemaphoreSlim _releaseSignal = new(0);
    private readonly BackgroundLoop _releaseLoop = new();
    private readonly CancellationTokenSource _abandoned = new();

    public ExecutionMonitor(IRegistry registry, JobNodes nodes, string instanceId, ILogger logger, TimeProvider time)
    {
        _time = time;
        _registry = registry;
        _nodes = nodes;
        _instanceId = instanceId;
        _logger = logger;
        _releaseLoop.Start(RunReleaseLoopAsync);
    }

    /// <summary>
    /// Writes the running markers of <paramref name="items"/> and (for a regular fire) the progress record atomically, checked
    /// against <paramref name="generation"/> (the <c>sharding</c> node's version; -1 skips the check). <paramref name="isRunningHere"/>
    /// tells whether one of our own markers belongs to work still in flight here (otherwise it is a leftover and taken over).
    /// <paramref name="clearMisfire"/> lists items whose misfire flag this run consumes (a catch-up). A compensation passes
    /// <paramref name="compensation"/> true: its fire is an old one, so it writes no progress record (that must never move
    /// backwards) and keeps the item node's record of a later start (see <see cref="LaterStartsAsync"/>).
    /// With <paramref name="onDeadOwner"/> (failover on), a marker of an instance that is gone is evidence: the callback hands
    /// it to the failover protocol first, instead of the marker being taken over.
    /// </summary>
    public async Task<StartResult> StartAsync(IReadOnlyList<int> items, ItemMarker marker, int generation, IReadOnlyCollection<int> clearMisfire,
        Func<int, bool> isRunningHere, CancellationToken cancellationToken, bool compensation = false, Func<string, Task>? onDeadOwner = null)
    {
        if (items.Count == 0)
        {
            return StartResult.Nothing;
        }

        var data = JobNodeData.Encode(marker);
        var session = _registry.SessionId;
        var stale = new Dictionary<int, int>(); // item -> version of a stale marker to replace
        var busy = new List<int>();
        var busyWith = new Dictionary<int, DateTimeOffset>();
        var candidates = items.ToList();
        for (var attempt = 0; attempt < 4; attempt++)
        {
            // Read on each attempt: a dead owner's marker handed to failover (below) may have joined the claim.
            var laterStarts = compensation ? await LaterStartsAsync(candidates, marker.FireTime, cancellationToken).ConfigureAwait(false) : [];
            var operations = new List<RegistryOp>();
            var tokenAt = new List<(int Index, int Item)>(); // where each item's SetData is, to read its new version from the results
            if (generation >= 0)
            {
                operations.Add(new RegistryOp.Check(_nodes.Sharding, generation));
            }

            foreach (var item in candidates)
            {
                if (stale.TryGetValue(item, out var version))
                {
                    operations.Add(new RegistryOp.Delete(_nodes.ItemRunning(item), version));
                }

                operations.Add(new RegistryOp.Create(_nodes.ItemRunning(item), data));
                // The item node records the latest fire started (and its version, which every start bumps, is the fencing
                // token). A compensation of an older fire keeps the record of a later one: see LaterStartsAsync.
                tokenAt.Add((operations.Count, item));
                operations.Add(new RegistryOp.SetData(_nodes.Item(item), laterStarts.TryGetValue(item, out var later) ? later : data));
            }

            foreach (var item in clearMisfire.Where(candidates.Contains))
            {
                operations.Add(new RegistryOp.Delete(_nodes.ItemMisfire(item)));
            }

            if (!compensation)
            {
                operations.Add(new RegistryOp.SetData(_nodes.Progress(_instanceId), JobNodeData.Encode(new InstanceProgress(marker.FireTime, marker.TaskId))));
            }

            try
            {
                var tokens = new Dictionary<int, long>();
                if (candidates.Count > 0)
                {
                    var results = await _registry.MultiAsync(operations, cancellationToken).ConfigureAwait(false);
                    foreach (var (index, item) in tokenAt)
                    {
                        if (index < results.Count && results[index] is RegistryOpResult.DataSet applied)
                        {
                            tokens[item] = applied.Version;
                        }
                    }
                }

                foreach (var (item, _) in stale.Where(s => candidates.Contains(s.Key)))
                {
                    JobLog.StaleMarkerTakenOver(_logger, _nodes.JobName, item);
                }

                return new StartResult(candidates, busy, false) { Tokens = tokens, BusyWith = busyWith };
            }
            catch (RegistryMultiException e) when (e.Code is RegistryErrorCode.BadVersion or RegistryErrorCode.NoNode && e.Path == _nodes.Sharding)
            {
                return new StartResult([], [], true);
            }
            catch (RegistryMultiException e) when (e.Path == _nodes.Progress(_instanceId) && e.Code == RegistryErrorCode.NoNode)
            {
                await EnsureProgressAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryMultiException e) when (e.Code is RegistryErrorCode.NoNode && e.Path is { } path && path.EndsWith("/misfire", StringComparison.Ordinal))
            {
                // Not an attempt: the multi names one missing flag at a time (a catch-up owed for a fire skipped while the
                // registry was unreachable has none), and each retry drops one, so this ends. Counting them would make a fire
                // of four or more such items fail every time, and the catch-up, never run, would stay owed forever.
                clearMisfire = [.. clearMisfire.Where(i => _nodes.ItemMisfire(i) != path)];
                attempt--;
            }
            catch (RegistryException e) when (e is not RegistryMultiException && e.Code == RegistryErrorCode.ConnectionLoss)
            {
                // Applied or not, nobody can tell from the error: the reply may have been lost after the registry applied it.
                // The markers can: once the connection is back, one of them (the multi is all or nothing) says which it was.
                if (await WereWrittenAsync(candidates[0], marker.TaskId, session, cancellationToken).ConfigureAwait(false))
                {
                    var tokens = new Dictionary<int, long>();
                    foreach (var item in candidates)
                    {
                        tokens[item] = (await _registry.ExistsAsync(_nodes.Item(item), cancellationToken: cancellationToken).ConfigureAwait(false))?.Version ?? 0;
                    }

                    return new StartResult(candidates, busy, false) { Tokens = tokens, BusyWith = busyWith };
                }

                throw;
            }
            catch (RegistryMultiException e) when (e.Code is RegistryErrorCode.NodeExists or RegistryErrorCode.NoNode or RegistryErrorCode.BadVersion)
            {
                // Some item is (or was) running, or its item node is missing: look at each marker.
                stale.Clear();
                var checks = await Task.WhenAll(candidates.Select(item => ClassifyAsync(item, isRunningHere, cancellationToken))).ConfigureAwait(false);
                var deadOwners = checks.Where(c => c.State == MarkerState.Stale && c.Owner is { } owner && owner != _instanceId).Select(c => c.Owner!).Distinct().ToList();
                if (onDeadOwner is not null && deadOwners.Count > 0)
                {
                    foreach (var owner in deadOwners)
                    {
                        await onDeadOwner(owner).ConfigureAwait(false);
                    }

                    continue; // their markers became failover flags (or someone else's): look again
                }

                foreach (var (item, state, version, _, heldFor) in checks)
                {
                    switch (state)
                    {
                        case MarkerState.Busy:
                            busy.Add(item);
                            busyWith[item] = heldFor;
                            candidates.Remove(item);
                            break;
                        case MarkerState.Stale:
                            stale[item] = version;
                            break;
                        case MarkerState.NoItemNode:
                            // The item vanished (the count shrank under us): the generation check catches it on the next try.
                            return new StartResult([], [], true);
                    }
                }
            }
        }

        throw new RegistryException(RegistryErrorCode.Other, _nodes.Sharding,
            $"Could not write the running markers of job '{_nodes.JobName}' after several attempts: the markers kept changing.");
    }

    /// <summary>
    /// Whether the marker multi whose reply was lost was applied: reads <paramref name="item"/>'s marker once the connection is
    /// back (retrying while it is not). False when the session ended meanwhile: markers of the old session are evidence for
    /// the failover protocol then, not a start of this one.
    /// </summary>
    private async Task<bool> WereWrittenAsync(int item, string taskId, long session, CancellationToken cancellationToken)
    {
        var path = _nodes.ItemRunning(item);
        var pause = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                var node = await _registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
                var ours = node is not null && JobNodeData.TryDecodeItemMarker(path, node.Data, out var found, out _) && found!.TaskId == taskId && found.Instance == _instanceId;
                return ours && _registry.SessionId == session;
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.ConnectionLoss && _registry.SessionId == session && _registry.State != RegistryState.Closed)
            {
                await Task.Delay(pause, _time, cancellationToken).ConfigureAwait(false);
                pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 1000));
            }
            catch (RegistryException)
            {
                return false;
            }
        }
    }

    /// <summary>Removes the item's marker (coalesced with other completions). Completes when removed, or when removal failed and was logged.</summary>
    public Task ReleaseAsync(int item, string taskId, long sessionAtStart)
    {
        var release = new Release(item, taskId, sessionAtStart, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        _releases.Enqueue(release);
        _releaseSignal.Release();
        return release.Done.Task;
    }

    /// <summary>Sets misfire flags (idempotent).</summary>
    public async Task SetMisfireAsync(IEnumerable<int> items, CancellationToken cancellationToken)
    {
        await Task.WhenAll(items.Select(async item =>
        {
            try
            {
                await _registry.CreateAsync(_nodes.ItemMisfire(item), ReadOnlyMemory<byte>.Empty, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryException e) when (e.Code is RegistryErrorCode.NodeExists or RegistryErrorCode.NoNode)
            {
            }
        })).ConfigureAwait(false);
    }

    /// <summary>Removes misfire flags (idempotent).</summary>
    public async Task ClearMisfireAsync(IEnumerable<int> items, CancellationToken cancellationToken)
    {
        await Task.WhenAll(items.Select(async item =>
        {
            try
            {
                await _registry.DeleteAsync(_nodes.ItemMisfire(item), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
            {
            }
        })).ConfigureAwait(false);
    }

    /// <summary>Calls <paramref name="onFree"/> once when the item's running marker is gone (at once if it is gone already).</summary>
    public Task WhenFreeAsync(int item, Action onFree, CancellationToken cancellationToken) =>
        WhenGoneAsync(_nodes.ItemRunning(item), onFree, cancellationToken);

    /// <summary>
    /// Calls <paramref name="onFree"/> once when the item's failover claim is gone (at once if there is none): its compensation
    /// has ended and was settled. A claim that moves on to a missed fire stays, and is waited for still.
    /// </summary>
    public Task WhenUnclaimedAsync(int item, Action onFree, CancellationToken cancellationToken) =>
        WhenGoneAsync(_nodes.ItemFailover(item), onFree, cancellationToken);

    private async Task WhenGoneAsync(string path, Action onFree, CancellationToken cancellationToken)
    {
        var fired = 0;
        void Fire()
        {
            if (Interlocked.Exchange(ref fired, 1) == 0)
            {
                onFree();
            }
        }

        void OnChange(RegistryWatchEvent change)
        {
            if (change.Type is RegistryEventType.NodeDeleted or RegistryEventType.SessionEnded)
            {
                Fire(); // on a lost session, let the caller re-check rather than wait forever
            }
            else
            {
                _ = ReArmAsync();
            }
        }

        async Task ReArmAsync()
        {
            try
            {
                if (await _registry.ExistsAsync(path, OnChange, cancellationToken).ConfigureAwait(false) is null)
                {
                    Fire();
                }
            }
            catch (Exception e) when (e is RegistryException or OperationCanceledException or ObjectDisposedException)
            {
                Fire();
            }
        }

        await ReArmAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Stops retrying releases that wait for the registry to come back (this instance is going away without it: the markers
    /// stay as evidence, handled by failover or, without it, by the leader).
    /// </summary>
    public void Abandon() => _abandoned.Cancel();

    /// <summary>Waits until every release queued so far was applied (or failed and was logged).</summary>
    public Task FlushAsync()
    {
        var pending = _releases.Select(r => r.Done.Task).ToList();
        return Task.WhenAll(pending);
    }

    public async ValueTask DisposeAsync()
    {
        await _releaseLoop.DisposeAsync().ConfigureAwait(false);
        while (_releases.TryDequeue(out var release))
        {
            release.Done.TrySetResult();
        }
    }

    private async Task EnsureProgressAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _registry.CreateWithParentsAsync(_nodes.Progress(_instanceId),
                JobNodeData.Encode(InstanceProgress.Registered(_time.GetUtcNow())), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
        }
    }

    private async Task<(int Item, MarkerState State, int Version, string? Owner, DateTimeOffset HeldFor)> ClassifyAsync(int item, Func<int, bool> isRunningHere, CancellationToken cancellationToken)
    {
        var path = _nodes.ItemRunning(item);
        var node = await _registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (node is null)
        {
            return await _registry.ExistsAsync(_nodes.Item(item), cancellationToken: cancellationToken).ConfigureAwait(false) is null
                ? (item, MarkerState.NoItemNode, 0, null, default)
                : (item, MarkerState.Free, 0, null, default);
        }

        if (!JobNodeData.TryDecodeItemMarker(path, node.Data, out var marker, out var error))
        {
            // Unreadable evidence cannot prove a run is going on; replace it, and say so.
            JobLog.CorruptNode(_logger, _nodes.JobName, path, error!.Message);
            return (item, MarkerState.Stale, node.Stat.Version, null, default);
        }

        var ownerLive = marker!.Instance == _instanceId
            ? isRunningHere(item)
            : await _registry.ExistsAsync(_nodes.Instance(marker.Instance), cancellationToken: cancellationToken).ConfigureAwait(false) is not null;
        return (item, ownerLive ? MarkerState.Busy : MarkerState.Stale, node.Stat.Version, marker.Instance, marker.FireTime);
    }

    /// <summary>
    /// The item nodes' records of <paramref name="items"/> that name a fire later than <paramref name="fireTime"/>, which a
    /// compensation of that older fire, starting now, keeps. Departure handling asks the record whether a gone owner's fire was
    /// started: a compensation that overwrote it made a fire its owner had completed look never started when the owner then
    /// crashed compensating, and that fire was handed on and ran twice. Not when the item's claim owes that later fire as its
    /// missed one: that run was cut short, the compensation runs it next, and a record saying it was started would drop it.
    /// </summary>
    private async Task<Dictionary<int, byte[]>> LaterStartsAsync(IReadOnlyList<int> items, DateTimeOffset fireTime, CancellationToken cancellationToken)
    {
        var later = new Dictionary<int, byte[]>();
        foreach (var item in items)
        {
            var path = _nodes.Item(item);
            if (await _registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false) is not { Data.Length: > 0 } node
                || !JobNodeData.TryDecodeItemMarker(path, node.Data, out var last, out _) || last!.FireTime <= fireTime)
            {
                continue;
            }

            var claimPath = _nodes.ItemFailover(item);
            if (await _registry.GetAsync(claimPath, cancellationToken: cancellationToken).ConfigureAwait(false) is { } claim
                && JobNodeData.TryDecodeItemMarker(claimPath, claim.Data, out var owed, out _) && owed!.MissedFireTime >= last.FireTime)
            {
                continue;
            }

            later[item] = node.Data;
        }

        return later;
    }

    /// <summary>The fire <paramref name="instanceId"/> last started items for (its progress record); null without a readable one,
    /// or when its incarnation has started none yet.</summary>
    public async Task<DateTimeOffset?> LastStartedFireAsync(string instanceId, CancellationToken cancellationToken)
    {
        var path = _nodes.Progress(instanceId);
        var node = await _registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        return node is not null && JobNodeData.TryDecodeProgress(path, node.Data, out var progress, out _) && !progress!.StartedNothing ? progress.FireTime : null;
    }

    /// <summary>
    /// The items of <paramref name="items"/> whose <paramref name="fireTime"/> is taken care of elsewhere: their latest start
    /// (the item node's record) is for that fire — by their previous owner, before a re-sharding moved them here — or a
    /// failover flag or claim is for it (a claim also when it moves on to that fire once its own has run). Not to start
    /// again. And, apart, the items a live instance has claimed for the compensation of another fire: those come first.
    /// </summary>
    public async Task<AlreadyHandled> StartedAlreadyAsync(IReadOnlyList<int> items, DateTimeOffset fireTime, CancellationToken cancellationToken)
    {
        var checks = await Task.WhenAll(items.Select(async item =>
        {
            var path = _nodes.Item(item);
            var node = await _registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (node is { Data.Length: > 0 } && JobNodeData.TryDecodeItemMarker(path, node.Data, out var last, out _) && last!.FireTime == fireTime)
            {
                return (item, Handled: true, Claimed: false);
            }

            // Or it waits for failover for this very fire (flagged as never started by its previous owner, or claimed):
            // its compensation runs it.
            var flagPath = _nodes.FailoverItem(item);
            var flag = await _registry.GetAsync(flagPath, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (flag is not null && JobNodeData.TryDecodeFailoverFlag(flagPath, flag.Data, out var waiting, out _) && (waiting!.FireTime == fireTime || waiting.MissedFireTime == fireTime))
            {
                return (item, Handled: true, Claimed: false);
            }

            var claimPath = _nodes.ItemFailover(item);
            var claim = await _registry.GetAsync(claimPath, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (claim is null || !JobNodeData.TryDecodeItemMarker(claimPath, claim.Data, out var claimed, out _))
            {
                return (item, Handled: false, Claimed: false);
            }

            if (claimed!.FireTime == fireTime || claimed.MissedFireTime == fireTime)
            {
                return (item, Handled: true, Claimed: false);
            }

            // A claim of a dead instance is evidence its departure hands on (and deletes): it holds nothing back.
            var live = await _registry.ExistsAsync(_nodes.Instance(claimed.Instance), cancellationToken: cancellationToken).ConfigureAwait(false) is not null;
            return (item, Handled: false, Claimed: live);
        })).ConfigureAwait(false);
        return new AlreadyHandled([.. checks.Where(c => c.Handled).Select(c => c.item)], [.. checks.Where(c => c.Claimed).Select(c => c.item)]);
    }

    private async Task RunReleaseLoopAsync(CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            await _releaseSignal.WaitAsync(token).ConfigureAwait(false);
            await GatherAsync().ConfigureAwait(false);
            var batch = new List<Release>();
            while (_releases.TryPeek(out var next))
            {
                batch.Add(next);
                _releases.TryDequeue(out _);
            }

            if (batch.Count == 0)
            {
                continue;
            }

            await ApplyAsync(batch, token).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Lets items that end at the same moment (on other threads) queue their releases before the multi goes out, so they share
    /// it: yields to the thread pool until the queue stops growing. No timer: it costs no latency when nothing else is ending.
    /// </summary>
    private async Task GatherAsync()
    {
        var queued = _releases.Count;
        for (var quietRounds = 0; quietRounds < 3;)
        {
            await Task.Yield();
            var now = _releases.Count;
            quietRounds = now == queued ? quietRounds + 1 : 0;
            queued = now;
        }
    }

    /// <summary>
    /// One multi for the batch when this session wrote every marker (nobody else can have replaced them while it lived); otherwise,
    /// or when the multi fails, each marker is read and deleted only if it is still this execution's, so a run that outlived its
    /// session never removes the marker of whoever took the item over.
    /// </summary>
    private async Task ApplyAsync(List<Release> batch, CancellationToken token)
    {
        var session = _registry.SessionId;
        var blind = batch.Where(r => r.SessionAtStart == session).ToList();
        var careful = batch.Except(blind).ToList();
        if (blind.Count > 0)
        {
            try
            {
                await _registry.MultiAsync([.. blind.Select(r => new RegistryOp.Delete(_nodes.ItemRunning(r.Item)))], token).ConfigureAwait(false);
                blind.ForEach(r => r.Done.TrySetResult());
            }
            catch (RegistryException)
            {
                careful.AddRange(blind);
            }
            catch (OperationCanceledException)
            {
                blind.ForEach(r => r.Done.TrySetResult());
                return;
            }
        }

        foreach (var release in careful)
        {
            await ReleaseCarefullyAsync(release, token).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Removes one marker if it is still this execution's. A lost connection is retried until it comes back: a completed item
    /// whose marker stayed would be compensated (run twice) if this instance died later. Only the end of the session (the
    /// marker is the failover protocol's business then) or the monitor's shutdown stops the retries.
    /// </summary>
    private async Task ReleaseCarefullyAsync(Release release, CancellationToken token)
    {
        var path = _nodes.ItemRunning(release.Item);
        var pause = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                var node = await _registry.GetAsync(path, cancellationToken: token).ConfigureAwait(false);
                if (node is not null && JobNodeData.TryDecodeItemMarker(path, node.Data, out var marker, out _) && marker!.TaskId == release.TaskId && marker.Instance == _instanceId)
                {
                    await _registry.DeleteAsync(path, node.Stat.Version, token).ConfigureAwait(false);
                }

                break;
            }
            catch (RegistryException e) when (e.Code is RegistryErrorCode.NoNode or RegistryErrorCode.BadVersion)
            {
                break; // gone or replaced: not ours any more
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.ConnectionLoss && !token.IsCancellationRequested && !_abandoned.IsCancellationRequested)
            {
                try
                {
                    using var either = CancellationTokenSource.CreateLinkedTokenSource(token, _abandoned.Token);
                    await Task.Delay(pause, _time, either.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    JobLog.MarkerReleaseFailed(_logger, _nodes.JobName, release.Item, "stopped while the registry was unreachable");
                    break;
                }

                pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 1000));
            }
            catch (Exception e) when (e is RegistryException or OperationCanceledException or ObjectDisposedException)
            {
                // The session ended, or the monitor stopped: the marker names this instance; once it is gone the failover
                // protocol (or, without failover, the leader) takes care of it.
                JobLog.MarkerReleaseFailed(_logger, _nodes.JobName, release.Item, e.Message);
                break;
            }
        }

        release.Done.TrySetResult();
    }

    private enum MarkerState
    {
        Free,
        Busy,
        Stale,
        NoItemNode,
    }

    private sealed record Release(int Item, string TaskId, long SessionAtStart, TaskCompletionSource Done);
}
