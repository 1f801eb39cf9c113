using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using ShardedJobs.Cluster;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;
using ShardedJobs.Scheduling;

namespace ShardedJobs.Execution;

// Failover glue: departures, claims, compensations (the protocol itself is FailoverCoordinator), and self-fencing.
internal sealed partial class JobRuntime
{
    // ----- failover -----

    /// <summary>An instance left (or a fire found its marker and it is gone): flag its unfinished items. Errors are logged; the
    /// departure stays unhandled (its progress record is the proof) for the next departure event or reconcile.</summary>
    private async Task HandleDepartureAsync(string instanceId)
    {
        try
        {
            await _failover.FlagDepartedAsync(instanceId, "left (its registration is gone)", _stopping.Token).ConfigureAwait(false);

            // The departure may have been handled by an instance whose clock had not reached this instance's last fire (it
            // flagged only the fires it counted), and which then died before its own fire could flag the rest: that fire of
            // the gone owner's items, which it still held when this instance ran the fire, would be owed by nobody. Flagged
            // here as never started unless something started or answers for them (FlagUnrunAsync checks; once only).
            if (_lastScheduledFire is { } last
                && last.Sharding.ItemsOf(instanceId) is { Count: > 0 } items)
            {
                await _failover.FlagUnrunAsync(instanceId, items, last.FireTime, _stopping.Token).ConfigureAwait(false);
            }
        }
        catch (RegistryException e)
        {
            JobLog.RegistryCallFailed(_logger, Name, $"flagging the unfinished items of {instanceId}", e.Message);
        }
    }

    private async Task RecoverAndClaimAsync()
    {
        try
        {
            await _failover.ReconcileAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (RegistryException e)
        {
            JobLog.RegistryCallFailed(_logger, Name, "looking for unfinished items of instances that are gone", e.Message);
        }

        await ClaimAndCompensateAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Notification (flags appeared) and enquiry (this instance's own items ended): an instance that runs none of its own items
    /// (compensations do not count) claims waiting items while it has capacity (the job's concurrency), each atomically, and
    /// compensates them. One busy with its own fire leaves them to an idle one — but not for ever: when items outlast the fire
    /// interval, no instance is ever idle, so once flags have waited <see cref="BusyClaimDelay"/> a busy instance claims too.
    /// </summary>
    private async Task ClaimAndCompensateAsync(bool evenIfBusy = false)
    {
        // Not before this incarnation registered: until then the view's registration under our id may be a predecessor's (a
        // restart within the session timeout), and a claim made now would be taken for the predecessor's evidence when its
        // departure is handled (the claim deleted and flagged again while the compensation runs here: run twice).
        if (!FailoverActive || _stopped == 1 || !_registered || _resolved.Config.Disabled || !_view.IsAvailable(_instanceId)
            || _registry.State != RegistryState.Connected || (_view.PendingFailovers.IsEmpty && !_failover.HasUnsettledClaims))
        {
            return;
        }

        if (RunsOwnItems && !evenIfBusy)
        {
            if (Interlocked.Exchange(ref _busyClaimScheduled, 1) == 0)
            {
                Track(ClaimWhenStillWaitingAsync());
            }

            return;
        }

        try
        {
            await _claimGate.WaitAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }

        var retry = false;
        try
        {
            var capacity = _settings.MaxConcurrency - _compensating.Count;
            if ((RunsOwnItems && !evenIfBusy) || capacity <= 0)
            {
                return;
            }

            foreach (var claim in await _failover.ClaimAsync(capacity, _stopping.Token).ConfigureAwait(false))
            {
                _compensating[claim.Item] = claim;
                Track(CompensateAsync(claim));
            }
        }
        catch (RegistryException e)
        {
            JobLog.RegistryCallFailed(_logger, Name, "claiming items to compensate", e.Message);
            retry = true;
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        finally
        {
            _claimGate.Release();
        }

        if (retry)
        {
            // Items still wait (or a claim's outcome is unknown): try again shortly; a lost connection ends this until it is back.
            Track(ClaimAgainSoonAsync());
        }
    }

    /// <summary>How long flags wait for an idle instance before a busy one claims them: well past a crash's detection, so an
    /// instance whose own items end soon (enquiry) still comes first.</summary>
    private TimeSpan BusyClaimDelay => _registry.SessionTimeout * 3 > TimeSpan.FromSeconds(10) ? _registry.SessionTimeout * 3 : TimeSpan.FromSeconds(10);

    private async Task ClaimWhenStillWaitingAsync()
    {
        try
        {
            await Task.Delay(BusyClaimDelay, _time, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        finally
        {
            Volatile.Write(ref _busyClaimScheduled, 0);
        }

        await ClaimAndCompensateAsync(evenIfBusy: true).ConfigureAwait(false);
    }

    private async Task ClaimAgainSoonAsync()
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1), _time, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        await ClaimAndCompensateAsync().ConfigureAwait(false);
    }

    /// <summary>Runs a claimed item with the interrupted fire time, once it is free (a run of it elsewhere is waited for).</summary>
    private async Task CompensateAsync(FailoverClaim claim)
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            var free = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            CompensationStart outcome;
            try
            {
                await _startGate.WaitAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }

            try
            {
                outcome = await StartCompensationAsync(claim, token).ConfigureAwait(false);
            }
            catch (RegistryException e)
            {
                JobLog.RegistryCallFailed(_logger, Name, $"starting the compensation of item {claim.Item}", e.Message);
                outcome = CompensationStart.Retry;
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            finally
            {
                _startGate.Release();
            }

            switch (outcome)
            {
                case CompensationStart.Started or CompensationStart.Dropped:
                    return;
                case CompensationStart.Busy:
                    await _monitor.WhenFreeAsync(claim.Item, () => free.TrySetResult(), token).ConfigureAwait(false);
                    await free.Task.WaitAsync(token).ConfigureAwait(false);
                    // A beat before the next try: whatever held the item may not have let go of it in every respect yet, and a
                    // retry must never spin.
                    await Task.Delay(TimeSpan.FromMilliseconds(50), _time, token).ConfigureAwait(false);
                    break;
                default:
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, token).ConfigureAwait(false);
                    break;
            }
        }

        _compensating.TryRemove(claim.Item, out _); // stopping: the claim stays as evidence, compensated by whoever handles our departure
    }

    private async Task<CompensationStart> StartCompensationAsync(FailoverClaim claim, CancellationToken token)
    {
        var resolved = _resolved;
        var item = claim.Item;
        if (item >= resolved.Config.Shards)
        {
            await _failover.ReleaseClaimAsync(item, token).ConfigureAwait(false);
            _compensating.TryRemove(item, out _);
            JobLog.FailoverDiscarded(_logger, Name, item, $"the job has {resolved.Config.Shards} item(s) now");
            return CompensationStart.Dropped;
        }

        if (resolved.Config.Disabled || _view.DisabledItems.Contains(item) || !_view.IsAvailable(_instanceId))
        {
            await _failover.ReturnClaimAsync(claim, "the job, the item or this instance is disabled", token).ConfigureAwait(false);
            _compensating.TryRemove(item, out _);
            return CompensationStart.Dropped;
        }

        if (_registry.State != RegistryState.Connected)
        {
            return CompensationStart.Retry;
        }

        if (_runningHere.ContainsKey(item))
        {
            return CompensationStart.Busy;
        }

        var fireTime = claim.Flag.FireTime;
        var taskId = NewTaskId([item], ExecutionSource.Failover, fireTime);
        var held = await _failover.HeldClaimAsync(claim, token).ConfigureAwait(false);
        if (held is null)
        {
            // Its claim is gone or is another one now (a departure of this instance's session handed it back and it may have
            // been claimed again, by a compensation of its own; or that one ran and settled it): this one must not run.
            _compensating.TryRemove(new KeyValuePair<int, FailoverClaim>(item, claim));
            JobLog.FailoverDiscarded(_logger, Name, item, $"the claim for fire {fireTime:O} is no longer this compensation's");
            return CompensationStart.Dropped;
        }

        if (held.FireCompleted)
        {
            // The run it compensates outlived its session and completed after all (the instance that ran it said so in the claim).
            JobLog.FailoverDiscarded(_logger, Name, item, $"fire {fireTime:O} completed on the instance it was flagged for, after its session had ended");
            await DropCompensationAsync(claim, taskId, token).ConfigureAwait(false);
            return CompensationStart.Dropped;
        }

        if (CompletedHere(item, fireTime))
        {
            // The fire ran to its end here: the run the claim compensates outlived its session (it ignored the cancellation)
            // and completed while the claim waited for the item; or the claim moved on to a fire its crashed owner missed,
            // which this instance ran as the item's new owner after a re-sharding. Its compensation would run it twice; the
            // claim is settled instead (or moves on to the later fire the crashed owner missed).
            await SettleCompletedAsync(claim, taskId, token).ConfigureAwait(false);
            return CompensationStart.Dropped;
        }

        if (await _failover.RunElsewhereAsync(claim, token).ConfigureAwait(false))
        {
            JobLog.FailoverDiscarded(_logger, Name, item, $"fire {fireTime:O} was run by the item's new owner after a re-sharding");
            await DropCompensationAsync(claim, taskId, token).ConfigureAwait(false);
            return CompensationStart.Dropped;
        }

        var started = await _monitor.StartAsync([item], new ItemMarker(_instanceId, fireTime, taskId), generation: -1, clearMisfire: [],
            IsHeldHere, token, compensation: true, onDeadOwner: owner => HandleDepartureAsync(owner)).ConfigureAwait(false);
        if (started.AssignmentChanged)
        {
            return CompensationStart.Retry; // the item's node is missing (the count is changing): look again shortly
        }

        if (started.Started.Count == 0)
        {
            if (started.BusyWith.TryGetValue(item, out var heldFor) && heldFor == fireTime)
            {
                // A run of this very fire holds the item (its new owner ran it after a re-sharding): it is that fire's run.
                JobLog.FailoverDiscarded(_logger, Name, item, $"fire {fireTime:O} is being run by another instance already");
                await DropCompensationAsync(claim, taskId, token).ConfigureAwait(false);
                return CompensationStart.Dropped;
            }

            return CompensationStart.Busy;
        }

        var latency = claim.Flag.FlaggedAt is { } flaggedAt ? _time.GetUtcNow() - flaggedAt : TimeSpan.Zero;
        _metrics.FailoverStarted(Name, latency);
        JobLog.Compensating(_logger, Name, item, claim.Flag.CrashedInstance, fireTime, latency);
        _compensationRuns[item] = taskId;
        Launch(fireTime, ExecutionSource.Failover, taskId, [item], resolved, started.Tokens);
        return CompensationStart.Started;
    }

    /// <summary>The claim's fire completed here: the claim is settled unrun (or moves on to the later fire the crashed owner
    /// missed, compensated next).</summary>
    private Task SettleCompletedAsync(FailoverClaim claim, string taskId, CancellationToken token)
    {
        JobLog.FailoverDiscarded(_logger, Name, claim.Item, $"fire {claim.Flag.FireTime:O} completed on this instance after all");
        return DropCompensationAsync(claim, taskId, token);
    }

    /// <summary>
    /// A run of the item here just completed the fire a claim of this instance waits to compensate. The compensation would
    /// find that out when it comes to start — but while this instance keeps the item busy (catch-ups one after another) it
    /// never does, and a claim left standing is handed on when this instance leaves, and run twice. Settled now instead.
    /// </summary>
    private async Task SettleClaimOfCompletedFireAsync(FailoverClaim claim)
    {
        var token = _stopping.Token;
        try
        {
            await _startGate.WaitAsync(token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }

        try
        {
            // Under the start gate, as a compensation's start: still the same claim, not launched meanwhile, still ours.
            if (_compensating.TryGetValue(claim.Item, out var current) && current == claim && !_compensationRuns.ContainsKey(claim.Item)
                && CompletedHere(claim.Item, claim.Flag.FireTime) && await _failover.HeldClaimAsync(claim, token).ConfigureAwait(false) is not null)
            {
                await SettleCompletedAsync(claim, NewTaskId([claim.Item], ExecutionSource.Failover, claim.Flag.FireTime), token).ConfigureAwait(false);
            }
        }
        catch (RegistryException e)
        {
            // Its compensation's start settles it instead.
            JobLog.RegistryCallFailed(_logger, Name, $"settling the claim of item {claim.Item}, whose fire {claim.Flag.FireTime:O} completed here", e.Message);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        finally
        {
            _startGate.Release();
        }
    }

    /// <summary>
    /// Remembers that a fire of the item ran to its end here: the last 64 per item, and apart from them the last 16 that ended
    /// after their session had (such ends are rare — one per lost session at most — and are what leaves a flag for a fire that
    /// completed, so a run of catch-ups after them must not push them out).
    /// </summary>
    private void RecordCompletion(int item, DateTimeOffset fireTime, bool late)
    {
        lock (_completedHere)
        {
            Remember(_completedHere, 64);
            if (late)
            {
                Remember(_completedLate, 16);
            }
        }

        void Remember(Dictionary<int, List<DateTimeOffset>> completions, int most)
        {
            if (!completions.TryGetValue(item, out var fires))
            {
                completions[item] = fires = [];
            }

            if (!fires.Contains(fireTime))
            {
                fires.Add(fireTime);
                if (fires.Count > most)
                {
                    fires.RemoveAt(0);
                }
            }
        }
    }

    /// <summary>That fire of the item ran to its end on this instance (as far as it remembers: see <see cref="RecordCompletion"/>).</summary>
    private bool CompletedHere(int item, DateTimeOffset fireTime)
    {
        lock (_completedHere)
        {
            return (_completedHere.TryGetValue(item, out var fires) && fires.Contains(fireTime))
                || (_completedLate.TryGetValue(item, out var late) && late.Contains(fireTime));
        }
    }

    /// <summary>Withdraws the flags of fires that completed here after their session had ended (each forgotten once done;
    /// while the registry is away they wait for the recovery).</summary>
    private async Task WithdrawLateCompletionsAsync()
    {
        foreach (var (item, fireTime) in _lateCompletions.Keys.OrderBy(k => k.FireTime).ToList())
        {
            if (_registry.State != RegistryState.Connected || _stopping.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await _failover.WithdrawCompletedAsync(item, fireTime, _stopping.Token).ConfigureAwait(false);
                _lateCompletions.TryRemove((item, fireTime), out _);
            }
            catch (Exception e) when (e is RegistryException or OperationCanceledException)
            {
                JobLog.RegistryCallFailed(_logger, Name, $"withdrawing the failover flag of item {item}, whose fire {fireTime:O} completed here", e.Message);
                return;
            }
        }
    }

    /// <summary>
    /// The claimed fire was run by another run: the claim goes — or moves on to the later fire its crashed owner also missed
    /// (<see cref="FailoverFlag.MissedFireTime"/>), which nobody else runs: that one is compensated next, as after a run.
    /// </summary>
    private async Task DropCompensationAsync(FailoverClaim claim, string taskId, CancellationToken token)
    {
        var next = await _failover.SettleCompensationAsync(claim, taskId, advance: true, token).ConfigureAwait(false);
        _compensating.TryRemove(new KeyValuePair<int, FailoverClaim>(claim.Item, claim)); // only this claim, not a newer one
        if (next is null)
        {
            return;
        }

        JobLog.CompensatingMissedFire(_logger, Name, claim.Item, claim.Flag.FireTime, next.Flag.FireTime);
        _compensating[next.Item] = next;
        Track(CompensateAsync(next)); // after this start phase releases the gate
    }

    /// <summary>Items of this instance's own fires (not compensations) are running here.</summary>
    private bool RunsOwnItems => _runningHere.Keys.Any(item => !_compensating.ContainsKey(item));

    /// <summary>A fire this instance ran on schedule and the assignment it ran on.</summary>
    private sealed record ScheduledFire(DateTimeOffset FireTime, ShardingSnapshot Sharding);

    /// <summary>What runs here for an item: the execution's task id and the fire it belongs to.</summary>
    private sealed record RunningItem(string TaskId, DateTimeOffset FireTime);

    private enum CompensationStart
    {
        Started,
        Busy,
        Retry,
        Dropped,
    }

    // ----- self-fencing -----

    private void OnSessionChanged(RegistrySessionEvent change)
    {
        if (_stopped == 1)
        {
            return;
        }

        switch (change.Kind)
        {
            case RegistrySessionEventKind.Suspended:
                // The deadline counts from when the server was last heard from: the client only declares the connection lost
                // after a silence (2T/3 on ZooKeeper), by which time half the session timeout may be long gone.
                var threshold = _registry.SessionTimeout * _context.Options.SelfFencingFraction;
                var silence = _registry.SinceLastHeard;
                var left = threshold - silence;
                lock (_fenceLock)
                {
                    _fenceTimer?.Dispose();
                    _fenceTimer = _time.CreateTimer(_ => Fence(_registry.SinceLastHeard), null, left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
                }

                break;
            case RegistrySessionEventKind.SessionLost:
                Fence(_registry.SessionTimeout, sessionLost: true); // the session is gone: what still runs here is compensated elsewhere
                break;
            case RegistrySessionEventKind.Reconnected:
                StopFenceTimer();
                Track(RecoverAsync(newSession: false));
                break;
            case RegistrySessionEventKind.NewSession:
                StopFenceTimer();
                Track(RecoverAsync(newSession: true));
                break;
        }
    }

    private void StopFenceTimer()
    {
        lock (_fenceLock)
        {
            _fenceTimer?.Dispose();
            _fenceTimer = null;
        }
    }

    /// <summary>Cancels what runs here (once per disconnection) and remembers it, so it can be handed to failover afterwards.</summary>
    private void Fence(TimeSpan suspendedFor, bool sessionLost = false)
    {
        List<(int Item, string TaskId)> items;
        CancellationTokenSource tripped;
        lock (_fenceLock)
        {
            if (_fenceTripped || _stopped == 1 || (!sessionLost && _registry.State == RegistryState.Connected))
            {
                return;
            }

            _fenceTripped = true;
            tripped = _fence;
            // Only what still executes: an item that has ended is no longer in the running set, even while its marker's
            // release waits for the registry (it finished; handing it over would run it twice).
            items = [.. _runningHere.Select(r => (r.Key, r.Value.TaskId))];
            items.ForEach(i => _fenced[i.Item] = i.TaskId);
        }

        // Outside the lock: cancellation runs the items' callbacks.
        tripped.Cancel();
        if (items.Count > 0)
        {
            _metrics.Fenced(Name, items.Count);
            JobLog.Fenced(_logger, Name, suspendedFor, _context.Options.SelfFencingFraction, _registry.SessionTimeout, string.Join(",", items.Select(i => i.Item).Order()));
        }
    }

    /// <summary>
    /// The token new runs are cancelled by when this instance fences itself. Once the registry is back the tripped one is
    /// replaced at once: work the view starts as soon as it re-reads the registry (a claim, say) must not be launched already
    /// cancelled, before the recovery has run.
    /// </summary>
    private CancellationToken CurrentFence()
    {
        lock (_fenceLock)
        {
            if (_fenceTripped && _registry.State == RegistryState.Connected)
            {
                _fence = new CancellationTokenSource();
                _fenceTripped = false;
            }

            return _fence.Token;
        }
    }

    /// <summary>The item's marker is this instance's business: it runs here, or self-fencing cut it short and it waits to be handed over.</summary>
    private bool IsHeldHere(int item)
    {
        if (_runningHere.ContainsKey(item))
        {
            return true;
        }

        lock (_fenceLock)
        {
            return _fenced.ContainsKey(item);
        }
    }

    /// <summary>
    /// Back on the registry. Same session: nobody handled this instance (it never left), so it hands the items it cut short to
    /// failover itself, once each has ended (one that ignores cancellation runs on; it is handed over when it ends cut short, or
    /// released when it completes). New session: the others handled its departure if they could (its progress record is gone
    /// then); otherwise it handles it now as they would have, and registers afresh either way. Fires wait meanwhile. A
    /// recovery that fails keeps what it has not handed over and tries again.
    /// </summary>
    private async Task RecoverAsync(bool newSession)
    {
        _ = CurrentFence();
        for (var attempt = 1; !_stopping.IsCancellationRequested; attempt++)
        {
            try
            {
                await _startGate.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }

            var done = false;
            try
            {
                if (newSession)
                {
                    if (FailoverActive)
                    {
                        // The old session's departure was handled (or is, by this instance, now): what it missed is compensated
                        // from the evidence, so a catch-up of it here as well would run it twice.
                        lock (_catchUps)
                        {
                            _catchUps.Clear();
                        }
                    }

                    await ReclaimProgressAsync().ConfigureAwait(false);
                    newSession = false;
                    JobLog.Rejoined(_logger, Name, "session replaced after it expired");
                }

                await HandOverFencedAsync().ConfigureAwait(false);
                done = true;
            }
            catch (Exception e) when (e is RegistryException or OperationCanceledException)
            {
                JobLog.RegistryCallFailed(_logger, Name, "recovering after the registry came back", e.Message);
            }
            finally
            {
                _startGate.Release();
            }

            if (done || _registry.State != RegistryState.Connected)
            {
                break; // done, or cut off again: the next Reconnected or NewSession recovers
            }

            try
            {
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)), _time, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        await WithdrawLateCompletionsAsync().ConfigureAwait(false); // before claiming: a flag of a fire done here must not be claimed
        Track(ClaimAndCompensateAsync());
        Track(RunCatchUpsAsync()); // fires skipped while the registry was away are caught up once
    }

    /// <summary>Hands the fenced items that have ended to failover (or, without failover, releases their markers); each is
    /// forgotten only once that is done.</summary>
    private async Task HandOverFencedAsync()
    {
        List<(int Item, string TaskId)> ended;
        lock (_fenceLock)
        {
            ended = [.. _fenced.Where(f => !(_runningHere.TryGetValue(f.Key, out var running) && running.TaskId == f.Value)).Select(f => (f.Key, f.Value))];
        }

        if (ended.Count == 0)
        {
            return;
        }

        if (FailoverActive)
        {
            await _failover.FlagOwnAsync(ended, _stopping.Token).ConfigureAwait(false);
        }
        else
        {
            await Task.WhenAll(ended.Select(e => _monitor.ReleaseAsync(e.Item, e.TaskId, sessionAtStart: 0))).ConfigureAwait(false); // careful: only if still ours
        }

        lock (_fenceLock)
        {
            foreach (var (item, taskId) in ended)
            {
                if (_fenced.TryGetValue(item, out var fencedTask) && fencedTask == taskId)
                {
                    _fenced.Remove(item);
                }
            }
        }
    }

    /// <summary>
    /// On a new session: the progress record is this instance's claim to its evidence. Gone: the others handled the departure;
    /// start afresh. Still there: bump its version first, so an instance still handling the old departure fails its multi
    /// (this instance is live again and handles its own items). The registration comes back in the same multi: never one
    /// without the other, or a death right after would leave a departure nobody handles (see <see cref="RegisterAsync"/>).
    /// </summary>
    private async Task ReclaimProgressAsync()
    {
        var path = _nodes.Progress(_instanceId);
        var registration = _nodes.Instance(_instanceId);
        if (await _registry.ExistsAsync(registration, cancellationToken: _stopping.Token).ConfigureAwait(false) is { } stat
            && stat.EphemeralOwner == _registry.SessionId)
        {
            // An earlier attempt's multi was applied and its reply lost: both are back, and _departureHandedOver was set then.
            Interlocked.Exchange(ref _registrationSession, _registry.SessionId);
            return;
        }

        var node = await _registry.GetAsync(path, cancellationToken: _stopping.Token).ConfigureAwait(false);
        _departureHandedOver = node is null;
        if (node is null)
        {
            // Its departure handled, this instance dropped its catch-ups (RecoverAsync): it does not run the fires that came
            // due before it is registered again. A leader that shards it back in at such a fire (the leader's fire starting
            // later, by its clock or a wait) must run its items of it, as for any late joiner (ItemsOfLateJoiners): nobody
            // else does — the departure had nothing of that fire to flag.
            _firesAfter = _time.GetUtcNow();
        }

        RegistryOp progress = node is null
            ? new RegistryOp.Create(path, JobNodeData.Encode(InstanceProgress.Registered(_time.GetUtcNow())))
            : new RegistryOp.SetData(path, node.Data, node.Stat.Version);
        await _registry.EnsurePathAsync(_nodes.Instances, _stopping.Token).ConfigureAwait(false);
        await _registry.MultiAsync([progress, new RegistryOp.Create(registration, RegistrationData(), NodeKind.Ephemeral)], _stopping.Token).ConfigureAwait(false);
        if (node is null)
        {
            // Until now this instance had neither registration nor progress record: a fire of the others meanwhile may have
            // flagged its items of a fire that came due in that time (FlagUnrunAsync). Such fires check before running here.
            Interlocked.Exchange(ref _reregisteredAtTicks, _time.GetUtcNow().UtcTicks);
        }

        Interlocked.Exchange(ref _registrationSession, _registry.SessionId);
    }
}
