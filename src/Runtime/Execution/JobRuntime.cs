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
internal sealed partial class JobRuntime : IAsyncDisposable
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
    private readonly ConcurrentDictionary<int, string> _compensationRuns = new(); // item -> task id of its running compensation
    private readonly Lock _fenceLock = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _executionsCancelled = new();
    private readonly ConcurrentDictionary<int, RunningItem> _runningHere = new();
    private readonly ConcurrentDictionary<Task, bool> _executions = new();
    private readonly ConcurrentDictionary<Task, bool> _background = new();
    private readonly Dictionary<int, DateTimeOffset> _catchUps = [];
    // item -> the latest fires of it that ran to their end here (RecordCompletion), and apart from them those that ended after
    // their session had (its departure flagged them); both guarded by _completedHere
    private readonly Dictionary<int, List<DateTimeOffset>> _completedHere = [];
    private readonly Dictionary<int, List<DateTimeOffset>> _completedLate = [];
    // (item, fire) that completed here after the session they started in had ended: their flags are withdrawn
    private readonly ConcurrentDictionary<(int Item, DateTimeOffset FireTime), bool> _lateCompletions = new();
    // (item, what it waits for) with a watch armed to run the catch-ups when that node goes: one each (CatchUpWhenGone)
    private readonly ConcurrentDictionary<(int Item, CatchUpWait Wait), byte> _catchUpWatches = new();
    private DateTimeOffset _firesAfter; // this incarnation runs the fires strictly after it (its trigger starts from it; a new session after a handled departure moves it on)
    private long _registrationSession;   // the session this instance's registration was last written in
    private long _reregisteredAtTicks = long.MinValue; // when a new session's registration came back after a handled departure
    private volatile ResolvedJobConfig _resolved;
    private ITimer? _reconcileTimer;
    private ITimer? _fenceTimer;
    private CancellationTokenSource _fence = new();
    private readonly Dictionary<int, string> _fenced = []; // item -> task id of a run self-fencing cut short, until handed over
    private bool _fenceTripped;
    private bool _participating;
    private volatile bool _registered;
    private volatile bool _departureHandedOver; // the last session's departure was handled by the others (progress record gone)
    private int _lastStartGeneration = -1;      // the sharding generation of this instance's last started fire
    private volatile ScheduledFire? _lastScheduledFire; // this instance's last fire on schedule, with the assignment it ran on
    private int _busyClaimScheduled;            // 1 while a busy instance's delayed claim is scheduled
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
        _election.LeaderChanged += OnLeaderChanged;
        await _view.StartAsync(cancellationToken).ConfigureAwait(false);
        ApplyRegistryConfig();

        await WaitForPredecessorAsync(cancellationToken).ConfigureAwait(false);
        if (FailoverActive)
        {
            // An earlier process with this instance id that died without handing over left its evidence under this id.
            await _failover.FlagDepartedAsync(_instanceId, "left without handing over (an earlier run of this instance id)", cancellationToken).ConfigureAwait(false);
        }

        await _registry.EnsurePathAsync(_nodes.ProgressRoot, cancellationToken).ConfigureAwait(false);
        await _registry.EnsurePathAsync(_nodes.Instances, cancellationToken).ConfigureAwait(false);
        // The trigger starts from the instant the registration names (not from a later "now"), so that the leader, reading it,
        // knows exactly which fires this incarnation runs: a fire between this instant and the trigger's start runs at once.
        _firesAfter = _time.GetUtcNow();
        await RegisterWithProgressAsync(cancellationToken).ConfigureAwait(false);
        _registered = true;
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

        _trigger.Start(_firesAfter);
        if (_view.TriggerRequested)
        {
            Track(HandleTriggerRequestAsync());
        }

        JobLog.JobStarted(_logger, Name, _instanceId, config.Cron, config.Shards, _trigger.NextFireTime);
    }

    /// <summary>Test hook (the fault simulator's last phase): no more scheduled fires; catch-ups, compensations and everything
    /// else go on, so the cluster can come to rest and its registry be audited.</summary>
    internal ValueTask StopFiringAsync() => _trigger.DisposeAsync();

    /// <summary>
    /// A process restarted with the same instance id (a Kubernetes StatefulSet's pod) within the session timeout finds its
    /// predecessor's registration still held by the old session, which nobody renews any more: wait for that session to expire
    /// (the server removes the node), so that the predecessor's departure is handled — its unfinished items flagged — before
    /// this incarnation registers. Registering over it would hide the departure from the others. A registration that outlives
    /// twice the session timeout belongs to a live process: two processes share this id, which is a configuration error.
    /// </summary>
    private async Task WaitForPredecessorAsync(CancellationToken cancellationToken)
    {
        var path = _nodes.Instance(_instanceId);
        var patience = _registry.SessionTimeout * 2 + TimeSpan.FromSeconds(5);
        var deadline = _time.GetUtcNow() + patience;
        var logged = false;
        while (true)
        {
            var gone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var stat = await _registry.ExistsAsync(path, _ => gone.TrySetResult(), cancellationToken).ConfigureAwait(false);
            if (stat is null || stat.EphemeralOwner == _registry.SessionId)
            {
                return;
            }

            var left = deadline - _time.GetUtcNow();
            if (left <= TimeSpan.Zero)
            {
                throw new InvalidOperationException(
                    $"Job '{Name}': instance id '{_instanceId}' is registered by another live session ('{path}' outlived {patience.TotalSeconds:0.#} s, " +
                    "twice the session timeout and more): another process uses the same instance id. Give each process its own ShardedJobs:InstanceId.");
            }

            if (!logged)
            {
                JobLog.WaitingForPredecessor(_logger, Name, _instanceId, patience);
                logged = true;
            }

            try
            {
                await gone.Task.WaitAsync(left, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }
    }

    private void OnLeaderChanged(string? leader)
    {
        if (leader == _instanceId && _stopped == 0)
        {
            Track(ClearLeftoversAsync());
        }
    }

    /// <summary>Failover can work: on, with the running markers it needs.</summary>
    private bool FailoverActive => _resolved.Config is { Failover: true, MonitorExecution: true };

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
        _election.LeaderChanged -= OnLeaderChanged;
        _registry.SessionChanged -= OnSessionChanged;
        StopFenceTimer();
        if (_reconcileTimer is not null)
        {
            await _reconcileTimer.DisposeAsync().ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _trigger.DisposeAsync().ConfigureAwait(false);
        if (_registry.State != RegistryState.Connected)
        {
            // No registry to release markers into (a crash test cuts it first; a real one is unreachable): they stay as
            // evidence for failover or the leader, and ending items must not wait for a release that cannot happen.
            _monitor.Abandon();
        }

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

        // Only our own registration: a start that failed while a predecessor's session still held the node must not remove
        // it (the others would handle the predecessor's departure early, before its session ended, and wrongly).
        if (_registered && await _registry.ExistsAsync(_nodes.Instance(_instanceId), cancellationToken: CancellationToken.None).ConfigureAwait(false) is { } stat
            && stat.EphemeralOwner == _registry.SessionId)
        {
            await _registry.DeleteAsync(_nodes.Instance(_instanceId), stat.Version, CancellationToken.None).ConfigureAwait(false);
        }
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
