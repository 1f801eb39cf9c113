using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ShardedJobs.Coordination;
using ShardedJobs.TestSupport.History;
using ShardedJobs.TestSupport.Runtime;

namespace ShardedJobs.TestSupport.Simulation;

/// <summary>How big one seed's run is.</summary>
public sealed record SimulationOptions
{
    public TimeSpan Duration { get; init; } = TimeSpan.FromHours(1);

    public int Instances { get; init; } = 3;

    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>The mean gap between two faults of the schedule.</summary>
    public TimeSpan MeanFaultGap { get; init; } = TimeSpan.FromSeconds(75);

    /// <summary>Wall time after which a seed counts as hung (it takes seconds): it is reported with its plan and last log lines.</summary>
    public TimeSpan HangBound { get; init; } = TimeSpan.FromMinutes(3);
}

/// <summary>One seed's verdict, with everything needed to understand and replay a failure.</summary>
public sealed record SimulationResult(FaultPlan Plan, HistoryReport History, RegistryAuditReport Audit, IReadOnlyDictionary<FaultKind, int> FaultsApplied,
    int Runs, IReadOnlyList<string> Problems, string Diagnostics)
{
    public bool Ok => History.Ok && Audit.Ok && Problems.Count == 0;

    public string Describe() =>
        $"seed {Plan.Seed}: {(Ok ? "ok" : "VIOLATIONS")} — {History.Summary}, {Runs} runs, registry {Audit.NodeCount} nodes\n" +
        (Ok ? "" : History.Describe() + "\n" + string.Join("\n", Audit.Violations.Concat(Problems.Select(p => new Violation("run", p))).Select(v => "  " + v)) +
            "\nplan (replay with this seed):\n" + Plan.Describe() + "\n" + Diagnostics);
}

/// <summary>
/// The fault simulator: N instances (real <c>JobRuntime</c>s, built through the public hosting path by <see cref="TestNode"/>)
/// on one <see cref="InMemoryRegistryServer"/>, all on one <see cref="SimulationClock"/>, driven by the fault schedule of a seed
/// (<see cref="FaultPlan"/>), then judged by the <see cref="HistoryChecker"/> and the <see cref="RegistryAudit"/>.
/// <para>
/// The driver runs on a thread of its own and moves time one timer at a time; after each step (a timer fired, a fault applied)
/// it waits until the cluster is quiescent — every node settled, no registry event undelivered, the thread pool idle — so the
/// work a step starts finishes at that instant of simulated time. What is reproducible: the plan (jobs, skews, every fault and
/// its time) and each item's duration, from the seed alone. What is not: the order in which the thread pool runs work that is
/// ready at the same simulated instant, so a seed replays the same faults at the same times, and usually the same failure.
/// </para>
/// </summary>
public sealed class FaultSimulation
{
    private static readonly DateTimeOffset Start = new(2026, 1, 5, 0, 0, 0, TimeSpan.Zero);

    /// <summary>SIMULATOR_TRACE=1: every log line (Debug and up) of every instance goes into the report of a failing seed.</summary>
    private static readonly bool Trace = Environment.GetEnvironmentVariable("SIMULATOR_TRACE") == "1";

    private readonly FaultPlan _plan;
    private readonly SimulationOptions _options;
    private readonly SimulationClock _clock = new(Start);
    private readonly InMemoryRegistryServer _server;
    private readonly ExecutionLog _log = new();
    private readonly SimulatedWork _work;
    private readonly Slot[] _slots;
    private readonly List<TestNode> _graveyard = [];
    private readonly ConcurrentQueue<Action> _driverQueue = new();
    private readonly Dictionary<FaultKind, int> _applied = [];
    private readonly List<string> _problems = [];
    private readonly RingLog _ringLog;
    private readonly List<(DateTimeOffset At, bool Able)> _ableChanges = [];
    private readonly List<DateTimeOffset> _disturbances = [];
    private readonly List<(string Instance, DateTimeOffset At)> _deaths = [];
    private readonly List<CutOff> _cutOffs = [];
    private readonly List<(DateTimeOffset At, Action Action)> _later = [];
    private DateTimeOffset? _quorumLostUntil;
    private int _nextInstance;
    private string? _driverThreadId;

    private FaultSimulation(FaultPlan plan, SimulationOptions options)
    {
        _plan = plan;
        _options = options;
        _server = new InMemoryRegistryServer(_clock, options.SessionTimeout);
        _work = new SimulatedWork(plan.Seed, plan.Jobs, _clock);
        _ringLog = new RingLog(_clock, Trace ? 1_000_000 : 400);
        _slots = [.. Enumerable.Range(0, options.Instances).Select(i => new Slot(i, $"n{i + 1}", plan.ClockSkews[i]))];
        _nextInstance = options.Instances + 1;
    }

    /// <summary>Runs one seed to its verdict. Never throws for a violation: the result says what broke.</summary>
    public static SimulationResult Run(int seed, SimulationOptions? options = null)
    {
        options ??= new SimulationOptions();
        var plan = FaultPlan.Create(seed, options.Duration, options.Instances, options.SessionTimeout, options.MeanFaultGap);
        var simulation = new FaultSimulation(plan, options);
        SimulationResult? result = null;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = simulation.Drive();
            }
            catch (Exception e)
            {
                failure = e;
            }
        }, maxStackSize: 16 * 1024 * 1024) { IsBackground = true, Name = $"simulation seed {seed}" };
        thread.Start();
        if (!thread.Join(options.HangBound))
        {
            // A seed takes seconds: one still running after this long waits for something that fake time never brings (a
            // stop or a start that does not end). Report it with what it was doing, rather than hang the whole run.
            throw new TimeoutException($"seed {seed}: the simulation hung (no end after {options.HangBound} of wall time) at {simulation._clock.GetUtcNow():HH:mm:ss.fff} simulated, slots "
                + string.Join(", ", simulation._slots.Select(s => $"{s.InstanceId}:{(s.Starting ? "starting" : s.Node is null ? "-" : s.Node.IsSettled ? "ok" : "busy")}"))
                + $"\n{plan.Describe()}\nlast log lines:\n{simulation._ringLog.Describe()}");
        }

        return failure is null ? result! : throw new InvalidOperationException($"seed {seed}: the simulation itself failed\n{plan.Describe()}", failure);
    }

    private SimulationResult Drive()
    {
        _driverThreadId = CurrentThreadId();
        foreach (var slot in _slots)
        {
            StartInstance(slot, newId: false);
        }

        // The cluster starts before time does (on a cold process the JIT can make a start look idle for a moment).
        for (var guard = 0; guard < 3000 && _slots.Any(s => s.Node is null); guard++)
        {
            Settle();
            Thread.Sleep(1);
        }

        var faultEnd = Start + _plan.Duration;
        var faults = new Queue<ScheduledFault>(_plan.Faults);
        while (_clock.GetUtcNow() < faultEnd)
        {
            var nextFault = faults.TryPeek(out var f) ? Start + f.At : faultEnd;
            var nextLater = _later.Count > 0 ? _later.Min(l => l.At) : DateTimeOffset.MaxValue;
            var limit = Min(Min(nextFault, nextLater), faultEnd);
            if (_clock.FireNext(limit))
            {
                Settle();
                continue;
            }

            if (nextLater <= limit)
            {
                RunLater();
            }
            else if (faults.Count > 0 && nextFault <= limit)
            {
                Apply(faults.Dequeue());
            }

            Settle();
        }

        // The faults stop: every connection comes back, every instance runs again; then the cluster settles.
        var healedAt = _clock.GetUtcNow();
        Heal();
        var longest = _plan.Jobs.Max(j => j.MaxDuration + FaultPlan.CronInterval(j.Cron));
        RunFor(_options.SessionTimeout * 2 + longest * 3 + TimeSpan.FromSeconds(30));
        var judgeBefore = _clock.GetUtcNow() - longest * 2;
        // No more scheduled fires; wait until nothing runs (long items end, catch-ups and compensations finish), then audit.
        var stopping = Task.Run(() => Task.WhenAll(_slots.Where(s => s.Node is not null)
            .SelectMany(s => _plan.Jobs.Select(j => s.Node!.Job(j.Name).StopFiringAsync().AsTask()))));
        Settle();
        // An item waiting for a slot (MaxConcurrency) holds its marker before its run starts: wait for the markers too.
        // Bounded by a simulated hour: items of a job with MaxConcurrency 1 queue behind each other, so draining takes a while.
        for (var guard = 0; guard < 3600 && (!stopping.IsCompleted || _log.Runs.Any(r => r.Outcome is null && !IsDeadRun(r)) || AnyItemHeld()); guard++)
        {
            RunFor(TimeSpan.FromSeconds(1));
        }

        RunFor(TimeSpan.FromSeconds(10));
        var timeline = Timeline(healedAt, judgeBefore);
        var runs = HistoryChecker.FromExecutionLog(_log.Runs);
        var report = HistoryChecker.Check(runs, [.. _plan.Jobs.Select(j => j.ToChecked())], timeline, _log.Launches);
        var audit = AuditAsync().GetAwaiter().GetResult();
        var diagnostics = "applied request faults:\n" + string.Join("\n", _slots.SelectMany(s => s.AppliedRequests).Select(a => "  " + a)) +
            "\nlast log lines:\n" + _ringLog.Describe();
        ShutDown();
        return new SimulationResult(_plan, report, audit, _applied, runs.Count, _problems, diagnostics);
    }

    private bool IsDeadRun(ItemRun run) => _deaths.Any(d => d.Instance == run.Instance && d.At >= run.Started);

    // ------------------------------------------------------------ faults

    private void Apply(ScheduledFault fault)
    {
        var slot = _slots[fault.Slot];
        var now = _clock.GetUtcNow();
        var applied = true;
        switch (fault.Kind)
        {
            case FaultKind.Crash when slot.Node is not null:
                Crash(slot);
                After(fault.Duration, () => Restart(slot, fault.NewId));
                break;
            case FaultKind.Stop when slot.Node is not null && !slot.Stopping:
                Stop(slot, then: () => After(fault.Duration, () => Restart(slot, fault.NewId)));
                break;
            case FaultKind.Suspend when slot.Node is { } node && node.Embedded.State == RegistryState.Connected && _quorumLostUntil is null:
                node.Embedded.Suspend();
                SetAble();
                var instance = slot.InstanceId;
                _cutOffs.Add(new CutOff(instance, new Interval(now, now + fault.Duration), Frozen: false));
                After(fault.Duration, () =>
                {
                    if (slot.Node == node && _quorumLostUntil is null)
                    {
                        node.Embedded.Resume();
                        SetAble();
                    }
                });
                break;
            case FaultKind.ExpireSession when slot.Node is not null:
                // A session expires only after the server heard nothing for the session timeout: a cut-off just long enough.
                Apply(fault with { Kind = FaultKind.Suspend, Duration = _options.SessionTimeout + TimeSpan.FromMilliseconds(1) });
                applied = false;
                break;
            case FaultKind.DelayWatches when slot.Node is { } node:
                node.Embedded.WatchDeliveryDelay = fault.Request!.Delay;
                After(fault.Duration, () => node.Embedded.WatchDeliveryDelay = TimeSpan.Zero);
                break;
            case FaultKind.QuorumLoss when _quorumLostUntil is null:
                _quorumLostUntil = now + fault.Duration;
                foreach (var live in _slots.Where(s => s.Node is not null))
                {
                    live.Node!.Embedded.SuspendWithoutExpiry();
                }

                SetAble();
                After(fault.Duration, EndQuorumLoss);
                break;
            case FaultKind.Request when slot.Faulty is { } faulty && slot.Node is not null:
                faulty.Arm(fault.Request!);
                break;
            case FaultKind.LeaderCrashMidSharding when LeaderOf(fault.Job!) is { } leader && leader.Faulty is { } faulty:
                faulty.Arm(fault.Request!);
                leader.RestartAfterCrash = (fault.Duration, fault.NewId);
                break;
            default:
                applied = false;
                break;
        }

        if (applied)
        {
            _applied[fault.Kind] = _applied.GetValueOrDefault(fault.Kind) + 1;
            _disturbances.Add(now);
            _ringLog.Add($"FAULT {fault}");
        }
    }

    private Slot? LeaderOf(string job) => _slots.FirstOrDefault(s => s.Node is { } node && !s.Stopping && Try(() => node.Job(job).IsLeader));

    private static bool Try(Func<bool> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    private void EndQuorumLoss()
    {
        _quorumLostUntil = null;
        foreach (var live in _slots.Where(s => s.Node is not null && _cutOffs.All(c => c.Instance != s.InstanceId || !c.When.Contains(_clock.GetUtcNow()))))
        {
            live.Node!.Embedded.Resume();
        }

        SetAble();
    }

    /// <summary>The process dies: its code falls silent, its connection is cut (its session expires after the timeout).</summary>
    private void Crash(Slot slot, DateTimeOffset? at = null)
    {
        var node = slot.Node!;
        slot.Life!.Die();
        slot.Faulty!.Disarm();
        node.Embedded.Suspend();
        _deaths.Add((slot.InstanceId, at ?? _clock.GetUtcNow()));
        _ringLog.Add($"CRASH {slot.InstanceId}");
        slot.Node = null;
        slot.Faulty = null;
        _graveyard.Add(node);
        // Its in-process remains stop as a dead process's would have (nothing it does reaches the registry any more).
        _ = Task.Run(() => node.Host.AbandonAsync());
        SetAble();
    }

    private void Stop(Slot slot, Action then)
    {
        var node = slot.Node!;
        slot.Stopping = true;
        slot.Faulty!.Disarm();
        _ringLog.Add($"STOP {slot.InstanceId}");
        var stopping = Task.Run(() => node.StopAsync());
        SetAble();
        Watch(stopping, () =>
        {
            // The process exits once its host stopped: anything still running in it (a job ignoring cancellation) dies.
            slot.Life!.Die();
            _deaths.Add((slot.InstanceId, _clock.GetUtcNow()));
            slot.Node = null;
            slot.Faulty = null;
            slot.Stopping = false;
            _graveyard.Add(node);
            if (stopping.Exception is { } e)
            {
                _problems.Add($"{_clock.GetUtcNow():HH:mm:ss.fff} stopping {slot.InstanceId} failed: {e.GetBaseException().Message}");
            }

            SetAble();
            then();
        });
    }

    private void Restart(Slot slot, bool newId)
    {
        if (slot.Node is not null || slot.Starting)
        {
            return;
        }

        if (_quorumLostUntil is { } until)
        {
            After(until - _clock.GetUtcNow() + TimeSpan.FromMilliseconds(100), () => Restart(slot, newId));
            return;
        }

        StartInstance(slot, newId);
    }

    private void StartInstance(Slot slot, bool newId)
    {
        if (newId)
        {
            slot.InstanceId = $"n{_nextInstance}";
            slot.ServerIp = $"10.0.{_nextInstance / 250}.{_nextInstance % 250 + 1}";
            _nextInstance++;
        }

        var life = new ProcessLife();
        FaultyRegistry? faulty = null;
        slot.Starting = true;
        var time = slot.Skew == TimeSpan.Zero ? (TimeProvider)_clock : new SkewedTimeProvider(_clock, slot.Skew);
        var instanceId = slot.InstanceId;
        var starting = Task.Run(() => TestNode.StartAsync(new TestNodeSetup
        {
            InstanceId = instanceId,
            ServerIp = slot.ServerIp,
            Jobs = [.. _plan.Jobs.Select(SimulatedJob.Define)],
            Time = time,
            Log = _log,
            Script = new JobScript(_clock),
            Embedded = _server,
            SessionTimeout = _options.SessionTimeout,
            CaptureLogs = false,
            WrapRegistry = registry =>
            {
                faulty = new FaultyRegistry(registry, _clock);
                faulty.CutConnection = () =>
                {
                    life.Die();
                    ((InMemoryRegistry)registry).Suspend();
                };
                faulty.Crashed += () =>
                {
                    var at = _clock.GetUtcNow(); // the moment it died, not the moment the driver gets to it
                    _driverQueue.Enqueue(() => CrashedByRequest(slot, life, at));
                };
                return faulty;
            },
            Configure = options =>
            {
                foreach (var job in _plan.Jobs)
                {
                    options.Jobs[job.Name] = new JobOptions { MaxConcurrency = job.MaxConcurrency };
                }
            },
            Services = services =>
            {
                services.AddSingleton(life);
                services.AddSingleton(_work);
                services.AddScoped<SimulatedJob>();
                services.AddSingleton<IJobListener>(sp => new LaunchRecorder(_log, life, _work));
                services.AddLogging(logging => logging.SetMinimumLevel(Trace ? LogLevel.Debug : LogLevel.Information).AddProvider(new RingLogProvider(_ringLog, instanceId)));
            },
        }));
        Watch(starting, () =>
        {
            slot.Starting = false;
            if (starting.Exception is { } e)
            {
                // A supervisor (Kubernetes) restarts a process that failed to start; the failure itself is worth reporting.
                _problems.Add($"{_clock.GetUtcNow():HH:mm:ss.fff} {instanceId} failed to start: {e.GetBaseException().GetType().Name}: {e.GetBaseException().Message}");
                After(TimeSpan.FromSeconds(2), () => Restart(slot, newId: false));
                return;
            }

            if (life.Dead)
            {
                // Crashed by a request fault while starting; a supervisor starts it again.
                _graveyard.Add(starting.Result);
                _deaths.Add((instanceId, _clock.GetUtcNow()));
                After(TimeSpan.FromSeconds(5), () => Restart(slot, newId: false));
                return;
            }

            slot.Node = starting.Result;
            slot.Life = life;
            slot.Faulty = faulty;
            if (_quorumLostUntil is not null)
            {
                slot.Node.Embedded.SuspendWithoutExpiry();
            }

            SetAble();
        });
    }

    private void CrashedByRequest(Slot slot, ProcessLife life, DateTimeOffset at)
    {
        if (slot.Life != life || slot.Node is null)
        {
            return;
        }

        Crash(slot, at);
        var (after, newId) = slot.RestartAfterCrash ?? (TimeSpan.FromSeconds(10), false);
        slot.RestartAfterCrash = null;
        After(after, () => Restart(slot, newId));
    }

    private void Heal()
    {
        _later.Clear();
        if (_quorumLostUntil is not null)
        {
            EndQuorumLoss();
        }

        foreach (var slot in _slots)
        {
            if (slot.Node is { } node)
            {
                slot.Faulty?.Disarm();
                node.Embedded.WatchDeliveryDelay = TimeSpan.Zero;
                node.Embedded.Resume();
            }
        }

        Settle();
        for (var guard = 0; guard < 120 && _slots.Any(s => s.Node is null || s.Stopping); guard++)
        {
            foreach (var slot in _slots.Where(s => s.Node is null && !s.Stopping))
            {
                Restart(slot, newId: false);
            }

            RunFor(TimeSpan.FromSeconds(1));
        }

        SetAble();
    }

    // ------------------------------------------------------------ time

    private void After(TimeSpan delay, Action action) => _later.Add((_clock.GetUtcNow() + (delay < TimeSpan.Zero ? TimeSpan.Zero : delay), action));

    private void RunLater()
    {
        var now = _clock.GetUtcNow();
        var due = _later.Where(l => l.At <= now).OrderBy(l => l.At).ToList();
        _later.RemoveAll(l => l.At <= now);
        foreach (var (_, action) in due)
        {
            action();
            Settle();
        }
    }

    private void RunFor(TimeSpan duration)
    {
        var until = _clock.GetUtcNow() + duration;
        while (true)
        {
            var nextLater = _later.Count > 0 ? _later.Min(l => l.At) : DateTimeOffset.MaxValue;
            if (_clock.FireNext(Min(until, nextLater)))
            {
                Settle();
                continue;
            }

            if (nextLater <= until)
            {
                RunLater();
                Settle();
                continue;
            }

            break;
        }
    }

    /// <summary>Runs <paramref name="then"/> on the driver once <paramref name="task"/> has ended.</summary>
    private void Watch(Task task, Action then) => task.ContinueWith(_ => _driverQueue.Enqueue(then), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>
    /// Waits until the work the last step started has run: every node settled, the thread pool idle twice in a row, and the
    /// driver's own follow-ups (a node that finished starting or stopping) handled. Bounded: work that only time can move on
    /// waits for the next step.
    /// </summary>
    /// <summary>Steps taken (a timer fired or a fault applied, then the cluster settled), over every run in this process.</summary>
    public static long Steps;

    /// <summary>Steps after which the cluster had not settled within the bound (time moved on with work still running).</summary>
    public static long Unsettled;

    /// <summary>Times a quiet pool with a busy thread made the driver look at the process's threads.</summary>
    public static long ThreadChecks;

    private void Settle()
    {
        Interlocked.Increment(ref Steps);
        SettleCore();
    }



    private void SettleCore()
    {
        var quiet = 0;
        var stableSince = System.Diagnostics.Stopwatch.GetTimestamp();
        var lastCompleted = -1L;
        var spins = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        while (quiet < 3)
        {
            while (_driverQueue.TryDequeue(out var action))
            {
                action();
                quiet = 0;
            }

            var completed = ThreadPool.CompletedWorkItemCount;
            if (completed != lastCompleted || ThreadPool.PendingWorkItemCount != 0)
            {
                stableSince = System.Diagnostics.Stopwatch.GetTimestamp();
            }

            // Idle: nothing queued, nothing completed lately, and no pool thread in a work item (a thread that just finished one
            // may still count as busy for a moment while it looks for more work: a longer quiet stands in for it then; it must be
            // longer than a busy thread's longest step without a completed work item, the JIT compiling a method, say).
            var quietFor = System.Diagnostics.Stopwatch.GetElapsedTime(stableSince);
            var idle = completed == lastCompleted && ThreadPool.PendingWorkItemCount == 0 && _driverQueue.IsEmpty
                && (BusyPoolThreads() == 0 || (quietFor > TimeSpan.FromMilliseconds(3) && !OtherThreadRunnable()));
            quiet = idle ? quiet + 1 : 0;
            lastCompleted = completed;
            if (++spins < 4000)
            {
                // Give the core to the pool threads doing the step's work (this machine may have only two).
                Thread.Yield();
            }
            else if (DateTime.UtcNow > deadline)
            {
                Interlocked.Increment(ref Unsettled);
                if (Environment.GetEnvironmentVariable("SIMULATOR_DEBUG") == "1")
                {
                    Console.Error.WriteLine($"unsettled at {_clock.GetUtcNow():HH:mm:ss.fff}: pending {ThreadPool.PendingWorkItemCount}, busy {BusyPoolThreads()}, threads {ThreadPool.ThreadCount}, completed {ThreadPool.CompletedWorkItemCount - lastCompleted}, slots {string.Join(",", _slots.Select(s => $"{s.InstanceId}:{(s.Starting ? "starting" : s.Node is null ? "-" : s.Node.IsSettled ? "ok" : "busy")}"))}");
                }

                return;
            }
            else
            {
                Thread.Sleep(spins < 5000 ? 0 : 1);
            }
        }
    }

    /// <summary>
    /// Whether a thread of this process other than the driver is running or waiting for a core (Linux: state R in
    /// /proc/self/task). A pool thread in a work item that completes nothing for a while is either blocked (asleep: the step is
    /// done as far as time allows) or still computing — compiling a method, or preempted by another process on a loaded machine
    /// (runnable: the step is not done). Without /proc the quiet alone decides.
    /// </summary>
    private bool OtherThreadRunnable()
    {
        Interlocked.Increment(ref ThreadChecks);
        try
        {
            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                if (Path.GetFileName(task) == _driverThreadId)
                {
                    continue;
                }

                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var state = stat.LastIndexOf(')') is var close and > 0 && close + 2 < stat.Length ? stat[close + 2] : '?';
                if (state == 'R')
                {
                    return true;
                }
            }

            return false;
        }
        catch (IOException)
        {
            return false; // a thread that ended while being read, or no /proc
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The driver thread's id as /proc names it (null where there is no /proc).</summary>
    private static string? CurrentThreadId()
    {
        try
        {
            return new DirectoryInfo("/proc/thread-self").LinkTarget is { } target ? Path.GetFileName(target) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Pool threads running a work item now (the driver is not one of them): the thread pool counts them as in use.</summary>
    private static int BusyPoolThreads()
    {
        ThreadPool.GetMaxThreads(out var max, out _);
        ThreadPool.GetAvailableThreads(out var available, out _);
        return max - available;
    }

    // ------------------------------------------------------------ the verdict

    private void SetAble()
    {
        var able = _quorumLostUntil is null && _slots.Any(s => s.Node is { } node && !s.Stopping && node.Embedded.State == RegistryState.Connected);
        if (_ableChanges.Count == 0 || _ableChanges[^1].Able != able)
        {
            _ableChanges.Add((_clock.GetUtcNow(), able));
        }
    }

    private ClusterTimeline Timeline(DateTimeOffset healedAt, DateTimeOffset judgeBefore)
    {
        var end = _clock.GetUtcNow();
        var able = new List<Interval>();
        for (var i = 0; i < _ableChanges.Count; i++)
        {
            if (_ableChanges[i].Able)
            {
                able.Add(new Interval(_ableChanges[i].At, i + 1 < _ableChanges.Count ? _ableChanges[i + 1].At : end));
            }
        }

        // A job without failover loses a crashed instance's items by design: only fires far from every fault are owed.
        var longest = _plan.Jobs.Max(j => j.MaxDuration + FaultPlan.CronInterval(j.Cron));
        var undisturbed = new List<Interval>();
        var from = Start;
        foreach (var at in _disturbances.Order())
        {
            var to = at - longest;
            if (to > from)
            {
                undisturbed.Add(new Interval(from, to));
            }

            var next = at + longest * 2 + _options.SessionTimeout * 2 + TimeSpan.FromSeconds(40);
            from = next > from ? next : from;
        }

        if (end > from)
        {
            undisturbed.Add(new Interval(from, end));
        }

        _ = healedAt;
        return new ClusterTimeline
        {
            SessionTimeout = _options.SessionTimeout,
            Able = able,
            Undisturbed = undisturbed,
            Deaths = _deaths,
            CutOffs = _cutOffs,
            ClockSkew = _plan.ClockSkews.Max(s => s.Duration()),
            JudgeFiresFrom = Start + TimeSpan.FromSeconds(1),
            JudgeFiresBefore = judgeBefore,
        };
    }

    /// <summary>Whether a running marker of a live instance is in the registry (an item running or waiting for a slot), or an
    /// item flagged for failover waits for its compensation.</summary>
    private bool AnyItemHeld() => Task.Run(async () =>
    {
        await using var observer = _server.Connect();
        var live = _slots.Where(s => s.Node is not null).Select(s => s.InstanceId).ToHashSet(StringComparer.Ordinal);
        foreach (var job in _plan.Jobs)
        {
            var nodes = new JobNodes(job.Name);
            if (job.Failover && await observer.GetChildrenAsync(nodes.FailoverItems).ConfigureAwait(false) is { Count: > 0 })
            {
                return true; // flagged items not compensated yet (a busy cluster claims late)
            }

            for (var item = 0; item < job.Shards; item++)
            {
                if (await observer.GetAsync(nodes.ItemRunning(item)).ConfigureAwait(false) is { } marker
                    && JobNodeData.TryDecodeItemMarker(nodes.ItemRunning(item), marker.Data, out var decoded, out _) && live.Contains(decoded!.Instance))
                {
                    return true;
                }
            }
        }

        return false;
    }).GetAwaiter().GetResult();

    private async Task<RegistryAuditReport> AuditAsync()
    {
        await using var observer = _server.Connect();
        var live = _slots.Where(s => s.Node is not null).Select(s => s.InstanceId).ToHashSet(StringComparer.Ordinal);
        var servers = _slots.Where(s => s.Node is not null).Select(s => s.ServerIp).ToHashSet(StringComparer.Ordinal);
        return await RegistryAudit.CheckAsync(observer, [.. _plan.Jobs.Select(j => j.ToChecked())], live, servers).ConfigureAwait(false);
    }

    private void ShutDown()
    {
        var nodes = _slots.Where(s => s.Node is not null).Select(s => s.Node!).Concat(_graveyard).ToList();
        var disposing = Task.Run(async () =>
        {
            foreach (var node in nodes)
            {
                try
                {
                    await node.DisposeAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is TimeoutException or RegistryException or ObjectDisposedException or InvalidOperationException)
                {
                }
            }
        });
        // Disposal waits on fake time (shutdown timeouts of jobs that ignore cancellation): keep the clock moving until it ends.
        for (var guard = 0; guard < 10_000 && !disposing.IsCompleted; guard++)
        {
            if (!_clock.FireNext(_clock.GetUtcNow() + TimeSpan.FromSeconds(1)))
            {
                Settle();
            }
        }
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private sealed class Slot(int index, string instanceId, TimeSpan skew)
    {
        public int Index { get; } = index;

        public string InstanceId { get; set; } = instanceId;

        public string ServerIp { get; set; } = $"10.0.0.{index + 1}";

        public TimeSpan Skew { get; } = skew;

        public TestNode? Node { get; set; }

        public ProcessLife? Life { get; set; }

        public FaultyRegistry? Faulty { get; set; }

        public bool Starting { get; set; }

        public bool Stopping { get; set; }

        public (TimeSpan After, bool NewId)? RestartAfterCrash { get; set; }

        public IEnumerable<string> AppliedRequests => Faulty?.Applied.Select(a => $"{InstanceId}: {a}") ?? [];
    }
}

/// <summary>The last lines the instances logged (Information and up), stamped with simulated time, for a failing seed's report.</summary>
internal sealed class RingLog(TimeProvider time, int capacity)
{
    private readonly Queue<string> _lines = new();

    public void Add(string line)
    {
        lock (_lines)
        {
            _lines.Enqueue($"{time.GetUtcNow():HH:mm:ss.fff} {line}");
            while (_lines.Count > capacity)
            {
                _lines.Dequeue();
            }
        }
    }

    public string Describe()
    {
        lock (_lines)
        {
            return string.Join("\n", _lines.Select(l => "  " + l));
        }
    }
}

internal sealed class RingLogProvider(RingLog log, string instance) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new RingLogger(log, instance);

    public void Dispose()
    {
    }

    private sealed class RingLogger(RingLog log, string instance) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                log.Add(string.Create(CultureInfo.InvariantCulture, $"{instance} {logLevel.ToString()[..4].ToUpperInvariant()} {formatter(state, exception)}"));
            }
        }
    }
}
