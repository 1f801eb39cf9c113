using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using ShardedJobs.Cluster;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;
using ShardedJobs.Scheduling;

namespace ShardedJobs.Execution;

/// <summary>What every job of one host shares.</summary>
internal sealed record RuntimeContext(
    IRegistry Registry,
    string InstanceId,
    string ServerIp,
    IServiceProvider Services,
    TimeProvider Time,
    ILoggerFactory LoggerFactory,
    ShardedJobsMetrics Metrics,
    ShardingStrategyResolver Strategies,
    IReadOnlyList<IJobListener> Listeners,
    IReadOnlyList<IJobErrorHandler> ErrorHandlers,
    ShardedJobsOptions Options);

/// <summary>
/// One job on one instance, from registration to shutdown: it registers (root, config, server, progress, ephemeral instance),
/// keeps its <see cref="JobClusterView"/>, takes part in the leader election while it is available, fires on its
/// <see cref="JobTrigger"/>, and runs each fire through the pipeline in <see cref="FireAsync"/>:
/// skip checks → sharding (<see cref="ShardingCoordinator"/>) → local items → running markers (<see cref="ExecutionMonitor"/>) →
/// items (<see cref="ItemExecutor"/>) → markers released as items end → misfire catch-ups.
/// <para>
/// The start phase of fires is serialised (one gate per job); executions then run on, so a fire is not held up by items of the
/// previous fire that are still running: those items alone are handled as a misfire, the others start on time.
/// </para>
/// </summary>
internal sealed class JobRuntime : IAsyncDisposable
{
    private readonly ShardedJobDefinition _definition;
    private readonly JobSettings _settings;
    private readonly RuntimeContext _context;
    private readonly IRegistry _registry;
    private readonly JobNodes _nodes;
    private readonly string _instanceId;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ShardedJobsMetrics _metrics;
    private readonly JobClusterView _view;
    private readonly LeaderElection _election;
    private readonly ShardingCoordinator _sharding;
    private readonly ExecutionMonitor _monitor;
    private readonly FailoverCoordinator _failover;
    private readonly ItemExecutor _executor;
    private readonly JobTrigger _trigger;
    private readonly SemaphoreSlim _startGate = new(1, 1);
    private readonly SemaphoreSlim _electionGate = new(1, 1);
    private readonly SemaphoreSlim _claimGate = new(1, 1);
    private readonly ConcurrentDictionary<int, FailoverClaim> _compensating = new();
    private readonly Lock _fenceLock = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _executionsCancelled = new();
    private readonly ConcurrentDictionary<int, RunningItem> _runningHere = new();
    private readonly ConcurrentDictionary<Task, bool> _executions = new();
    private readonly ConcurrentDictionary<Task, bool> _background = new();
    private readonly Dictionary<int, DateTimeOffset> _catchUps = [];
    private readonly byte[] _registration;
    private volatile ResolvedJobConfig _resolved;
    private ITimer? _reconcileTimer;
    private ITimer? _fenceTimer;
    private CancellationTokenSource _fence = new();
    private List<(int Item, string TaskId)> _fenced = [];
    private bool _fenceTripped;
    private bool _participating;
    private long _taskSequence;
    private int _stopped;
    private string? _lastConfigProblem;
    private bool _disabledLocally;
    private IReadOnlySet<string> _knownInstances = new HashSet<string>();

    public JobRuntime(ShardedJobDefinition definition, JobSettings settings, RuntimeContext context)
    {
        _definition = definition;
        _settings = settings;
        _context = context;
        _registry = context.Registry;
        _nodes = new JobNodes(definition.Name);
        _instanceId = context.InstanceId;
        _time = context.Time;
        _metrics = context.Metrics;
        _logger = context.LoggerFactory.CreateLogger("ShardedJobs.Job");
        _resolved = ResolvedJobConfig.TryResolve(settings.Config, context.Strategies, out var problems)
            ?? throw new InvalidOperationException($"Job '{definition.Name}' has an invalid configuration: {string.Join("; ", problems)}");
        _registration = JobNodeData.Encode(new InstanceRegistration(_instanceId, context.ServerIp));
        _view = new JobClusterView(_registry, _nodes, _instanceId, settings.Config.Shards, _logger, _time);
        _election = new LeaderElection(_registry, _nodes.LeaderInstance, _instanceId);
        _sharding = new ShardingCoordinator(_registry, _nodes, _view, _election, context.Strategies, () => _resolved.Config, _instanceId, _logger, _metrics, _time);
        _monitor = new ExecutionMonitor(_registry, _nodes, _instanceId, _logger, _time);
        _failover = new FailoverCoordinator(_registry, _nodes, _view, _instanceId, () => _resolved, _logger, _metrics, _time);
        _executor = new ItemExecutor(definition, settings.MaxConcurrency, settings.ErrorPolicy, context.Services, context.Listeners, context.ErrorHandlers, _logger, _metrics, _time);
        _trigger = new JobTrigger(definition.Name, () => _resolved.Schedule, fireTime => FireAsync(fireTime, ExecutionSource.Schedule), _time, _logger);
    }

    public string Name => _definition.Name;

    public JobNodes Nodes => _nodes;

    /// <summary>The configuration in force on this instance (the registry's once read, unless it is invalid).</summary>
    public JobConfig Config => _resolved.Config;

    public DateTimeOffset? NextFireTime => _stopped == 1 ? null : _trigger.NextFireTime;

    public bool IsShutDown => _stopped == 1;

    public bool IsLeader => _election.IsLeader;

    public string? Leader => _election.Leader;

    internal JobClusterView View => _view;

    /// <summary>No fire is starting (or the starting one waits for the leader) and the view is not refreshing; or nothing can
    /// move without the registry. Tests wait for this before moving fake time on.</summary>
    internal bool IsSettled =>
        _stopped == 1 || _registry.State != RegistryState.Connected || ((_startGate.CurrentCount == 1 || _sharding.IsWaiting) && _view.IsIdle);

    /// <summary>Items this instance is executing now.</summary>
    internal IReadOnlyCollection<int> RunningHere => [.. _runningHere.Keys.Order()];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await ClaimJobRootAsync(cancellationToken).ConfigureAwait(false);
        await PublishConfigAsync(cancellationToken).ConfigureAwait(false);
        await EnsureNodeAsync(_nodes.Server(_context.ServerIp), ServerStatus.Encode(enabled: true), cancellationToken).ConfigureAwait(false);
        _view.Changed += OnViewChanged;
        await _view.StartAsync(cancellationToken).ConfigureAwait(false);
        ApplyRegistryConfig();

        if (FailoverActive)
        {
            // An earlier process with this instance id that died without handing over left its evidence under this id.
            await _failover.FlagDepartedAsync(_instanceId, "left without handing over (an earlier run of this instance id)", cancellationToken).ConfigureAwait(false);
        }

        await EnsureNodeAsync(_nodes.Progress(_instanceId), JobNodeData.Encode(new InstanceProgress(DateTimeOffset.UnixEpoch, "none")), cancellationToken).ConfigureAwait(false);
        await _registry.EnsurePathAsync(_nodes.Instances, cancellationToken).ConfigureAwait(false);
        await _registry.KeepEphemeralAsync(_nodes.Instance(_instanceId), _registration, cancellationToken).ConfigureAwait(false);
        _knownInstances = _view.Instances.Keys.ToHashSet(StringComparer.Ordinal);
        _registry.SessionChanged += OnSessionChanged;
        await UpdateElectionAsync().ConfigureAwait(false);

        var config = _resolved.Config;
        if (config.Failover && !config.MonitorExecution)
        {
            JobLog.FailoverWithoutMonitoring(_logger, Name);
        }

        if (FailoverActive)
        {
            // Recovery after a total loss: the first instance back flags what the dead ones left, then compensates.
            Track(RecoverAndClaimAsync());
        }

        if (config.ReconcileIntervalMinutes >= 1)
        {
            var interval = TimeSpan.FromMinutes(config.ReconcileIntervalMinutes);
            _reconcileTimer = _time.CreateTimer(_ => Track(ReconcileAsync()), null, interval, interval);
        }

        _trigger.Start();
        if (_view.TriggerRequested)
        {
            Track(HandleTriggerRequestAsync());
        }

        JobLog.JobStarted(_logger, Name, _instanceId, config.Cron, config.Shards, _trigger.NextFireTime);
    }

    /// <summary>Failover can work: on, with the running markers it needs.</summary>
    private bool FailoverActive => _resolved.Config is { Failover: true, MonitorExecution: true };

    /// <summary>Fires now for every item of this instance (an operator's trigger, or a test).</summary>
    public Task TriggerNowAsync() => FireAsync(TruncateToMilliseconds(_time.GetUtcNow()), ExecutionSource.Manual);

    /// <summary>
    /// Runs one fire's start phase: decides the items, writes their markers, and launches the execution (which runs on).
    /// Never throws: a fire that cannot run is skipped with a log line and a metric.
    /// </summary>
    public async Task FireAsync(DateTimeOffset fireTime, ExecutionSource source, IReadOnlyCollection<int>? onlyItems = null)
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
            await StartFireAsync(fireTime, source, onlyItems, token).ConfigureAwait(false);
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

    private async Task StartFireAsync(DateTimeOffset fireTime, ExecutionSource source, IReadOnlyCollection<int>? onlyItems, CancellationToken token)
    {
        var resolved = _resolved;
        var config = resolved.Config;
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

        if (source == ExecutionSource.Misfire && _view.ReshardingNecessary)
        {
            // The items may move: a catch-up on the old assignment could run next to the new owner's regular run.
            await DropCatchUpsAsync(onlyItems ?? [], "re-sharding is pending", token).ConfigureAwait(false);
            return;
        }

        var deadline = _time.GetUtcNow() + _context.Options.ShardingWaitTimeout;
        if (resolved.Schedule.GetNextOccurrence(fireTime) is { } nextFire && nextFire < deadline)
        {
            deadline = nextFire;
        }

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            ShardingSnapshot? sharding;
            try
            {
                sharding = await _sharding.PrepareAsync(deadline, token).ConfigureAwait(false);
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

            var mine = sharding.ItemsOf(_instanceId);
            var disabled = _view.DisabledItems;
            var items = mine.Where(i => (onlyItems is null || onlyItems.Contains(i)) && !disabled.Contains(i)).ToList();
            if (source == ExecutionSource.Misfire && onlyItems is not null)
            {
                var lost = onlyItems.Except(mine).ToList();
                if (lost.Count > 0)
                {
                    await DropCatchUpsAsync(lost, "the items are no longer assigned here", token).ConfigureAwait(false);
                }
            }

            // An item already running here for this very fire (a catch-up that won the race) is not a misfire of it.
            items.RemoveAll(i => _runningHere.TryGetValue(i, out var running) && running.FireTime == fireTime);
            var busy = items.Where(_runningHere.ContainsKey).ToList();
            items.RemoveAll(busy.Contains);
            var taskId = NewTaskId(items, source, fireTime);
            if (config.MonitorExecution && items.Count > 0)
            {
                List<int> clearMisfire;
                lock (_catchUps)
                {
                    clearMisfire = [.. items.Where(_catchUps.ContainsKey)];
                }

                var started = await _monitor.StartAsync(items, new ItemMarker(_instanceId, fireTime, taskId), sharding.Generation, clearMisfire,
                    _runningHere.ContainsKey, token, onDeadOwner: FailoverActive ? owner => HandleDepartureAsync(owner) : null).ConfigureAwait(false);
                if (started.AssignmentChanged)
                {
                    await _view.RefreshAsync(ViewParts.Sharding | ViewParts.ReshardingFlag).WaitAsync(token).ConfigureAwait(false);
                    continue;
                }

                items = [.. started.Started];
                busy.AddRange(started.Busy);
            }

            if (busy.Count > 0)
            {
                await OnMisfireAsync(busy, fireTime, config, token).ConfigureAwait(false);
            }

            if (items.Count > 0)
            {
                Launch(fireTime, source, taskId, items, resolved);
            }

            return;
        }

        Skip(fireTime, source, "sharding_changed", "the assignment kept changing while the fire started");
    }

    private void Launch(DateTimeOffset fireTime, ExecutionSource source, string taskId, List<int> items, ResolvedJobConfig resolved)
    {
        lock (_catchUps)
        {
            items.ForEach(i => _catchUps.Remove(i)); // this run supersedes a pending catch-up of the same item
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
        }).ToList();
        var execution = new JobExecution(Name, taskId, fireTime, _instanceId, source, shards);
        var session = _registry.SessionId;
        CancellationToken fence;
        lock (_fenceLock)
        {
            fence = _fence.Token;
        }

        // Cancelled by shutdown, and by self-fencing when this instance loses the registry for too long.
        var cancellation = CancellationTokenSource.CreateLinkedTokenSource(_executionsCancelled.Token, fence);
        var task = Task.Run(() => _executor.RunAsync(execution, result => OnItemEndedAsync(result, taskId, session, config, fence), cancellation.Token));
        _executions[task] = true;
        _ = task.ContinueWith(t =>
        {
            _executions.TryRemove(t, out _);
            cancellation.Dispose();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task OnItemEndedAsync(ShardResult result, string taskId, long session, JobConfig config, CancellationToken fence)
    {
        // An item cut short by shutdown or self-fencing did not finish: with failover, its marker (and claim) stay as the
        // evidence its compensation is made from.
        var cutShort = result.Outcome == ShardOutcome.Cancelled && (_stopping.IsCancellationRequested || fence.IsCancellationRequested);
        var keepEvidence = cutShort && config is { Failover: true, MonitorExecution: true };
        if (config.MonitorExecution && !keepEvidence)
        {
            await _monitor.ReleaseAsync(result.Item, taskId, session).ConfigureAwait(false);
        }

        if (_compensating.TryRemove(result.Item, out _) && !keepEvidence)
        {
            await _failover.ReleaseClaimAsync(result.Item, CancellationToken.None).ConfigureAwait(false);
        }

        if (_runningHere.TryGetValue(result.Item, out var running) && running.TaskId == taskId)
        {
            _runningHere.TryRemove(new KeyValuePair<int, RunningItem>(result.Item, running));
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

        if (!RunsOwnItems && !_stopping.IsCancellationRequested)
        {
            Track(ClaimAndCompensateAsync()); // enquiry: own items done (or a compensation freed capacity): take what waits
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

        lock (_catchUps)
        {
            foreach (var item in items)
            {
                // At most one catch-up per item: for the latest fire it missed.
                _catchUps[item] = _catchUps.TryGetValue(item, out var earlier) && earlier > fireTime ? earlier : fireTime;
            }
        }

        if (config.MonitorExecution)
        {
            await _monitor.SetMisfireAsync(items, token).ConfigureAwait(false);
        }

        foreach (var item in items.Where(i => !_runningHere.ContainsKey(i)))
        {
            // Running elsewhere: catch up when its marker goes. (Running here: OnItemEndedAsync does it.)
            Track(_monitor.WhenFreeAsync(item, () => Track(RunCatchUpsAsync()), _stopping.Token));
        }
    }

    /// <summary>Fires the pending catch-ups whose items are not running here, grouped by the fire they missed.</summary>
    private async Task RunCatchUpsAsync()
    {
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

    // ----- failover -----

    /// <summary>An instance left (or a fire found its marker and it is gone): flag its unfinished items. Errors are logged; the
    /// departure stays unhandled (its progress record is the proof) for the next departure event or reconcile.</summary>
    private async Task HandleDepartureAsync(string instanceId)
    {
        try
        {
            await _failover.FlagDepartedAsync(instanceId, "left (its registration is gone)", _stopping.Token).ConfigureAwait(false);
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
    /// compensates them. One busy with its own fire waits for it to end, so compensations never delay a fire's items.
    /// </summary>
    private async Task ClaimAndCompensateAsync()
    {
        if (!FailoverActive || _stopped == 1 || _resolved.Config.Disabled || !_view.IsAvailable(_instanceId)
            || _registry.State != RegistryState.Connected || _view.PendingFailovers.IsEmpty || RunsOwnItems)
        {
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

        try
        {
            var capacity = _settings.MaxConcurrency - _compensating.Count;
            if (RunsOwnItems || capacity <= 0)
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
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        finally
        {
            _claimGate.Release();
        }
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
        var started = await _monitor.StartAsync([item], new ItemMarker(_instanceId, fireTime, taskId), generation: -1, clearMisfire: [],
            _runningHere.ContainsKey, token, recordProgress: false, onDeadOwner: owner => HandleDepartureAsync(owner)).ConfigureAwait(false);
        if (started.Started.Count == 0)
        {
            return CompensationStart.Busy;
        }

        var latency = claim.Flag.FlaggedAt is { } flaggedAt ? _time.GetUtcNow() - flaggedAt : TimeSpan.Zero;
        _metrics.FailoverStarted(Name, latency);
        JobLog.Compensating(_logger, Name, item, claim.Flag.CrashedInstance, fireTime, latency);
        Launch(fireTime, ExecutionSource.Failover, taskId, [item], resolved);
        return CompensationStart.Started;
    }

    /// <summary>Items of this instance's own fires (not compensations) are running here.</summary>
    private bool RunsOwnItems => _runningHere.Keys.Any(item => !_compensating.ContainsKey(item));

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
            items = [.. _runningHere.Select(r => (r.Key, r.Value.TaskId))];
            _fenced.AddRange(items);
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
    /// Back on the registry. Same session: nobody handled this instance (it never left), so it flags the items it cut short
    /// itself. New session: the others handled its departure if they could (its progress record is gone then); otherwise it
    /// handles it now as they would have, and registers afresh either way. Fires wait meanwhile.
    /// </summary>
    private async Task RecoverAsync(bool newSession)
    {
        List<(int Item, string TaskId)> fenced;
        lock (_fenceLock)
        {
            fenced = _fenced;
            _fenced = [];
            if (_fenceTripped)
            {
                _fence = new CancellationTokenSource(); // the tripped one is cancelled (or about to be); new runs get a fresh one
                _fenceTripped = false;
            }
        }

        try
        {
            await _startGate.WaitAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }

        try
        {
            if (newSession)
            {
                await ReclaimProgressAsync().ConfigureAwait(false);
            }

            if (fenced.Count > 0)
            {
                if (FailoverActive)
                {
                    await _failover.FlagOwnAsync(fenced, _stopping.Token).ConfigureAwait(false);
                }
                else
                {
                    foreach (var (item, taskId) in fenced)
                    {
                        _ = _monitor.ReleaseAsync(item, taskId, sessionAtStart: 0); // careful release: only if still ours
                    }
                }
            }

            if (newSession)
            {
                JobLog.Rejoined(_logger, Name, "session replaced after it expired");
            }
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            JobLog.RegistryCallFailed(_logger, Name, "recovering after the registry came back", e.Message);
        }
        finally
        {
            _startGate.Release();
        }

        Track(ClaimAndCompensateAsync());
    }

    /// <summary>
    /// On a new session: the progress record is this instance's claim to its evidence. Gone: the others handled the departure;
    /// start afresh. Still there: bump its version first, so an instance still handling the old departure fails its multi
    /// (this instance is live again and handles its own items).
    /// </summary>
    private async Task ReclaimProgressAsync()
    {
        var path = _nodes.Progress(_instanceId);
        var node = await _registry.GetAsync(path, cancellationToken: _stopping.Token).ConfigureAwait(false);
        if (node is null)
        {
            await EnsureNodeAsync(path, JobNodeData.Encode(new InstanceProgress(DateTimeOffset.UnixEpoch, "none")), _stopping.Token).ConfigureAwait(false);
            return;
        }

        await _registry.SetAsync(path, node.Data, node.Stat.Version, _stopping.Token).ConfigureAwait(false);
    }

    // ----- registration and registry changes -----

    /// <summary>The root node names the job's class, as ElasticJob's does: a different class under the same name is a conflict.</summary>
    private async Task ClaimJobRootAsync(CancellationToken token)
    {
        var data = Encoding.UTF8.GetBytes(_definition.JobTypeName);
        try
        {
            await _registry.CreateWithParentsAsync(_nodes.Root, data, cancellationToken: token).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
            var existing = await _registry.GetStringAsync(_nodes.Root, token).ConfigureAwait(false);
            if (string.IsNullOrWhiteSpace(existing))
            {
                await _registry.SetAsync(_nodes.Root, data, cancellationToken: token).ConfigureAwait(false);
            }
            else if (existing != _definition.JobTypeName)
            {
                throw new InvalidOperationException(
                    $"Job '{Name}' conflicts with another job of the same name in namespace '{_context.Options.Namespace}': the registry says it is class " +
                    $"'{existing}', this one is '{_definition.JobTypeName}'. Give one of them another Name, or delete the node '/{_context.Options.Namespace}/{Name}' if the old job is gone.");
            }
        }
    }

    /// <summary>Writes the config when absent (or with Overwrite); otherwise the registry's copy is the cluster's truth.</summary>
    private async Task PublishConfigAsync(CancellationToken token)
    {
        var local = _settings.Config;
        var data = JobNodeData.Encode(local);
        if (_settings.Overwrite)
        {
            try
            {
                await _registry.SetAsync(_nodes.Config, data, cancellationToken: token).ConfigureAwait(false);
                JobLog.ConfigWritten(_logger, Name, "overwritten (Overwrite = true)");
                return;
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
            {
            }
        }

        try
        {
            await _registry.CreateAsync(_nodes.Config, data, cancellationToken: token).ConfigureAwait(false);
            JobLog.ConfigWritten(_logger, Name, "created");
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
            // Adopted in ApplyRegistryConfig once the view has read it.
        }
    }

    private async Task EnsureNodeAsync(string path, byte[] data, CancellationToken token)
    {
        try
        {
            await _registry.CreateWithParentsAsync(path, data, cancellationToken: token).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
            // Keep what is there: an operator's DISABLED survives restarts; a progress record keeps its evidence.
        }
    }

    /// <summary>Adopts the registry's config when it is valid; otherwise keeps the current one and says why, once per problem.</summary>
    private void ApplyRegistryConfig()
    {
        var previous = _resolved;
        string? problem = null;
        var registryConfig = _view.Config;
        if (registryConfig is null)
        {
            problem = _view.ConfigError is { } error ? $"its config node is unreadable: {error}" : null;
        }
        else if (registryConfig != previous.Config)
        {
            var resolved = ResolvedJobConfig.TryResolve(registryConfig, _context.Strategies, out var problems);
            if (resolved is null)
            {
                problem = $"the registry's config is invalid: {string.Join("; ", problems)}";
            }
            else
            {
                _resolved = resolved;
                if (registryConfig != _settings.Config && previous.Config == _settings.Config)
                {
                    JobLog.ConfigAdopted(_logger, Name);
                }

                if (resolved.Config.Cron != previous.Config.Cron || resolved.Config.TimeZone != previous.Config.TimeZone)
                {
                    JobLog.Rescheduled(_logger, Name, resolved.Config.Cron, resolved.Config.TimeZone ?? "local");
                    _trigger.Reschedule();
                }
            }
        }

        if (problem is not null && problem != _lastConfigProblem)
        {
            JobLog.RegistryConfigRejected(_logger, Name, _nodes.Config, problem, previous.Config.Cron);
        }

        _lastConfigProblem = problem;
    }

    private void OnViewChanged(ViewParts changed)
    {
        if (_stopped == 1)
        {
            return;
        }

        if (changed.HasFlag(ViewParts.Config))
        {
            ApplyRegistryConfig();
        }

        _sharding.OnViewChanged(changed);

        if ((changed & (ViewParts.Instances | ViewParts.Servers)) != 0)
        {
            Track(UpdateElectionAsync());
            var instances = _view.Instances.Keys.ToHashSet(StringComparer.Ordinal);
            var departed = _knownInstances.Except(instances).ToList();
            _knownInstances = instances;
            if (departed.Count > 0 && FailoverActive)
            {
                departed.Where(d => d != _instanceId).ToList().ForEach(d => Track(HandleDepartureAsync(d)));
            }
            else if (departed.Count > 0 && _election.IsLeader && !_resolved.Config.Failover)
            {
                Track(ClearLeftoversAsync(departed));
            }

            if (!_view.Instances.ContainsKey(_instanceId) && _registry.State == RegistryState.Connected)
            {
                Track(RestoreRegistrationAsync());
            }
            else if (_view.Instances.TryGetValue(_instanceId, out var mine) && mine.Disabled != IsDisabledLocally())
            {
                Track(KeepRegistrationAsync(mine));
            }
        }

        if (changed.HasFlag(ViewParts.Trigger) && _view.TriggerRequested)
        {
            Track(HandleTriggerRequestAsync());
        }

        if ((changed & (ViewParts.FailoverFlags | ViewParts.Instances | ViewParts.Servers | ViewParts.Config)) != 0)
        {
            Track(ClaimAndCompensateAsync()); // notification: items wait, or this instance may claim again
        }
    }

    private bool IsDisabledLocally() => Volatile.Read(ref _disabledLocally);

    /// <summary>An operator changed this instance's registration (its <c>disabled</c> line): keep the new data for future sessions.</summary>
    private async Task KeepRegistrationAsync(InstanceRegistration current)
    {
        Volatile.Write(ref _disabledLocally, current.Disabled);
        try
        {
            await _registry.KeepEphemeralAsync(_nodes.Instance(_instanceId), JobNodeData.Encode(current), _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            JobLog.RegistryCallFailed(_logger, Name, "keeping this instance's registration", e.Message);
        }
    }

    /// <summary>Our ephemeral node vanished while our session lives (someone deleted it): put it back rather than stop.</summary>
    private async Task RestoreRegistrationAsync()
    {
        try
        {
            var data = JobNodeData.Encode(new InstanceRegistration(_instanceId, _context.ServerIp, IsDisabledLocally()));
            await _registry.KeepEphemeralAsync(_nodes.Instance(_instanceId), data, _stopping.Token).ConfigureAwait(false);
            JobLog.RegistrationRestored(_logger, Name, _instanceId);
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            // A lost session restores it itself (kept ephemeral); anything else is retried at the next change.
        }
    }

    /// <summary>Contend for leadership only while this instance may run items (ElasticJob: a disabled server abdicates).</summary>
    private async Task UpdateElectionAsync()
    {
        try
        {
            await _electionGate.WaitAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }

        try
        {
            var shouldLead = _stopped == 0 && _view.IsAvailable(_instanceId);
            if (shouldLead && !_participating)
            {
                _participating = true;
                await _election.StartAsync(_stopping.Token).ConfigureAwait(false);
            }
            else if (!shouldLead && _participating)
            {
                _participating = false;
                await _election.ResignAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            // LeaderElection retries on its own at the next watch or session event.
        }
        finally
        {
            _electionGate.Release();
        }
    }

    private async Task HandleTriggerRequestAsync()
    {
        try
        {
            await _registry.DeleteAsync(_nodes.Trigger(_instanceId), cancellationToken: _stopping.Token).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
        {
            return; // handled already
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            return; // the node stays; the next view change retries
        }

        JobLog.ManualTrigger(_logger, Name, _instanceId);
        await TriggerNowAsync().ConfigureAwait(false);
    }

    // ----- reconcile -----

    /// <summary>
    /// The leader's periodic self-check: an item whose owner is not live (or missing) flags re-sharding; running markers and
    /// progress records of instances that are gone are removed (without failover nobody compensates them; they must not look
    /// like running work). Everything repaired is logged.
    /// </summary>
    internal async Task ReconcileAsync()
    {
        if (!_election.IsLeader || _stopped == 1)
        {
            return;
        }

        var token = _stopping.Token;
        try
        {
            var config = _resolved.Config;
            var owners = await _view.ReadOwnersAsync(token).ConfigureAwait(false);
            var live = await _registry.GetChildrenAsync(_nodes.Instances, cancellationToken: token).ConfigureAwait(false) ?? [];
            var orphans = Enumerable.Range(0, config.Shards).Where(i => !owners.TryGetValue(i, out var owner) || !live.Contains(owner)).ToList();
            if (orphans.Count > 0 && await _registry.ExistsAsync(_nodes.ShardingNecessary, cancellationToken: token).ConfigureAwait(false) is null)
            {
                await _sharding.FlagAsync($"reconcile found item(s) {string.Join(",", orphans)} without a live owner", token).ConfigureAwait(false);
                JobLog.Reconciled(_logger, Name, $"item(s) {string.Join(",", orphans)} had no live owner; re-sharding flagged");
            }

            if (FailoverActive)
            {
                await _failover.ReconcileAsync(token).ConfigureAwait(false);
            }
            else if (!config.Failover)
            {
                await ClearLeftoversOfDeadInstancesAsync(live, config, token).ConfigureAwait(false);
                await _failover.DropPendingAsync(token).ConfigureAwait(false);
            }
        }
        catch (RegistryException e) when (e.Code != RegistryErrorCode.NodeExists)
        {
            JobLog.RegistryCallFailed(_logger, Name, "reconciling", e.Message);
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
        }
    }

    /// <summary>The leader, when instances leave (failover off): their running markers and progress records go at once.</summary>
    private async Task ClearLeftoversAsync(IReadOnlyList<string> departed)
    {
        try
        {
            JobLog.InstancesLeft(_logger, Name, string.Join(", ", departed));
            var live = await _registry.GetChildrenAsync(_nodes.Instances, cancellationToken: _stopping.Token).ConfigureAwait(false) ?? [];
            await ClearLeftoversOfDeadInstancesAsync(live, _resolved.Config, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            // Reconcile and the next fire (which takes stale markers over) cover it.
        }
    }

    private async Task ClearLeftoversOfDeadInstancesAsync(IReadOnlyList<string> live, JobConfig config, CancellationToken token)
    {
        var markers = await Task.WhenAll(Enumerable.Range(0, config.Shards).Select(async item =>
            (item, node: await _registry.GetAsync(_nodes.ItemRunning(item), cancellationToken: token).ConfigureAwait(false)))).ConfigureAwait(false);
        foreach (var (item, node) in markers)
        {
            if (node is null)
            {
                continue;
            }

            var path = _nodes.ItemRunning(item);
            var owner = JobNodeData.TryDecodeItemMarker(path, node.Data, out var marker, out _) ? marker!.Instance : null;
            if (owner is null || !live.Contains(owner))
            {
                try
                {
                    await _registry.DeleteAsync(path, node.Stat.Version, token).ConfigureAwait(false);
                    JobLog.Reconciled(_logger, Name, $"removed the running marker of item {item} left by {owner ?? "(unreadable)"}, which is no longer live");
                }
                catch (RegistryException e) when (e.Code is RegistryErrorCode.NoNode or RegistryErrorCode.BadVersion)
                {
                }
            }
        }

        var progress = await _registry.GetChildrenAsync(_nodes.ProgressRoot, cancellationToken: token).ConfigureAwait(false) ?? [];
        foreach (var instance in progress.Where(p => !live.Contains(p)))
        {
            try
            {
                await _registry.DeleteAsync(_nodes.Progress(instance), cancellationToken: token).ConfigureAwait(false);
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
            {
            }
        }
    }

    // ----- shutdown -----

    /// <summary>
    /// Leaves the cluster: no more fires; running items are cancelled and awaited up to the shutdown timeout (then abandoned,
    /// their markers left as evidence); markers of finished items are released; leadership and the registration are given up.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        _view.Changed -= OnViewChanged;
        _registry.SessionChanged -= OnSessionChanged;
        StopFenceTimer();
        if (_reconcileTimer is not null)
        {
            await _reconcileTimer.DisposeAsync().ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _trigger.DisposeAsync().ConfigureAwait(false);
        await _executionsCancelled.CancelAsync().ConfigureAwait(false);

        var executions = _executions.Keys.ToList();
        if (executions.Count > 0)
        {
            try
            {
                await Task.WhenAll(executions).WaitAsync(_context.Options.ShutdownTimeout, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException)
            {
                var abandoned = RunningHere;
                JobLog.ItemsAbandoned(_logger, Name, string.Join(",", abandoned), _context.Options.ShutdownTimeout);
                foreach (var _ in abandoned)
                {
                    _metrics.ItemEnded(Name, ExecutionSource.Schedule, ShardOutcome.Abandoned, _context.Options.ShutdownTimeout);
                }
            }
        }

        await BoundedAsync(_monitor.FlushAsync()).ConfigureAwait(false);
        await BoundedAsync(LeaveAsync()).ConfigureAwait(false);
        await BoundedAsync(Task.WhenAll(_background.Keys.ToList())).ConfigureAwait(false);
        JobLog.JobStopped(_logger, Name, _instanceId);
    }

    /// <summary>Gives up leadership and the registration, so the others re-shard at once instead of after the session timeout.</summary>
    private async Task LeaveAsync()
    {
        if (_participating)
        {
            await _election.ResignAsync(CancellationToken.None).ConfigureAwait(false);
        }

        await _registry.DeleteAsync(_nodes.Instance(_instanceId), cancellationToken: CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Waits a few seconds at most: shutdown must not hang on a registry that does not answer (closing the session
    /// removes the registration anyway).</summary>
    private async Task BoundedAsync(Task task)
    {
        try
        {
            await task.WaitAsync(TimeSpan.FromSeconds(5), _time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or RegistryException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _sharding.Dispose();
        await _election.DisposeAsync().ConfigureAwait(false);
        await _view.DisposeAsync().ConfigureAwait(false);
        await _monitor.DisposeAsync().ConfigureAwait(false);
    }

    private void Track(Task task)
    {
        if (task.IsCompleted)
        {
            return;
        }

        _background[task] = true;
        _ = task.ContinueWith(t =>
        {
            _background.TryRemove(t, out _);
            if (t.Exception is { } e)
            {
                JobLog.UnexpectedError(_logger, Name, "background work", e.GetBaseException());
            }
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }
}
