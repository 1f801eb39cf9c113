using System.Globalization;
using ShardedJobs.Scheduling;

namespace ShardedJobs.TestSupport.History;

/// <summary>One item execution, as the job itself recorded it (the oracle: never the runtime's own bookkeeping).</summary>
/// <param name="Outcome">null while running (or when the process died mid-run); then <c>ok</c>, <c>failed</c> or <c>cancelled</c>.</param>
public sealed record RunRecord(
    string Job,
    int Item,
    DateTimeOffset FireTime,
    string Instance,
    string TaskId,
    bool IsFailover,
    DateTimeOffset Started,
    DateTimeOffset? Ended,
    string? Outcome,
    long? FencingToken = null)
{
    /// <summary>The item ran to its end (succeeded or failed): that fire of the item is done and must not run again.</summary>
    public bool Completed => Outcome is "ok" or "failed";

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Job}#{Item} fire {FireTime:HH:mm:ss.fff} on {Instance}{(IsFailover ? " FAILOVER" : "")} {Started:HH:mm:ss.fff}-{(Ended is { } e ? e.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) : "?")} {Outcome ?? "open"} [{TaskId}]");
}

/// <summary>What the checker must know of one job: its schedule, its size, and the settings that decide what "lost" means.</summary>
public sealed record JobUnderTest(string Job, string Cron, int Shards, bool Failover, bool Misfire = true, bool IgnoresCancellation = false, string TimeZone = "UTC");

/// <summary>An interval of time, [From, To).</summary>
public readonly record struct Interval(DateTimeOffset From, DateTimeOffset To)
{
    public bool Contains(DateTimeOffset time) => time >= From && time < To;

    public bool Overlaps(DateTimeOffset from, DateTimeOffset to) => from < To && to > From;

    public TimeSpan Length => To - From;
}

/// <summary>An instance could not reach the registry for a while: a process frozen (SIGSTOP, a long GC: nothing of it runs, so
/// not even cancellation can stop its items) or cut off (partition, suspended connection: cancellation works).</summary>
public sealed record CutOff(string Instance, Interval When, bool Frozen);

/// <summary>
/// What happened to the cluster, as the driver of a run (simulator, chaos run, process test) knows it.
/// </summary>
public sealed record ClusterTimeline
{
    /// <summary>The session timeout the instances ran with.</summary>
    public required TimeSpan SessionTimeout { get; init; }

    /// <summary>When at least one instance was live and reachable and the registry was available: a fire due then must complete.</summary>
    public required IReadOnlyList<Interval> Able { get; init; }

    /// <summary>For jobs without failover: when no fault touched the cluster (a crash lingers until its session expired and its
    /// items were re-sharded). Only fires due then are owed; with failover off, a crash loses its items by design.</summary>
    public IReadOnlyList<Interval> Undisturbed { get; init; } = [];

    /// <summary>When an instance died (SIGKILL, crash): a run it left open ended then.</summary>
    public IReadOnlyList<(string Instance, DateTimeOffset At)> Deaths { get; init; } = [];

    /// <summary>Times an instance was cut off from the registry.</summary>
    public IReadOnlyList<CutOff> CutOffs { get; init; } = [];

    /// <summary>How far the instances' clocks may be ahead of the recorder's: an instance that fires early by its clock
    /// also compensates early by it.</summary>
    public TimeSpan ClockSkew { get; init; }

    /// <summary>A death this soon after a run ended came before the end could be recorded in the registry.</summary>
    public TimeSpan UnconfirmedWindow { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Fires due at or after this are not judged for loss (the run ended before they could finish).</summary>
    public required DateTimeOffset JudgeFiresBefore { get; init; }

    /// <summary>Fires due before this are not judged for loss (the cluster was still starting).</summary>
    public DateTimeOffset JudgeFiresFrom { get; init; } = DateTimeOffset.MinValue;
}

/// <summary>One broken rule, with the runs that show it.</summary>
public sealed record Violation(string Rule, string Detail)
{
    public override string ToString() => $"[{Rule}] {Detail}";
}

/// <summary>The checker's verdict.</summary>
public sealed record HistoryReport(
    int FiresChecked,
    int Duplicates,
    int ExcusedDuplicates,
    int Overlaps,
    int ExcusedOverlaps,
    int Lost,
    int Misattributed,
    IReadOnlyList<Violation> Violations,
    IReadOnlyList<string> Excused)
{
    public bool Ok => Violations.Count == 0;

    /// <summary>One line: what was checked and what broke.</summary>
    public string Summary => string.Create(CultureInfo.InvariantCulture,
        $"{FiresChecked} fires checked, {Duplicates} duplicates ({ExcusedDuplicates} excused), {Overlaps} overlaps ({ExcusedOverlaps} excused), {Lost} lost, {Misattributed} misattributed");

    public string Describe(int most = 30) =>
        Summary + (Violations.Count == 0 ? "" : "\n" + string.Join("\n", Violations.Take(most).Select(v => "  " + v)) + (Violations.Count > most ? $"\n  … {Violations.Count - most} more" : ""));
}

/// <summary>
/// The history checker: one library for the fault simulator, the process tests and the chaos run, over the per-item execution log.
/// <list type="number">
/// <item><b>(i) Once.</b> No (job, fire, item) completes twice, and nothing of it starts after a run of it completed. Excused,
/// and counted apart: a first completion the cluster could not know of (its instance cut off longer than the session timeout
/// when it ended, or dead at that instant: <i>unconfirmed</i>), and one that overlapped the re-run under an excused overlap of
/// rule (ii) (<i>unstoppable</i>).</item>
/// <item><b>(ii) No overlap.</b> No two runs of one item overlap in time (on any instances). Excused, and counted apart: an
/// overlap whose earlier run belongs to an instance that was cut off for longer than the session timeout while the run was
/// open — frozen (nothing of it ran, not even cancellation), or cut off while running a job that ignores cancellation. No
/// client-side fencing can stop those; the fencing token lets a sink reject the stale writer.</item>
/// <item><b>(iii) None lost.</b> Every (job, fire, item) due while the cluster was able (see <see cref="ClusterTimeline.Able"/>;
/// for a job without failover, also undisturbed) completes — by its run, a misfire catch-up or a compensation — with one
/// exception, misfire coalescing: while a run of the item is in progress (from its start to its end, or for a run left open by
/// a death, to the next start of the item), the fires that come due are missed; only the latest of them is owed (run once
/// right after, as the catch-up), and none with <c>Misfire = false</c>.</item>
/// <item><b>(iv) Attributed.</b> A run of a (job, fire, item) that already had a run is a compensation (<c>IsFailover</c>);
/// a compensation belongs to a job with failover, carries a fire time on the job's schedule, and started after it.</item>
/// </list>
/// The registry's state after the faults stop, rule (v), is <see cref="RegistryAudit"/>'s.
/// </summary>
public static class HistoryChecker
{
    /// <param name="launches">When known (the simulator's listener): when each execution began on its instance, (instance, task
    /// id) to time. Its items are held from then, also those that wait for a slot before their runs start.</param>
    public static HistoryReport Check(IReadOnlyCollection<RunRecord> runs, IReadOnlyCollection<JobUnderTest> jobs, ClusterTimeline timeline,
        IReadOnlyDictionary<(string Instance, string TaskId), DateTimeOffset>? launches = null)
    {
        var violations = new List<Violation>();
        var excused = new List<string>();
        int duplicates = 0, excusedDuplicates = 0, overlaps = 0, lost = 0, misattributed = 0, fires = 0;
        var closed = CloseDeadRuns(runs, timeline);
        var byJob = jobs.ToDictionary(j => j.Job, StringComparer.Ordinal);

        foreach (var unknown in closed.Where(r => !byJob.ContainsKey(r.Job)).Select(r => r.Job).Distinct())
        {
            violations.Add(new Violation("unknown-job", $"runs of job '{unknown}', which is not under test"));
        }

        // (i) and (iv), per (job, fire, item).
        foreach (var group in closed.GroupBy(r => (r.Job, r.FireTime, r.Item)))
        {
            var ordered = group.OrderBy(r => r.Started).ThenBy(r => r.TaskId, StringComparer.Ordinal).ToList();
            var completions = ordered.Where(r => r.Completed).ToList();
            if (completions.Count > 1)
            {
                var job = byJob.GetValueOrDefault(group.Key.Job);
                var unconfirmed = completions.Take(completions.Count - 1)
                    .Select(c => Unconfirmed(c, timeline) ?? Unstoppable(c, completions.Where(o => o != c && o.Started >= c.Started), job, timeline, launches)).ToList();
                if (unconfirmed.All(u => u is not null))
                {
                    excusedDuplicates += completions.Count - 1;
                    excused.Add($"{string.Join(" | ", completions)}: {string.Join("; ", unconfirmed)}");
                }
                else
                {
                    duplicates += completions.Count - 1;
                    violations.Add(new Violation("completed-twice", $"{group.Key.Job} item {group.Key.Item} of fire {Time(group.Key.FireTime)} completed {completions.Count} times: {string.Join(" | ", completions)}"));
                }
            }
            else if (completions.Count == 1 && ordered.FirstOrDefault(r => r != completions[0] && r.Started >= completions[0].Started) is { } after)
            {
                // A re-run started beside the completion under an excused overlap (the completing run could not be stopped) is
                // the overlap's consequence, as for a second completion: excused the same way.
                if (Unstoppable(completions[0], [after], byJob.GetValueOrDefault(group.Key.Job), timeline, launches) is { } why)
                {
                    excusedDuplicates++;
                    excused.Add($"{completions[0]} | {after}: {why}");
                }
                else
                {
                    duplicates++;
                    violations.Add(new Violation("started-after-completion", $"{after} started after {completions[0]}"));
                }
            }

            foreach (var again in ordered.Skip(1).Where(r => !r.IsFailover))
            {
                misattributed++;
                violations.Add(new Violation("rerun-not-failover", $"{again} re-runs a fire that already had {ordered[0]}, without IsFailover"));
            }
        }

        foreach (var run in closed.Where(r => r.IsFailover))
        {
            if (!byJob.TryGetValue(run.Job, out var job))
            {
                continue;
            }

            var schedule = Schedule(job);
            var onSchedule = schedule.GetNextOccurrence(run.FireTime - TimeSpan.FromMilliseconds(1)) == run.FireTime;
            if (!job.Failover || !onSchedule || run.FireTime > run.Started + timeline.ClockSkew)
            {
                misattributed++;
                violations.Add(new Violation("bad-compensation", $"{run}: {(!job.Failover ? "the job has no failover" : !onSchedule ? "its fire time is not on the schedule" : "it started before its fire time")}"));
            }
        }

        // (ii) per (job, item).
        foreach (var group in closed.GroupBy(r => (r.Job, r.Item)))
        {
            var ordered = group.OrderBy(r => r.Started).ToList();
            for (var i = 0; i < ordered.Count; i++)
            {
                for (var j = i + 1; j < ordered.Count && ordered[j].Started < (ordered[i].Ended ?? DateTimeOffset.MaxValue); j++)
                {
                    var (earlier, later) = (ordered[i], ordered[j]);
                    if (Excuse(earlier, byJob.GetValueOrDefault(earlier.Job), timeline) is { } why)
                    {
                        excused.Add($"{earlier} and {later}: {why}");
                        continue;
                    }

                    overlaps++;
                    violations.Add(new Violation("overlap", $"{earlier} and {later}"));
                }
            }
        }

        // (iii) per job, fire and item.
        foreach (var job in jobs)
        {
            var schedule = Schedule(job);
            var jobRuns = closed.Where(r => r.Job == job.Job).ToList();
            var completed = jobRuns.Where(r => r.Completed).Select(r => (r.FireTime, r.Item)).ToHashSet();
            var from = timeline.Able.Count == 0 ? timeline.JudgeFiresBefore : timeline.Able.Min(a => a.From);
            if (from < timeline.JudgeFiresFrom)
            {
                from = timeline.JudgeFiresFrom;
            }

            var executionStarts = jobRuns.GroupBy(r => (r.Instance, r.TaskId)).ToDictionary(g => g.Key,
                g => launches is not null && launches.TryGetValue(g.Key, out var launched) && launched < g.Min(r => r.Started) ? launched : g.Min(r => r.Started));
            var blocking = Enumerable.Range(0, job.Shards).ToDictionary(i => i, i => BlockingWindows(jobRuns.Where(r => r.Item == i).ToList(), executionStarts, timeline.ClockSkew));
            for (var next = schedule.GetNextOccurrence(from - TimeSpan.FromMilliseconds(1)); next is { } fire && fire < timeline.JudgeFiresBefore; next = schedule.GetNextOccurrence(fire))
            {
                if (!timeline.Able.Any(a => a.Contains(fire)) || (!job.Failover && !timeline.Undisturbed.Any(u => u.Contains(fire))))
                {
                    continue;
                }

                fires++;
                for (var item = 0; item < job.Shards; item++)
                {
                    if (completed.Contains((fire, item)))
                    {
                        continue;
                    }

                    if (Coalesced(fire, blocking[item], schedule, job.Misfire, timeline.ClockSkew) || CaughtUpLater(fire, item, jobRuns)
                        || (!job.Misfire && !timeline.Undisturbed.Any(u => u.Contains(fire))))
                    {
                        continue;
                    }

                    lost++;
                    var tried = jobRuns.Where(r => r.FireTime == fire && r.Item == item).ToList();
                    var before = jobRuns.Where(r => r.Item == item && r.Started <= fire).MaxBy(r => r.Started);
                    violations.Add(new Violation("lost", $"{job.Job} item {item} of fire {Time(fire)} never completed{(tried.Count == 0 ? " (no run started)" : $": {string.Join(" | ", tried)}")}{(before is null ? "" : $"; the item's run before it: {before}")}"));
                }
            }
        }

        return new HistoryReport(fires, duplicates, excusedDuplicates, overlaps, excused.Count - excusedDuplicates, lost, misattributed, violations, excused);
    }

    /// <summary>Reads the execution log file the sample processes share (start and end lines paired by task id and item).</summary>
    public static IReadOnlyList<RunRecord> FromLogLines(IEnumerable<Runtime.LogLine> lines)
    {
        var open = new Dictionary<(string TaskId, int Item), RunRecord>();
        var runs = new List<RunRecord>();
        foreach (var line in lines)
        {
            var key = (line.TaskId, line.Item);
            if (line.Event == "start")
            {
                var run = new RunRecord(line.Job, line.Item, line.FireTime, line.Instance, line.TaskId, line.IsFailover, line.Time, null, null, line.FencingToken);
                open[key] = run;
                runs.Add(run);
            }
            else if (open.Remove(key, out var started))
            {
                runs[runs.IndexOf(started)] = started with { Ended = line.Time, Outcome = line.Outcome };
            }
        }

        return runs;
    }

    /// <summary>The in-process execution log's runs.</summary>
    public static IReadOnlyList<RunRecord> FromExecutionLog(IEnumerable<Runtime.ItemRun> runs) =>
        [.. runs.Select(r => new RunRecord(r.Job, r.Item, r.FireTime, r.Instance, r.TaskId, r.IsFailover, r.Started, r.Ended, r.Outcome, r.FencingToken))];

    private static CronSchedule Schedule(JobUnderTest job) => CronSchedule.Parse(job.Cron, TimeZones.Find(job.TimeZone));

    /// <summary>A run its instance's death left open ended at the death (the process was gone).</summary>
    private static List<RunRecord> CloseDeadRuns(IReadOnlyCollection<RunRecord> runs, ClusterTimeline timeline) =>
        [.. runs.Select(r => r.Ended is null && timeline.Deaths.Where(d => d.Instance == r.Instance && d.At >= r.Started).Select(d => (DateTimeOffset?)d.At).Min() is { } died
            ? r with { Ended = died }
            : r)];

    private static string? Excuse(RunRecord earlier, JobUnderTest? job, ClusterTimeline timeline)
    {
        var end = earlier.Ended ?? DateTimeOffset.MaxValue;
        var cut = timeline.CutOffs.FirstOrDefault(c => c.Instance == earlier.Instance && c.When.Overlaps(earlier.Started, end) && c.When.Length > timeline.SessionTimeout
            && (c.Frozen || job?.IgnoresCancellation == true));
        return cut is null ? null : string.Create(CultureInfo.InvariantCulture,
            $"{earlier.Instance} was {(cut.Frozen ? "frozen" : "cut off")} for {cut.When.Length.TotalSeconds:0.###} s (session timeout {timeline.SessionTimeout.TotalSeconds:0.###} s){(cut.Frozen ? "" : " running a job that ignores cancellation")}");
    }

    /// <summary>
    /// When each run of one item held it: from the start of its execution to its end; a run left open, to the next start of the
    /// item. An execution takes all its items at once (one marker multi) and runs them MaxConcurrency at a time (a job's slots
    /// are shared by its executions on the instance), so an item waiting for a slot is held already: a run at its own fire from
    /// that fire (as the instance's clock saw it), a late run from its execution's launch when known, else from its first start
    /// (its task id's). A catch-up launched while the slots were busy waits for one, holding its item all the while.
    /// </summary>
    private static List<Interval> BlockingWindows(List<RunRecord> itemRuns, Dictionary<(string Instance, string TaskId), DateTimeOffset> executionStarts, TimeSpan skew)
    {
        var ordered = itemRuns.OrderBy(r => r.Started).ToList();
        var windows = new List<Interval>();
        for (var i = 0; i < ordered.Count; i++)
        {
            var end = ordered[i].Ended ?? (i + 1 < ordered.Count ? ordered[i + 1].Started : DateTimeOffset.MaxValue);
            var run = ordered[i];
            var held = executionStarts.GetValueOrDefault((run.Instance, run.TaskId), run.Started);
            if (!IsLate(run) && run.FireTime - skew < held)
            {
                held = run.FireTime - skew;
            }

            windows.Add(new Interval(held, end));
        }

        return windows;
    }

    /// <summary>
    /// The fire found the item running, and it is not the latest fire that did (or misfire is off): coalesced. An instance
    /// whose clock is off by up to <paramref name="skew"/> sees its fire that much early or late, so a run held the item at the
    /// fire when it did anywhere within the skew of it.
    /// </summary>
    private static bool Coalesced(DateTimeOffset fire, List<Interval> windows, CronSchedule schedule, bool misfire, TimeSpan skew) =>
        // A later fire also came while this run held the item: only that one is owed (none without misfire).
        // A run ending at the very instant of a fire may be seen either way (timers due at one instant run in either order).
        windows.Any(w => w.From - skew < fire && fire <= w.To + skew && (!misfire || schedule.GetNextOccurrence(fire) is { } later && later <= w.To + skew));

    /// <summary>
    /// Fires of an item missed in a row (its owner cut off or dead, or the fire skipped) are owed once: the latest of them, run
    /// late — as a misfire catch-up or a compensation. So a missed fire is excused when a later fire of the item completed by a
    /// late run and no run of the item started on time in between (nor for the missed fire itself).
    /// </summary>
    private static bool CaughtUpLater(DateTimeOffset fire, int item, List<RunRecord> jobRuns)
    {
        var itemRuns = jobRuns.Where(r => r.Item == item && r.FireTime >= fire).ToList();
        var caughtUp = itemRuns.Where(r => r.FireTime > fire && r.Completed && IsLate(r)).Select(r => (DateTimeOffset?)r.FireTime).Min();
        return caughtUp is { } later && !itemRuns.Any(r => !IsLate(r) && r.FireTime >= fire && r.FireTime < later);
    }

    /// <summary>A run that did not start at its own fire: a compensation or a misfire catch-up (by its task id, ElasticJob's format).</summary>
    private static bool IsLate(RunRecord run) => run.IsFailover || run.TaskId.Contains("@-@MISFIRE@-@", StringComparison.Ordinal);

    /// <summary>
    /// Why a completion could not be known to the cluster, so that a compensation ran the fire again (at-least-once by
    /// necessity): the item ended while its instance was cut off from the registry for longer than the session timeout (its
    /// session expired before it could record the end), or its instance died at the moment it ended (before the record).
    /// </summary>
    private static string? Unconfirmed(RunRecord completion, ClusterTimeline timeline)
    {
        var end = completion.Ended!.Value;
        if (timeline.CutOffs.FirstOrDefault(c => c.Instance == completion.Instance && c.When.Contains(end) && c.When.Length > timeline.SessionTimeout) is { } cut)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{completion.Instance} ended it {(end - cut.When.From).TotalSeconds:0.###} s into a cut-off of {cut.When.Length.TotalSeconds:0.###} s, longer than the session timeout");
        }

        // Dead before it could have recorded the end: it died at that instant, or it could not reach the registry from the end
        // on (cut off, or the registry without quorum: the session lives, but nothing can be written) and died as it could
        // again. Either way the marker stays and the item is compensated (at-least-once by necessity).
        if (timeline.Deaths.Where(d => d.Instance == completion.Instance && d.At >= end).Select(d => (DateTimeOffset?)d.At).Min() is not { } died)
        {
            return null;
        }

        var reachable = FirstReachable(completion.Instance, end, died, timeline);
        if (reachable is null || died - reachable.Value <= timeline.UnconfirmedWindow)
        {
            return reachable == end
                ? $"{completion.Instance} died as it ended it, before the end could be recorded"
                : string.Create(CultureInfo.InvariantCulture,
                    $"{completion.Instance} could not reach the registry from its end until it died {(died - end).TotalSeconds:0.###} s later, before the end could be recorded");
        }

        return null;
    }

    /// <summary>The first instant in [from, until] at which the instance could reach the registry: the cluster was able (the
    /// registry had quorum) and the instance was not cut off; null if there was none.</summary>
    private static DateTimeOffset? FirstReachable(string instance, DateTimeOffset from, DateTimeOffset until, ClusterTimeline timeline)
    {
        var candidates = timeline.Able.Select(a => a.From)
            .Concat(timeline.CutOffs.Where(c => c.Instance == instance).Select(c => c.When.To))
            .Append(from)
            .Where(t => t >= from && t <= until)
            .Order();
        foreach (var at in candidates)
        {
            if (timeline.Able.Any(a => a.Contains(at)) && !timeline.CutOffs.Any(c => c.Instance == instance && c.When.Contains(at)))
            {
                return at;
            }
        }

        return null;
    }

    /// <summary>
    /// Why a completion went on beside the compensation that re-ran its fire: the two overlapped, and the overlap is excused —
    /// its instance was frozen, or cut off running a job that ignores cancellation, longer than the session timeout. Nothing
    /// could stop that run, so its completion is the overlap's consequence (a fencing token lets a sink reject it).
    /// <para>The re-run took the item at its execution's launch when known (its marker multi, which also issued the fencing
    /// token that makes this run the stale writer), not only when its code got a slot: a compensation launched while this
    /// run went on unstoppably was started beside it, as rule (iii) holds an item from its launch too.</para>
    /// </summary>
    private static string? Unstoppable(RunRecord completion, IEnumerable<RunRecord> later, JobUnderTest? job, ClusterTimeline timeline,
        IReadOnlyDictionary<(string Instance, string TaskId), DateTimeOffset>? launches) =>
        later.Any(l => (launches is not null && launches.TryGetValue((l.Instance, l.TaskId), out var launched) && launched < l.Started ? launched : l.Started) < completion.Ended)
        && Excuse(completion, job, timeline) is { } why ? $"it could not be stopped: {why}" : null;

    private static string Time(DateTimeOffset time) => time.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
}
