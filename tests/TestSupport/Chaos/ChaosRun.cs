using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using ShardedJobs.Coordination;
using ShardedJobs.TestSupport.History;
using ShardedJobs.TestSupport.Runtime;

namespace ShardedJobs.TestSupport.Chaos;

/// <summary>
/// A real-process chaos run: a 3-server ZooKeeper ensemble on loopback and three quickstart sample processes (P1, P2, P3, fixed
/// ids as a StatefulSet gives them, so a restart reuses the id), each connected through its own proxies (one per server) so it
/// can be partitioned, all appending to one execution log. A schedule drawn from <c>new Random(seed)</c> injects SIGKILL and
/// SIGTERM with restarts, SIGSTOP/SIGCONT shorter and longer than the session timeout, partitions, a ZooKeeper server killed,
/// the leader paused and the quorum lost; every fault is printed with its time as it is injected. Then the cluster settles and
/// the merged log goes through <see cref="HistoryChecker"/>, with a <see cref="ClusterTimeline"/> built from what was injected,
/// and the registry through <see cref="RegistryAudit"/>.
/// </summary>
public sealed class ChaosRun : IAsyncDisposable
{
    private static readonly string[] s_appIds = ["P1", "P2", "P3"];

    private readonly ChaosOptions _options;
    private readonly Random _random;
    private readonly string _directory;
    private readonly string _log;
    private readonly string _namespace;
    private readonly ChaosTimelineRecorder _recorder = new(s_appIds);
    private readonly ConcurrentQueue<Exception> _faultErrors = new();
    private readonly ConcurrentQueue<string> _unexpectedExits = new();
    private readonly Dictionary<FaultKind, int> _counts = [];
    private readonly Lock _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly StreamWriter _faultFile;
    private readonly StreamWriter _consoleFile;
    private ZooKeeperEnsemble? _ensemble;
    private App[] _apps = [];
    private bool _zooKeeperBusy;

    private ChaosRun(ChaosOptions options)
    {
        _options = options;
        _random = new Random(options.Seed);
        _directory = options.Directory ?? System.IO.Directory.CreateTempSubdirectory($"shardedjobs-chaos-{options.Seed}-").FullName;
        System.IO.Directory.CreateDirectory(_directory);
        _log = Path.Combine(_directory, "execution.tsv");
        _namespace = string.Create(CultureInfo.InvariantCulture, $"chaos-{options.Seed}-{Guid.NewGuid().ToString("N")[..6]}");
        _faultFile = new StreamWriter(Path.Combine(_directory, "faults.txt"), append: false) { AutoFlush = true };
        _consoleFile = new StreamWriter(Path.Combine(_directory, "console.txt"), append: false) { AutoFlush = true };
    }

    /// <summary>Runs the whole chaos run and returns its verdict; every process it started is gone when it returns.</summary>
    public static async Task<ChaosResult> RunAsync(ChaosOptions options, CancellationToken cancellationToken = default)
    {
        await using var run = new ChaosRun(options);
        return await run.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<ChaosResult> RunAsync(CancellationToken cancellationToken)
    {
        var o = _options;
        Say(string.Create(CultureInfo.InvariantCulture,
            $"chaos: seed {o.Seed}, {o.Faults} faults, one every {o.MinGap.TotalSeconds:0.#}–{o.MaxGap.TotalSeconds:0.#} s; ZooKeeper 3 servers, tick {o.TickTimeMs} ms; " +
            $"session timeout {o.SessionTimeout.TotalSeconds:0.#} s; {o.JobName} '{o.Cron}', {o.Shards} items, work {o.WorkSeconds} s, by item {o.WorkByItem}; files in {_directory}"));
        _ensemble = await ZooKeeperEnsemble.StartAsync(3, new ZooKeeperServerOptions { TickTimeMs = o.TickTimeMs }, cancellationToken).ConfigureAwait(false);
        _apps = [.. s_appIds.Select(id => new App(id, [.. _ensemble.Members.Select(m => new TcpProxy(m.ClientPort))], Path.Combine(_directory, id + ".out")))];
        var started = DateTimeOffset.UtcNow;
        foreach (var app in _apps)
        {
            await StartAppAsync(app).ConfigureAwait(false);
        }

        using var monitorStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var monitor = Task.Run(() => MonitorAsync(monitorStop.Token), CancellationToken.None);
        try
        {
            var stable = await WaitForStableFireAsync(TimeSpan.FromSeconds(90), cancellationToken).ConfigureAwait(false);
            Say($"first stable fire {Time(stable)} (every item ok, on all three apps); injecting");
            var judgeFrom = stable + o.FireInterval;

            var faults = new List<Task>();
            for (var number = 1; number <= o.Faults; number++)
            {
                var gap = o.MinGap + (o.MaxGap - o.MinGap) * _random.NextDouble();
                await Task.Delay(gap, cancellationToken).ConfigureAwait(false);
                faults.Add(await InjectAsync(number, cancellationToken).ConfigureAwait(false));
            }

            // Every fault heals itself (restart, SIGCONT, heal, server back): wait for the last ones.
            await Task.WhenAll(faults).ConfigureAwait(false);
            if (!_faultErrors.IsEmpty)
            {
                throw new AggregateException("faults could not be injected or healed", _faultErrors);
            }

            var injectionEnded = DateTimeOffset.UtcNow;
            Say("injection ended; settling (every app live, two fire intervals plus the session timeout, then until nothing runs)");
            await _ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            await WaitUntilAsync(() => _apps.All(a => a.Process is { HasExited: false } && !a.Down), TimeSpan.FromSeconds(60), "every app is live", cancellationToken).ConfigureAwait(false);
            await Task.Delay(2 * o.FireInterval + o.SessionTimeout, cancellationToken).ConfigureAwait(false);
            var audit = await AuditWhenQuietAsync(cancellationToken).ConfigureAwait(false);
            await monitorStop.CancelAsync().ConfigureAwait(false);
            await monitor.ConfigureAwait(false);

            var runs = HistoryChecker.FromLogLines(ExecutionLogFileReader.Read(_log, o.JobName));
            var timeline = _recorder.Build(o.SessionTimeout, started, DateTimeOffset.UtcNow, judgeFrom, injectionEnded + o.FireInterval);
            var history = HistoryChecker.Check(runs, [o.Job], timeline);
            var result = new ChaosResult(o.Seed, o.Faults, new Dictionary<FaultKind, int>(_counts), history, audit, [.. _unexpectedExits], _clock.Elapsed, _directory,
                _apps.ToDictionary(a => a.Id, a => a.OutputPath, StringComparer.Ordinal));
            Report(result, timeline, runs.Count);
            return result;
        }
        finally
        {
            await monitorStop.CancelAsync().ConfigureAwait(false);
            try
            {
                await monitor.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException)
            {
                // stopping
            }

            CopyZooKeeperLogs();
        }
    }

    /// <summary>Draws the next fault, waits (bounded) until its target is free, and starts it; returns the running fault.</summary>
    private async Task<Task> InjectAsync(int number, CancellationToken cancellationToken)
    {
        var s = _options.SessionTimeout.TotalSeconds;
        // Weights: app faults most of the time, ZooKeeper faults a third of it, a quorum loss now and then.
        var kind = _random.Next(100) switch
        {
            < 10 => FaultKind.KillRestartAtOnce,
            < 20 => FaultKind.KillRestartLater,
            < 30 => FaultKind.TerminateRestart,
            < 40 => FaultKind.FreezeShort,
            < 47 => FaultKind.FreezeLong,
            < 57 => FaultKind.PartitionShort,
            < 65 => FaultKind.PartitionLong,
            < 78 => FaultKind.ZooKeeperServerKill,
            < 90 => FaultKind.ZooKeeperLeaderPause,
            _ => FaultKind.QuorumLoss,
        };
        var target = _random.Next(3);
        var length = kind switch
        {
            FaultKind.KillRestartAtOnce => TimeSpan.FromSeconds(0.3 * _random.NextDouble()),
            FaultKind.KillRestartLater => TimeSpan.FromSeconds(s + 0.5 + 2 * _random.NextDouble()),
            FaultKind.TerminateRestart => TimeSpan.FromSeconds(0.2 + 1.8 * _random.NextDouble()),
            FaultKind.FreezeShort or FaultKind.PartitionShort => TimeSpan.FromSeconds(0.3 + (0.8 * s - 0.3) * _random.NextDouble()),
            FaultKind.FreezeLong or FaultKind.PartitionLong => TimeSpan.FromSeconds(s + 0.5 + 2.5 * _random.NextDouble()),
            FaultKind.ZooKeeperServerKill or FaultKind.ZooKeeperLeaderPause => TimeSpan.FromSeconds(1 + 3 * _random.NextDouble()),
            _ => TimeSpan.FromSeconds(2 + 2 * _random.NextDouble()),
        };
        var zooKeeper = kind is FaultKind.ZooKeeperServerKill or FaultKind.ZooKeeperLeaderPause or FaultKind.QuorumLoss;

        // One fault per app at a time, at most two apps touched at once (one always runs), one ZooKeeper fault at a time.
        var waited = Stopwatch.StartNew();
        while (true)
        {
            lock (_gate)
            {
                var free = zooKeeper ? !_zooKeeperBusy : !_apps[target].Busy && _apps.Count(a => a.Busy) < 2;
                if (free)
                {
                    if (zooKeeper)
                    {
                        _zooKeeperBusy = true;
                    }
                    else
                    {
                        _apps[target].Busy = true;
                    }

                    _counts[kind] = _counts.GetValueOrDefault(kind) + 1;
                    break;
                }
            }

            if (waited.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"fault #{number} ({kind}) found its target busy for 60 s");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        var app = _apps[target];
        return Task.Run(async () =>
        {
            try
            {
                switch (kind)
                {
                    case FaultKind.KillRestartAtOnce or FaultKind.KillRestartLater:
                        await KillAndRestartAsync(number, app, length, graceful: false).ConfigureAwait(false);
                        break;
                    case FaultKind.TerminateRestart:
                        await KillAndRestartAsync(number, app, length, graceful: true).ConfigureAwait(false);
                        break;
                    case FaultKind.FreezeShort or FaultKind.FreezeLong:
                        await FreezeAsync(number, app, length).ConfigureAwait(false);
                        break;
                    case FaultKind.PartitionShort or FaultKind.PartitionLong:
                        await PartitionAsync(number, app, length).ConfigureAwait(false);
                        break;
                    case FaultKind.ZooKeeperServerKill:
                        await KillServerAsync(number, target, length, cancellationToken).ConfigureAwait(false);
                        break;
                    case FaultKind.ZooKeeperLeaderPause:
                        await PauseLeaderAsync(number, length, cancellationToken).ConfigureAwait(false);
                        break;
                    default:
                        await LoseQuorumAsync(number, target, length, cancellationToken).ConfigureAwait(false);
                        break;
                }
            }
            catch (Exception e)
            {
                _faultErrors.Enqueue(new InvalidOperationException($"fault #{number} ({kind}) failed: {e.Message}", e));
                Say($"#{number} {kind} FAILED: {e}");
            }
            finally
            {
                lock (_gate)
                {
                    if (zooKeeper)
                    {
                        _zooKeeperBusy = false;
                    }
                    else
                    {
                        app.Busy = false;
                    }
                }
            }
        }, CancellationToken.None);
    }

    private async Task KillAndRestartAsync(int number, App app, TimeSpan downFor, bool graceful)
    {
        var process = await TakeDownAsync(app).ConfigureAwait(false);
        var at = DateTimeOffset.UtcNow;
        if (graceful)
        {
            Fault(number, $"sigterm {app.Id} (pid {process.ProcessId}), restart {Seconds(downFor)} after it exits");
            process.Terminate();
            try
            {
                await process.WaitForExitAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // A graceful stop that hangs is a finding, not a reason to stop the run: kill it, and say so.
                process.Kill();
                _recorder.Death(app.Id, DateTimeOffset.UtcNow);
                _unexpectedExits.Enqueue($"{app.Id} did not exit within 15 s of SIGTERM at {Time(at)}; killed");
                Say($"#{number} {app.Id} did not exit within 15 s of SIGTERM; SIGKILLed");
                await process.WaitForExitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }

            Say($"#{number} {app.Id} exited with code {process.ExitCode}");
        }
        else
        {
            Fault(number, $"sigkill {app.Id} (pid {process.ProcessId}), restart after {Seconds(downFor)}{(downFor < _options.SessionTimeout ? " (within the session timeout)" : "")}");
            process.Kill();
            _recorder.Death(app.Id, at);
            await process.WaitForExitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }

        await process.DisposeAsync().ConfigureAwait(false);
        await Task.Delay(downFor).ConfigureAwait(false);
        await StartAppAsync(app).ConfigureAwait(false);
        _recorder.AppUnable(app.Id, at, DateTimeOffset.UtcNow);
        lock (_gate)
        {
            app.Down = false;
        }

        Say($"#{number} {app.Id} restarted (pid {app.Process!.ProcessId})");
    }

    /// <summary>
    /// Marks the app as meant to be down (so the monitor does not take this exit for one of its own) and returns its running
    /// process; when it exited on its own, waits (bounded) until the monitor has restarted it, so a fault never signals or
    /// disposes a process the monitor is replacing.
    /// </summary>
    private async Task<SampleProcess> TakeDownAsync(App app)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            lock (_gate)
            {
                if (!app.Down && app.Process is { HasExited: false } process)
                {
                    app.Down = true;
                    return process;
                }
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"{app.Id} was not running for 60 s");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }
    }

    /// <summary>The app's current process, read under the lock the monitor replaces it under.</summary>
    private SampleProcess CurrentProcess(App app)
    {
        lock (_gate)
        {
            return app.Process!;
        }
    }

    private async Task FreezeAsync(int number, App app, TimeSpan length)
    {
        var process = CurrentProcess(app);
        Fault(number, $"sigstop {app.Id} (pid {process.ProcessId}) for {Seconds(length)}{(length > _options.SessionTimeout ? " (longer than the session timeout)" : "")}");
        var at = DateTimeOffset.UtcNow;
        process.Pause();
        await Task.Delay(length).ConfigureAwait(false);
        process.Resume();
        var end = DateTimeOffset.UtcNow;
        _recorder.CutOff(app.Id, at, end, frozen: true);
        _recorder.AppUnable(app.Id, at, end);
        Say($"#{number} sigcont {app.Id} after {Seconds(end - at)}");
    }

    private async Task PartitionAsync(int number, App app, TimeSpan length)
    {
        Fault(number, $"partition {app.Id} for {Seconds(length)}{(length > _options.SessionTimeout ? " (longer than the session timeout)" : "")}");
        var at = DateTimeOffset.UtcNow;
        foreach (var proxy in app.Proxies)
        {
            proxy.Partition();
        }

        await Task.Delay(length).ConfigureAwait(false);
        foreach (var proxy in app.Proxies)
        {
            proxy.Heal();
        }

        var end = DateTimeOffset.UtcNow;
        _recorder.CutOff(app.Id, at, end, frozen: false);
        _recorder.AppUnable(app.Id, at, end);
        Say($"#{number} heal {app.Id} after {Seconds(end - at)}");
    }

    private async Task KillServerAsync(int number, int index, TimeSpan downFor, CancellationToken cancellationToken)
    {
        var ensemble = _ensemble!;
        var member = ensemble.Members[index];
        var leader = await ensemble.FindLeaderAsync(cancellationToken).ConfigureAwait(false);
        var wasLeader = leader == member;
        Fault(number, $"sigkill ZooKeeper server {member.MemberId}{(wasLeader ? " (the leader)" : " (a follower)")}, restart after {Seconds(downFor)}");
        var at = DateTimeOffset.UtcNow;
        await Task.Run(member.Kill, cancellationToken).ConfigureAwait(false);
        if (wasLeader)
        {
            // Until the two others elect a leader nothing can be written: the registry is down.
            await ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            _recorder.RegistryDown(at, DateTimeOffset.UtcNow);
            Say($"#{number} the other two serve again after {Seconds(DateTimeOffset.UtcNow - at)}");
        }

        await Task.Delay(at + downFor - DateTimeOffset.UtcNow is { Ticks: > 0 } wait ? wait : TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        await member.RestartAsync(cancellationToken).ConfigureAwait(false);
        await ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        Say($"#{number} ZooKeeper server {member.MemberId} restarted and serving");
    }

    private async Task PauseLeaderAsync(int number, TimeSpan length, CancellationToken cancellationToken)
    {
        var ensemble = _ensemble!;
        var leader = await ensemble.FindLeaderAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException("the ensemble has no leader");
        var pid = leader.ProcessId;
        Fault(number, $"sigstop the ZooKeeper leader (server {leader.MemberId}, pid {pid}) for {Seconds(length)}");
        var at = DateTimeOffset.UtcNow;
        Signal(pid, "STOP");
        try
        {
            await Task.Delay(length, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Signal(pid, "CONT");
        }

        // Conservative: down from the pause until every server serves again (a re-election during the pause may have brought the
        // registry back earlier; judging fewer fires never invents a violation).
        await ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        _recorder.RegistryDown(at, DateTimeOffset.UtcNow);
        Say($"#{number} sigcont server {leader.MemberId}; all serve again {Seconds(DateTimeOffset.UtcNow - at)} after the pause began");
    }

    private async Task LoseQuorumAsync(int number, int spared, TimeSpan downFor, CancellationToken cancellationToken)
    {
        var ensemble = _ensemble!;
        var victims = ensemble.Members.Where((_, i) => i != spared).ToArray();
        Fault(number, $"quorum loss: sigkill ZooKeeper servers {string.Join(" and ", victims.Select(v => v.MemberId))} for {Seconds(downFor)}");
        var at = DateTimeOffset.UtcNow;
        await Task.Run(() =>
        {
            foreach (var victim in victims)
            {
                victim.Kill();
            }
        }, cancellationToken).ConfigureAwait(false);
        await Task.Delay(downFor, cancellationToken).ConfigureAwait(false);
        // Together: each waits until it serves, which takes a quorum, so one at a time would wait for the other forever.
        await Task.WhenAll(victims.Select(v => v.RestartAsync(cancellationToken))).ConfigureAwait(false);
        await ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        _recorder.RegistryDown(at, DateTimeOffset.UtcNow);
        Say($"#{number} quorum back after {Seconds(DateTimeOffset.UtcNow - at)}");
    }

    /// <summary>An app that exits without being told to is a finding: it is recorded (as a death), restarted, and reported.</summary>
    private async Task MonitorAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var app in _apps)
            {
                SampleProcess? exited;
                lock (_gate)
                {
                    exited = !app.Down && app.Process is { HasExited: true } p ? p : null;
                    if (exited is not null)
                    {
                        app.Down = true;
                    }
                }

                if (exited is null)
                {
                    continue;
                }

                var at = DateTimeOffset.UtcNow;
                _recorder.Death(app.Id, at);
                var what = $"{app.Id} (pid {exited.ProcessId}) exited on its own with code {exited.ExitCode}, seen at {Time(at)}";
                _unexpectedExits.Enqueue(what);
                Say("UNEXPECTED: " + what + "; restarting it");
                await exited.DisposeAsync().ConfigureAwait(false);
                await StartAppAsync(app).ConfigureAwait(false);
                _recorder.AppUnable(app.Id, at, DateTimeOffset.UtcNow);
                lock (_gate)
                {
                    app.Down = false;
                }
            }

            try
            {
                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task StartAppAsync(App app)
    {
        var o = _options;
        string[] arguments =
        [
            "--zookeeper", app.ConnectionString, "--session-timeout", o.SessionTimeout.ToString("c", CultureInfo.InvariantCulture), "--log", _log,
            "--work", o.WorkSeconds.ToString(CultureInfo.InvariantCulture), "--work-by-item", o.WorkByItem,
            "--ShardedJobs:Namespace", _namespace, "--ShardedJobs:ServerIp", "127.0.0.1",
            // Restarted during a quorum loss, an app waits for the ensemble instead of failing its start.
            "--ShardedJobs:ZooKeeper:ConnectionTimeout", "00:00:30", "--ShardedJobs:ShutdownTimeout", "00:00:05",
            "--ShardedJobs:Jobs:OrderSync:Cron", o.Cron, "--ShardedJobs:Jobs:OrderSync:Shards", o.Shards.ToString(CultureInfo.InvariantCulture),
            "--ShardedJobs:Jobs:OrderSync:MaxConcurrency", o.Shards.ToString(CultureInfo.InvariantCulture),
            "--ShardedJobs:Jobs:OrderSync:Failover", "true", "--ShardedJobs:Jobs:OrderSync:MonitorExecution", "true",
            "--ShardedJobs:Jobs:StockFeed:Disabled", "true",
        ];
        File.AppendAllText(app.OutputPath, $"==== chaos: {app.Id} starting at {DateTimeOffset.UtcNow:O} ====\n");
        var process = await SampleProcess.StartAsync(app.Id, arguments, app.OutputPath).ConfigureAwait(false);
        lock (_gate)
        {
            app.Process = process;
        }
    }

    private async Task<DateTimeOffset> WaitForStableFireAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        DateTimeOffset? found = null;
        await WaitUntilAsync(() =>
        {
            found = ExecutionLogFileReader.Read(_log, _options.JobName).Where(l => l.Event == "end" && l.Outcome == "ok").GroupBy(l => l.FireTime)
                .Where(g => g.Select(l => l.Item).Distinct().Count() == _options.Shards && g.Select(l => l.Instance).Distinct().Count() == 3)
                .Select(g => (DateTimeOffset?)g.Key).Min();
            return found is not null;
        }, timeout, "a fire with every item ok, run by all three apps", cancellationToken).ConfigureAwait(false);
        return found!.Value;
    }

    /// <summary>
    /// Audits the registry in a moment when nothing runs: no run open (a run a death left open is closed), the last end at least
    /// half a second ago (its marker removal is in flight until then) and the next fire not about to start; a start during the
    /// audit makes it read again.
    /// </summary>
    private async Task<RegistryAuditReport> AuditWhenQuietAsync(CancellationToken cancellationToken)
    {
        await using var registry = await ZooKeeperRegistry.ConnectAsync(new ZooKeeperRegistryOptions
        {
            ConnectionString = _ensemble!.ConnectionString,
            Namespace = _namespace,
            SessionTimeout = TimeSpan.FromSeconds(4),
            ConnectionTimeout = TimeSpan.FromSeconds(15),
        }, cancellationToken).ConfigureAwait(false);
        var live = s_appIds.ToHashSet(StringComparer.Ordinal);
        var servers = new HashSet<string>(StringComparer.Ordinal) { "127.0.0.1" };
        RegistryAuditReport? last = null;
        var clock = Stopwatch.StartNew();
        for (var attempt = 0; clock.Elapsed < TimeSpan.FromSeconds(90); attempt++)
        {
            var lines = ExecutionLogFileReader.Read(_log, _options.JobName);
            var now = DateTimeOffset.UtcNow;
            var open = OpenRuns(lines);
            var lastEvent = lines.Count == 0 ? DateTimeOffset.MinValue : lines.Max(l => l.Time);
            var nextFire = Next(now);
            if (open.Count > 0 || now - lastEvent < TimeSpan.FromMilliseconds(500) || nextFire - now < TimeSpan.FromMilliseconds(800))
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                continue;
            }

            last = await RegistryAudit.CheckAsync(registry, [_options.Job], live, servers, cancellationToken).ConfigureAwait(false);
            var after = ExecutionLogFileReader.Read(_log, _options.JobName);
            if (after.Count == lines.Count)
            {
                Say($"audit at {Time(now)}: {last.NodeCount} nodes under the job, {last.Violations.Count} leftovers");
                return last;
            }
        }

        // Never quiet for 90 s: audit anyway, and say so (a run that never ends is itself worth a look).
        Say("the cluster never went quiet for 90 s; auditing anyway. Open runs: " + string.Join(" | ", OpenRuns(ExecutionLogFileReader.Read(_log, _options.JobName))));
        return last ?? await RegistryAudit.CheckAsync(registry, [_options.Job], live, servers, cancellationToken).ConfigureAwait(false);
    }

    private List<RunRecord> OpenRuns(IReadOnlyList<LogLine> lines)
    {
        var deaths = _recorder.Deaths;
        return [.. HistoryChecker.FromLogLines(lines).Where(r => r.Ended is null && !deaths.Any(d => d.Instance == r.Instance && d.At >= r.Started))];
    }

    private DateTimeOffset Next(DateTimeOffset now)
    {
        var seconds = _options.FireIntervalSeconds;
        var whole = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, now.Minute, now.Second, TimeSpan.Zero);
        return whole.AddSeconds(seconds - (whole.Second % seconds));
    }

    private void Report(ChaosResult result, ClusterTimeline timeline, int runCount)
    {
        var history = result.History;
        Say(string.Create(CultureInfo.InvariantCulture,
            $"timeline: able {timeline.Able.Count} interval(s), {timeline.Able.Sum(a => a.Length.TotalSeconds):0.#} s in all; {timeline.Deaths.Count} deaths; {timeline.CutOffs.Count} cut-offs; judged fires from {Time(timeline.JudgeFiresFrom)} to before {Time(timeline.JudgeFiresBefore)}"));
        Say("faults by kind: " + string.Join(", ", result.FaultsByKind.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value}")));
        Say($"runs in the log: {runCount}; history: {history.Summary}");
        foreach (var excused in history.Excused)
        {
            Say("  excused: " + excused);
        }

        foreach (var violation in history.Violations)
        {
            Say("  VIOLATION " + violation);
        }

        foreach (var leftover in result.Audit.Violations)
        {
            Say("  AUDIT " + leftover);
        }

        foreach (var exit in result.UnexpectedExits)
        {
            Say("  UNEXPECTED EXIT " + exit);
        }

        Say($"files: log {_log}; console {Path.Combine(_directory, "console.txt")}; faults {Path.Combine(_directory, "faults.txt")}; " + string.Join("; ", result.AppOutputs.Select(a => $"{a.Key} output {a.Value}")) +
            $"; ZooKeeper logs {Path.Combine(_directory, "zookeeper-*.log")}, transaction logs {Path.Combine(_directory, "zookeeper-*-txn")}");
        Say(string.Create(CultureInfo.InvariantCulture,
            $"{{\"benchmark\":\"chaos\",\"seed\":{result.Seed},\"faults\":{result.Faults},\"duration_s\":{result.Duration.TotalSeconds:0.0},\"fires_checked\":{history.FiresChecked}," +
            $"\"duplicates\":{history.Duplicates},\"overlaps\":{history.Overlaps},\"excused_overlaps\":{history.ExcusedOverlaps},\"excused_duplicates\":{history.ExcusedDuplicates},\"lost\":{history.Lost}," +
            $"\"misattributed\":{history.Misattributed},\"audit_leftovers\":{result.Audit.Violations.Count},\"unexpected_exits\":{result.UnexpectedExits.Count},\"passed\":{(result.Passed ? "true" : "false")}}}"));
        Say(result.LastLine);
    }

    /// <summary>Keeps each server's log and its transaction log (every write with its session and time, the registry's own
    /// history for tracing a violation: <c>java -cp … org.apache.zookeeper.server.persistence.TxnLogToolkit -d log.N</c>).</summary>
    private void CopyZooKeeperLogs()
    {
        foreach (var member in _ensemble?.Members ?? [])
        {
            try
            {
                File.Copy(member.LogPath, Path.Combine(_directory, $"zookeeper-{member.MemberId}.log"), overwrite: true);
                var transactions = Path.Combine(member.DataDirectory, "version-2");
                var copy = System.IO.Directory.CreateDirectory(Path.Combine(_directory, $"zookeeper-{member.MemberId}-txn")).FullName;
                foreach (var file in System.IO.Directory.Exists(transactions) ? System.IO.Directory.GetFiles(transactions, "log.*") : [])
                {
                    File.Copy(file, Path.Combine(copy, Path.GetFileName(file)), overwrite: true);
                }
            }
            catch (IOException)
            {
                // A server that never started has no log: nothing to keep.
            }
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Not within {timeout}: {what}.");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    private void Fault(int number, string what)
    {
        var line = string.Create(CultureInfo.InvariantCulture, $"[+{_clock.Elapsed.TotalSeconds,7:0.000} s] {Time(DateTimeOffset.UtcNow)}  fault #{number}: {what}");
        lock (_faultFile)
        {
            _faultFile.WriteLine(line);
        }

        Write(line);
    }

    private void Say(string what) => Write(string.Create(CultureInfo.InvariantCulture, $"[+{_clock.Elapsed.TotalSeconds,7:0.000} s] {Time(DateTimeOffset.UtcNow)}  {what}"));

    /// <summary>Every line goes to the caller and to <c>console.txt</c> in the run's directory (a test's output is not kept).</summary>
    private void Write(string line)
    {
        lock (_consoleFile)
        {
            _consoleFile.WriteLine(line);
        }

        _options.Output(line);
    }

    private static string Time(DateTimeOffset time) => time.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture) + " s";

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false, RedirectStandardError = true });
        kill?.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        // Stopped processes first get SIGCONT, so nothing is left frozen; then every app, proxy and server goes.
        foreach (var member in _ensemble?.Members ?? [])
        {
            if (member.ProcessId is var pid and not 0)
            {
                Signal(pid, "CONT");
            }
        }

        foreach (var app in _apps)
        {
            if (app.Process is { } process)
            {
                if (!process.HasExited)
                {
                    process.Resume();
                }

                await process.DisposeAsync().ConfigureAwait(false);
            }

            foreach (var proxy in app.Proxies)
            {
                await proxy.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (_ensemble is not null)
        {
            await _ensemble.DisposeAsync().ConfigureAwait(false);
        }

        await _faultFile.DisposeAsync().ConfigureAwait(false);
        await _consoleFile.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>One app slot: a fixed instance id, its proxies (one per server), and its current process.</summary>
    private sealed class App(string id, TcpProxy[] proxies, string outputPath)
    {
        public string Id { get; } = id;

        public TcpProxy[] Proxies { get; } = proxies;

        public string OutputPath { get; } = outputPath;

        public string ConnectionString => string.Join(',', Proxies.Select(p => p.ConnectionString));

        public SampleProcess? Process { get; set; }

        /// <summary>A fault is being injected into it.</summary>
        public bool Busy { get; set; }

        /// <summary>Its process is meant to be gone now (killed or stopped, not yet restarted).</summary>
        public bool Down { get; set; }
    }
}
