using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using ShardedJobs.Cluster;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;
using ShardedJobs.Scheduling;

namespace ShardedJobs.Execution;

// One fire: skip checks, sharding, markers, launch, item ends, misfire catch-ups.
internal sealed partial class JobRuntime
{
    /// <summary>Fires now for every item of this instance (an operator's trigger, or a test).</summary>
    public Task TriggerNowAsync() => FireAsync(TruncateToMilliseconds(_time.GetUtcNow()), ExecutionSource.Manual);

    /// <summary>
    /// Runs one fire's start phase: decides the items, writes their markers, and launches the execution (which runs on).
    /// Never throws: a fire that cannot run is skipped with a log line and a metric.
    /// </summary>
    public async Task FireAsync(DateTimeOffset fireTime, ExecutionSource source, IReadOnlyCollection<int>? onlyItems = null)
    {
        var token = _stopping.Token;
        var session = _registry.SessionId; // the session this fire came due in
        if (source == ExecutionSource.Schedule && HasCatchUpsToRun())
        {
            await RunCatchUpsAsync().ConfigureAwait(false); // an earlier fire skipped (registry away) runs before this one
        }

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
            await StartFireAsync(fireTime, source, onlyItems, session, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (RegistryException e)
        {
            Skip(fireTime, source, "registry_error", e.Message);
        }
        catch (Exception e)
        {
            JobLog.UnexpectedError(_logger, Name, $"starting the fire of {fireTime:O}", e);
            Skip(fireTime, source, "error", e.Message);
        }
        finally
        {
            _startGate.Release();
        }
    }

    private async Task StartFireAsync(DateTimeOffset fireTime, ExecutionSource source, IReadOnlyCollection<int>? onlyItems, long session, CancellationToken token)
    {
        var resolved = _resolved;
        var config = resolved.Config;
        if (session != _registry.SessionId && FailoverActive && _departureHandedOver)
        {
            // It came due in a session that has since expired, and the others handled that departure: what it would have run
            // was flagged as never started and is compensated; running it here as well would run it twice.
            Skip(fireTime, source, "session_replaced", "it came due in a registry session that expired meanwhile; its items are compensated by failover");
            return;
        }

        if (config.Disabled)
        {
            Skip(fireTime, source, "job_disabled", "the job is disabled (config)");
            return;
        }

        if (!_view.IsAvailable(_instanceId))
        {
            Skip(fireTime, source, "instance_disabled", "this instance or its server is disabled");
            return;
        }

        if (_registry.State != RegistryState.Connected)
        {
            Skip(fireTime, source, "registry_unavailable", "the registry connection is suspended");
            return;
        }

        if (config.MaxTimeDiffSeconds >= 0 && await MeasureClockSkewAsync(token).ConfigureAwait(false) is { } skew
            && skew.Duration() > TimeSpan.FromSeconds(config.MaxTimeDiffSeconds))
        {
            JobLog.ClockSkewTooLarge(_logger, Name, fireTime, skew, config.MaxTimeDiffSeconds);
            Skip(fireTime, source, "time_diff", $"the clock differs from the registry's by {skew.TotalSeconds:0.###} s");
            return;
        }

        var deadline = _time.GetUtcNow() + _context.Options.ShardingWaitTimeout;
        var nextFire = resolved.Schedule.GetNextOccurrence(fireTime);
        if (nextFire is { } next && next < deadline)
        {
            deadline = next;
        }

        var dueUnder = _view.Sharding; // the assignment this fire came due under
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            // A catch-up runs the items this instance owned at the fire it missed, whatever the assignment is now (a re-sharding
            // may have moved them since): it does not wait for one. The markers keep it from overlapping the new owner's runs,
            // which are for later fires.
            var catchUp = source == ExecutionSource.Misfire && onlyItems is not null;
            ShardingSnapshot? sharding = catchUp ? _view.Sharding : null;
            try
            {
                sharding ??= await _sharding.PrepareAsync(fireTime, source == ExecutionSource.Schedule ? nextFire : null, deadline, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!token.IsCancellationRequested)
            {
                sharding = null;
            }

            if (sharding is null)
            {
                Skip(fireTime, source, "sharding_wait", "the leader did not finish re-sharding in time");
                return;
            }

            if (source == ExecutionSource.Misfire && onlyItems is not null)
            {
                lock (_catchUps)
                {
                    // Another catch-up may have run them already: only what still waits for this fire.
                    onlyItems = [.. onlyItems.Where(i => _catchUps.TryGetValue(i, out var pending) && pending == fireTime)];
                }

                if (onlyItems.Count == 0)
                {
                    return;
                }
            }

            var disabled = _view.DisabledItems;
            var leadingThisFire = !catchUp && source == ExecutionSource.Schedule && _election.IsLeader;
            // Items of this fire whose owners do not run it: the leader runs them.
            List<int> forOthers = leadingThisFire ? [.. ItemsOfLateJoiners(sharding, fireTime).Union(await ItemsOfEarlyStartersAsync(dueUnder, sharding, fireTime, token).ConfigureAwait(false))] : [];
            var mine = catchUp ? onlyItems! : [.. sharding.ItemsOf(_instanceId), .. forOthers];
            var items = mine.Where(i => (onlyItems is null || onlyItems.Contains(i)) && !disabled.Contains(i) && i < config.Shards).ToList();
            if (source == ExecutionSource.Misfire && onlyItems is not null)
            {
                var gone = onlyItems.Where(i => i >= config.Shards || disabled.Contains(i)).ToList();
                if (gone.Count > 0)
                {
                    await DropCatchUpsAsync(gone, "the items are disabled or no longer exist", token).ConfigureAwait(false);
                }
            }

            // An item already running here for this very fire (a catch-up that won the race) is not a misfire of it.
            items.RemoveAll(i => _runningHere.TryGetValue(i, out var running) && running.FireTime == fireTime);
            var busy = items.Where(_runningHere.ContainsKey).ToList();
            items.RemoveAll(busy.Contains);
            List<int> claimed = [];
            // A fire that came due while this instance was back on a new session but not yet registered again (its departure
            // handled): another instance may have flagged its items of this fire as never started, or compensated them already.
            var dueWhileUnregistered = FailoverActive && !catchUp && fireTime.UtcTicks <= Interlocked.Read(ref _reregisteredAtTicks);
            if (dueWhileUnregistered && items.Count > 0)
            {
                var answered = await _failover.AnsweredByFailoverAsync(items, fireTime, token).ConfigureAwait(false);
                if (answered.Count > 0)
                {
                    items.RemoveAll(answered.Contains);
                    JobLog.FailoverDiscarded(_logger, Name, answered[0], $"item(s) {string.Join(",", answered)} of fire {fireTime:O} are flagged for failover already (they came due before this instance registered again); not started here");
                }
            }

            if (config.MonitorExecution && items.Count > 0 && (sharding.Generation != _lastStartGeneration || source == ExecutionSource.Misfire || forOthers.Count > 0 || dueWhileUnregistered))
            {
                // The assignment changed since this instance last started items (or this is a catch-up): an item may have run
                // this very fire already on its previous owner, before the re-sharding moved it here.
                var handled = await _monitor.StartedAlreadyAsync(items, fireTime, token).ConfigureAwait(false);
                var already = handled.Started;
                if (already.Count > 0)
                {
                    items.RemoveAll(already.Contains);
                    JobLog.AlreadyStarted(_logger, Name, fireTime, string.Join(",", already));
                    lock (_catchUps)
                    {
                        already.Where(i => _catchUps.TryGetValue(i, out var pending) && pending == fireTime).ToList().ForEach(i => _catchUps.Remove(i));
                    }
                }

                // A compensation claimed for another fire goes first. A catch-up starts the moment the item's run ends,
                // well before the compensation waiting for that end can (it learns of it by a watch), so an item whose
                // runs outlast the interval was caught up back to back for ever and its compensation — with every other
                // flag its claimant's capacity kept waiting — never ran: those fires were lost. (A fire on schedule checks
                // only after a re-sharding: it finds the item free only between runs, so it cannot starve a compensation; the
                // stable cluster's fire costs no extra reads; and a claim its claimant lost track of cannot hold the item back
                // for good.)
                claimed = [.. handled.Claimed.Where(items.Contains)];
                items.RemoveAll(claimed.Contains);
            }

            var taskId = NewTaskId(items, source, fireTime);
            IReadOnlyDictionary<int, long> tokens = new Dictionary<int, long>();
            if (config.MonitorExecution && items.Count > 0)
            {
                List<int> clearMisfire;
                lock (_catchUps)
                {
                    clearMisfire = [.. items.Where(_catchUps.ContainsKey)];
                }

                var started = await _monitor.StartAsync(items, new ItemMarker(_instanceId, fireTime, taskId), sharding.Generation, clearMisfire,
                    IsHeldHere, token, onDeadOwner: FailoverActive ? owner => HandleDepartureAsync(owner) : null).ConfigureAwait(false);
                if (started.AssignmentChanged)
                {
                    await _view.RefreshAsync(ViewParts.Sharding | ViewParts.ReshardingFlag).WaitAsync(token).ConfigureAwait(false);
                    continue;
                }

                items = [.. started.Started];
                tokens = started.Tokens;
                _lastStartGeneration = sharding.Generation;
                // An item held by a run of this fire — a compensation, or its previous owner before a re-sharding — is not a
                // misfire of it: that run is this fire's. A run of a later fire is not (this fire started late, after a wait
                // for a re-sharding made at that later fire): it does not complete this one, which is owed.
                busy.AddRange(started.Busy.Where(i => !(started.BusyWith.TryGetValue(i, out var heldFor) && heldFor == fireTime)));
            }

            if (items.Count > 0)
            {
                // First: their markers are written, which records them as started for this fire. Should a registry call below
                // fail, the fire is skipped, and its catch-up takes those markers for a run of this fire: never launched, they
                // would be nobody's.
                Launch(fireTime, source, taskId, items, resolved, tokens);
            }

            if (busy.Count > 0)
            {
                await OnMisfireAsync(busy, fireTime, config, token).ConfigureAwait(false);
            }

            if (claimed.Count > 0)
            {
                await DeferBehindClaimsAsync(claimed, fireTime, config, token).ConfigureAwait(false);
            }

            if (!catchUp && source == ExecutionSource.Schedule && FailoverActive)
            {
                _lastScheduledFire = new ScheduledFire(fireTime, sharding);
                FlagItemsOfDepartedOwners(sharding, fireTime, config, disabled);
            }

            return;
        }

        Skip(fireTime, source, "sharding_changed", "the assignment kept changing while the fire started");
    }

    /// <summary>
    /// The leader's part at a fire: items the assignment gives to instances that registered after this fire came due (at or
    /// after it by their own clock, so their triggers start with the next one). The leader's sharding at this fire read them as
    /// live — they registered between the fire and its read of the instances — but nobody else would run this fire of those
    /// items. Their owners run the later fires.
    /// </summary>
    private List<int> ItemsOfLateJoiners(ShardingSnapshot sharding, DateTimeOffset fireTime)
    {
        var instances = _view.Instances;
        var late = sharding.Owners
            .Where(o => o.Value != _instanceId && instances.TryGetValue(o.Value, out var registration) && registration.FiresAfter is { } after && after >= fireTime)
            .ToList();
        if (late.Count > 0)
        {
            JobLog.RunningForLateJoiner(_logger, Name, fireTime, string.Join(",", late.Select(o => o.Key).Order()), string.Join(", ", late.Select(o => o.Value).Distinct().Order(StringComparer.Ordinal)));
        }

        return [.. late.Select(o => o.Key).Order()];
    }

    /// <summary>
    /// The leader's part at a fire whose re-sharding moved items (from <paramref name="dueUnder"/>, the assignment the fire came
    /// due under, to <paramref name="sharding"/>): those it gives to instances that started this fire before the re-sharding (by
    /// their clocks, ahead of the leader's; their progress record is at it or later). They ran the fire under the old
    /// assignment, without these items, and the old owner may be gone: nobody else would run this fire of them. Those run for
    /// this fire already (by a live old owner) are dropped by the start's check of the items' last starts.
    /// </summary>
    private async Task<List<int>> ItemsOfEarlyStartersAsync(ShardingSnapshot dueUnder, ShardingSnapshot sharding, DateTimeOffset fireTime, CancellationToken token)
    {
        if (sharding.Generation == dueUnder.Generation)
        {
            return [];
        }

        List<int> items = [];
        List<string> owners = [];
        foreach (var moved in sharding.Owners
            .Where(o => o.Value != _instanceId && (!dueUnder.Owners.TryGetValue(o.Key, out var before) || before != o.Value))
            .GroupBy(o => o.Value, o => o.Key, StringComparer.Ordinal))
        {
            if (await _monitor.LastStartedFireAsync(moved.Key, token).ConfigureAwait(false) is { } started && started >= fireTime)
            {
                items.AddRange(moved);
                owners.Add(moved.Key);
            }
        }

        if (items.Count > 0)
        {
            JobLog.RunningForEarlyStarter(_logger, Name, fireTime, string.Join(",", items.Order()), string.Join(", ", owners.Order(StringComparer.Ordinal)));
        }

        return [.. items.Order()];
    }

    /// <summary>
    /// Items this fire's assignment gives to instances with no registration: their owner is gone and the leader has not
    /// re-sharded yet (it may be gone as well, its session not yet expired), so nobody runs this fire of them. With failover
    /// they are flagged as never started by their owner, for this fire (see <see cref="FailoverCoordinator.FlagUnrunAsync"/>).
    /// </summary>
    private void FlagItemsOfDepartedOwners(ShardingSnapshot sharding, DateTimeOffset fireTime, JobConfig config, IReadOnlySet<int> disabled)
    {
        var instances = _view.Instances;
        foreach (var orphans in sharding.Owners
            .Where(o => o.Value != _instanceId && !instances.ContainsKey(o.Value) && o.Key < config.Shards && !disabled.Contains(o.Key))
            .GroupBy(o => o.Value, o => o.Key, StringComparer.Ordinal))
        {
            Track(FlagUnrunAsync(orphans.Key, [.. orphans], fireTime));
        }
    }

    private async Task FlagUnrunAsync(string owner, IReadOnlyList<int> items, DateTimeOffset fireTime)
    {
        try
        {
            await _failover.FlagUnrunAsync(owner, items, fireTime, _stopping.Token).ConfigureAwait(false);
        }
        catch (RegistryException e)
        {
            JobLog.RegistryCallFailed(_logger, Name, $"flagging item(s) {string.Join(",", items)} of {owner}, which is gone, for fire {fireTime:O}", e.Message);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private void Launch(DateTimeOffset fireTime, ExecutionSource source, string taskId, List<int> items, ResolvedJobConfig resolved, IReadOnlyDictionary<int, long> tokens)
    {
        lock (_catchUps)
        {
            // This run supersedes a pending catch-up of the same item, of its fire or an earlier one. Not one of a later fire:
            // a compensation of an older fire (failover) that takes the item first does not make up for it; it runs after.
            items.Where(i => _catchUps.TryGetValue(i, out var pending) && pending <= fireTime).ToList().ForEach(i => _catchUps.Remove(i));
        }

        foreach (var item in items)
        {
            _runningHere[item] = new RunningItem(taskId, fireTime);
        }

        var config = resolved.Config;
        var shards = items.Select(item => new ShardContext
        {
            JobName = Name,
            TaskId = taskId,
            TotalCount = config.Shards,
            Item = item,
            ItemParameter = resolved.Parameters[item],
            JobParameter = config.JobParameter,
            FireTime = fireTime,
            IsFailover = source == ExecutionSource.Failover,
            InstanceId = _instanceId,
            FencingToken = tokens.GetValueOrDefault(item),
        }).ToList();
        var execution = new JobExecution(Name, taskId, fireTime, _instanceId, source, shards);
        var session = _registry.SessionId;
        var fence = CurrentFence();

        // Cancelled by shutdown, and by self-fencing when this instance loses the registry for too long.
        var cancellation = CancellationTokenSource.CreateLinkedTokenSource(_executionsCancelled.Token, fence);
        var task = Task.Run(() => _executor.RunAsync(execution, result => OnItemEndedAsync(result, taskId, fireTime, session, config, fence), cancellation.Token));
        _executions[task] = true;
        _ = task.ContinueWith(t =>
        {
            _executions.TryRemove(t, out _);
            cancellation.Dispose();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task OnItemEndedAsync(ShardResult result, string taskId, DateTimeOffset fireTime, long session, JobConfig config, CancellationToken fence)
    {
        var completed = result.Outcome is ShardOutcome.Succeeded or ShardOutcome.Failed;
        // It ran to its end after the session it started in had ended (or while the registry was away, so that it may have):
        // a job that ignores cancellation runs on past self-fencing, and that session's departure flagged it, unfinished then.
        var completedLate = completed && FailoverActive && (session != _registry.SessionId || _registry.State != RegistryState.Connected);
        // An item cut short by shutdown or self-fencing did not finish: with failover, its marker (and claim) stay as the
        // evidence its compensation is made from.
        var cutShort = result.Outcome == ShardOutcome.Cancelled && (_stopping.IsCancellationRequested || fence.IsCancellationRequested);
        var keepEvidence = cutShort && config is { Failover: true, MonitorExecution: true };
        var handOverNow = false;
        lock (_fenceLock)
        {
            if (_fenced.TryGetValue(result.Item, out var fencedTask) && fencedTask == taskId)
            {
                if (!cutShort)
                {
                    _fenced.Remove(result.Item); // it completed after all: released below like any other, nothing to hand over
                }
                else
                {
                    handOverNow = !_fenceTripped; // the recovery already ran and left it to its end: hand it over now
                }
            }

            if (completed)
            {
                // Before it leaves the running set: a compensation of this very fire that waits for the item to be free here
                // (claimed by this instance itself, say when its new session began) must find the fire done (StartCompensationAsync).
                RecordCompletion(result.Item, fireTime, completedLate);
            }

            // From now on it does not run here (its marker's release below may wait for the registry): a fence must not count
            // it as cut short. A fenced one stays held (IsHeldHere) until it is handed over.
            if (_runningHere.TryGetValue(result.Item, out var running) && running.TaskId == taskId)
            {
                _runningHere.TryRemove(new KeyValuePair<int, RunningItem>(result.Item, running));
            }
        }

        FailoverClaim? nextFire = null;
        // Only the end of the compensation's own run settles its claim: a claim taken while this instance still ran the item
        // for one of its own fires waits for that run to end (CompensateAsync), and must not be settled by it unrun.
        var compensationEnded = _compensationRuns.TryGetValue(result.Item, out var compensationTask) && compensationTask == taskId
            && _compensationRuns.TryRemove(new KeyValuePair<int, string>(result.Item, taskId));
        FailoverClaim? claim = null;
        if (compensationEnded && _compensating.TryRemove(result.Item, out claim) && !keepEvidence)
        {
            // The marker and the claim go (or the claim moves on to a missed fire) in one multi: a crash between two separate
            // writes would leave a claim that makes the finished compensation run again.
            nextFire = await _failover.SettleCompensationAsync(claim, taskId, advance: !_stopping.IsCancellationRequested, _stopping.Token).ConfigureAwait(false);
        }
        else if (config.MonitorExecution && !keepEvidence)
        {
            await _monitor.ReleaseAsync(result.Item, taskId, session).ConfigureAwait(false);
        }

        if (handOverNow)
        {
            Track(HandOverFencedAsync());
        }

        if (completedLate)
        {
            // The fire is done now: the flag its old session's departure left must go, or a compensation runs the fire a second
            // time. Without the registry yet, the recovery does it when it is back.
            _lateCompletions[(result.Item, fireTime)] = true;
            Track(WithdrawLateCompletionsAsync());
        }

        if (nextFire is not null)
        {
            JobLog.CompensatingMissedFire(_logger, Name, claim!.Item, claim.Flag.FireTime, nextFire.Flag.FireTime);
            _compensating[nextFire.Item] = nextFire;
            Track(CompensateAsync(nextFire));
        }
        else if (completed && !compensationEnded && _compensating.TryGetValue(result.Item, out var waiting) && waiting.Flag.FireTime == fireTime)
        {
            Track(SettleClaimOfCompletedFireAsync(waiting)); // a claim of this instance waits to compensate the fire just completed
        }

        bool catchUp;
        lock (_catchUps)
        {
            catchUp = _catchUps.ContainsKey(result.Item);
        }

        if (catchUp && !_stopping.IsCancellationRequested)
        {
            Track(RunCatchUpsAsync());
        }

        if (!_stopping.IsCancellationRequested)
        {
            // Enquiry: own items done (or a compensation freed capacity): take what waits. Still busy, it claims once the flags
            // have waited long enough: an instance whose items outlast the interval is never idle, and without asking again at
            // item ends, flags left over after its one delayed claim waited until the membership changed.
            Track(ClaimAndCompensateAsync());
        }
    }

    /// <summary>Items a fire found still running: counted, flagged, and (with Misfire) caught up once right after they finish.</summary>
    private async Task OnMisfireAsync(List<int> items, DateTimeOffset fireTime, JobConfig config, CancellationToken token)
    {
        _metrics.Misfired(Name, items.Count);
        JobLog.Misfired(_logger, Name, fireTime, string.Join(",", items), config.Misfire);
        if (!config.Misfire)
        {
            return;
        }

        OweCatchUp(items, fireTime);

        if (config.MonitorExecution)
        {
            await _monitor.SetMisfireAsync(items, token).ConfigureAwait(false);
        }

        foreach (var item in items.Where(i => !_runningHere.ContainsKey(i)))
        {
            // Running elsewhere: catch up when its marker goes. (Running here: OnItemEndedAsync does it.)
            CatchUpWhenGone(item, CatchUpWait.Marker);
        }
    }

    /// <summary>
    /// Items whose fire waits for the compensation another fire's claim holds them for: owed once, like a misfire (the latest
    /// fire waiting wins), and caught up once that claim is settled — not when the running marker goes, which may be before the
    /// compensation has even started (a catch-up then would overtake it again, at the same instant, over and over).
    /// </summary>
    private async Task DeferBehindClaimsAsync(List<int> items, DateTimeOffset fireTime, JobConfig config, CancellationToken token)
    {
        JobLog.DeferredBehindCompensation(_logger, Name, fireTime, string.Join(",", items.Order()), config.Misfire);
        if (!config.Misfire)
        {
            return;
        }

        OweCatchUp(items, fireTime);

        // The misfire flag is the evidence of the owed catch-up should this instance leave before it ran.
        await _monitor.SetMisfireAsync(items, token).ConfigureAwait(false);
        foreach (var item in items)
        {
            CatchUpWhenGone(item, CatchUpWait.Claim);
        }
    }

    /// <summary>
    /// Runs the pending catch-ups once the item's running marker (or failover claim) is gone. One watch per item and kind: an
    /// item whose runs outlast the interval is found busy by fire after fire, and a watch per fire piled up — each of them ran
    /// every pending catch-up again, with its registry reads, the moment the marker went (hundreds of passes at one instant).
    /// </summary>
    private void CatchUpWhenGone(int item, CatchUpWait wait)
    {
        if (!_catchUpWatches.TryAdd((item, wait), 0))
        {
            return; // armed already: it fires when the node goes (every path of the watch ends in one call)
        }

        void OnGone()
        {
            _catchUpWatches.TryRemove((item, wait), out _);
            Track(RunCatchUpsAsync());
        }

        Track(wait == CatchUpWait.Claim
            ? _monitor.WhenUnclaimedAsync(item, OnGone, _stopping.Token)
            : _monitor.WhenFreeAsync(item, OnGone, _stopping.Token));
    }

    private enum CatchUpWait
    {
        Marker,
        Claim,
    }

    /// <summary>Records that the items owe a catch-up of <paramref name="fireTime"/>: at most one per item, for the latest fire it missed.</summary>
    private void OweCatchUp(IEnumerable<int> items, DateTimeOffset fireTime)
    {
        lock (_catchUps)
        {
            foreach (var item in items)
            {
                _catchUps[item] = _catchUps.TryGetValue(item, out var earlier) && earlier > fireTime ? earlier : fireTime;
            }
        }
    }

    private bool HasCatchUpsToRun()
    {
        lock (_catchUps)
        {
            return _catchUps.Keys.Any(i => !_runningHere.ContainsKey(i));
        }
    }

    /// <summary>Fires the pending catch-ups whose items are not running here, grouped by the fire they missed.</summary>
    private async Task RunCatchUpsAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return; // stopped: what is owed stays as misfire flags, for whoever owns the items next
        }

        List<IGrouping<DateTimeOffset, int>> groups;
        lock (_catchUps)
        {
            groups = [.. _catchUps.Where(c => !_runningHere.ContainsKey(c.Key)).GroupBy(c => c.Value, c => c.Key)];
        }

        foreach (var group in groups.OrderBy(g => g.Key))
        {
            JobLog.CatchingUp(_logger, Name, group.Key, string.Join(",", group.Order()));
            await FireAsync(group.Key, ExecutionSource.Misfire, [.. group]).ConfigureAwait(false);
        }
    }

    private async Task DropCatchUpsAsync(IReadOnlyCollection<int> items, string reason, CancellationToken token)
    {
        lock (_catchUps)
        {
            foreach (var item in items)
            {
                _catchUps.Remove(item);
            }
        }

        if (items.Count > 0)
        {
            JobLog.CatchUpDropped(_logger, Name, string.Join(",", items.Order()), reason);
            if (_resolved.Config.MonitorExecution)
            {
                await _monitor.ClearMisfireAsync(items, token).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Writes <c>systemTime/current</c> and compares the registry's modification time with this clock.</summary>
    private async Task<TimeSpan?> MeasureClockSkewAsync(CancellationToken token)
    {
        NodeStat stat;
        try
        {
            stat = await _registry.SetAsync(_nodes.SystemTime, ReadOnlyMemory<byte>.Empty, cancellationToken: token).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
        {
            await _registry.CreateWithParentsAsync(_nodes.SystemTime, ReadOnlyMemory<byte>.Empty, cancellationToken: token).ConfigureAwait(false);
            stat = (await _registry.ExistsAsync(_nodes.SystemTime, cancellationToken: token).ConfigureAwait(false))!;
        }

        return _time.GetUtcNow() - stat.ModifiedAt;
    }

    private void Skip(DateTimeOffset fireTime, ExecutionSource source, string reason, string detail)
    {
        if (source == ExecutionSource.Schedule && reason is not ("job_disabled" or "instance_disabled" or "time_diff" or "session_replaced") && _resolved.Config is { Misfire: true, MonitorExecution: true })
        {
            // Skipped for want of the registry (or of the leader's sharding): caught up once, as a misfire, when it is back —
            // a daily job that meets a registry blip still runs that day.
            // Not the items this fire launched before the failure (they are its run).
            OweCatchUp(_view.Sharding.ItemsOf(_instanceId).Where(i => !(_runningHere.TryGetValue(i, out var running) && running.FireTime == fireTime)), fireTime);
        }

        _metrics.FireSkipped(Name, reason);
        // A disabled job or instance skips every fire by design: not worth a warning each time.
        var level = reason is "job_disabled" or "instance_disabled" ? LogLevel.Debug : LogLevel.Warning;
        JobLog.FireSkipped(_logger, level, Name, fireTime, source, detail);
    }

    private string NewTaskId(IReadOnlyList<int> items, ExecutionSource source, DateTimeOffset fireTime) =>
        // ElasticJob's "{job}@-@{items}@-@{type}@-@{instance}", made unique per execution by the fire time and a sequence.
        string.Create(CultureInfo.InvariantCulture,
            $"{Name}@-@{string.Join(",", items)}@-@{source.ToString().ToUpperInvariant()}@-@{_instanceId}@-@{fireTime.ToUnixTimeMilliseconds()}.{Interlocked.Increment(ref _taskSequence)}");

    private static DateTimeOffset TruncateToMilliseconds(DateTimeOffset time) => DateTimeOffset.FromUnixTimeMilliseconds(time.ToUnixTimeMilliseconds());
}
