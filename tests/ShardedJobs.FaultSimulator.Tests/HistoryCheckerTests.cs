using ShardedJobs.TestSupport.History;
using Xunit;

namespace ShardedJobs.FaultSimulator.Tests;

/// <summary>The checker's rules on small, hand-made histories: each violation is found, and each exception is exactly as narrow as stated.</summary>
public sealed class HistoryCheckerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 5, 0, 0, 0, TimeSpan.Zero);
    private static readonly JobUnderTest Job = new("j", "0/10 * * * * ?", 2, Failover: true);
    private static readonly TimeSpan Session = TimeSpan.FromSeconds(4);

    private static DateTimeOffset At(double seconds) => T0 + TimeSpan.FromSeconds(seconds);

    private static RunRecord Run(int item, double fire, string instance, double start, double? end, string? outcome = "ok", bool failover = false, string kind = "SCHEDULE") =>
        new("j", item, At(fire), instance, $"j@-@{item}@-@{kind}@-@{instance}@-@{fire}.{start}", failover, At(start), end is { } e ? At(e) : null, outcome);

    private static ClusterTimeline Timeline(double until, IReadOnlyList<CutOff>? cutOffs = null, IReadOnlyList<(string, DateTimeOffset)>? deaths = null) => new()
    {
        SessionTimeout = Session,
        Able = [new Interval(T0, At(until))],
        Undisturbed = [new Interval(T0, At(until))],
        CutOffs = cutOffs ?? [],
        Deaths = deaths ?? [],
        JudgeFiresFrom = At(1),
        JudgeFiresBefore = At(until),
    };

    /// <summary>Fires 10 and 20, items 0 and 1, each once on time.</summary>
    private static List<RunRecord> Clean() =>
        [Run(0, 10, "a", 10, 11), Run(1, 10, "b", 10, 11), Run(0, 20, "a", 20, 21), Run(1, 20, "b", 20, 21)];

    [Fact]
    public void A_clean_history_passes_and_counts_its_fires()
    {
        var report = HistoryChecker.Check(Clean(), [Job], Timeline(30));
        Assert.True(report.Ok, report.Describe());
        Assert.Equal(2, report.FiresChecked);
    }

    [Fact]
    public void A_fire_of_an_item_completed_twice_is_a_duplicate()
    {
        var report = HistoryChecker.Check([.. Clean(), Run(1, 20, "a", 22, 23, failover: true, kind: "FAILOVER")], [Job], Timeline(30));
        Assert.Equal(1, report.Duplicates);
        Assert.Contains(report.Violations, v => v.Rule == "completed-twice");
    }

    [Fact]
    public void A_second_completion_after_a_cut_off_longer_than_the_session_timeout_is_counted_as_unconfirmed_not_as_a_duplicate()
    {
        // b ended item 1 of fire 20 one second into a 6 s cut-off: its session expired before it could record the end.
        var cut = new CutOff("b", new Interval(At(20.5), At(26.5)), Frozen: false);
        var runs = Clean();
        runs[3] = Run(1, 20, "b", 20, 21.5);
        var report = HistoryChecker.Check([.. runs, Run(1, 20, "a", 25, 26, failover: true, kind: "FAILOVER")], [Job], Timeline(30, [cut]));
        Assert.True(report.Ok, report.Describe());
        Assert.Equal(1, report.ExcusedDuplicates);

        var shortCut = cut with { When = new Interval(At(20.5), At(23)) }; // shorter than the session timeout: no excuse
        Assert.Equal(1, HistoryChecker.Check([.. runs, Run(1, 20, "a", 25, 26, failover: true, kind: "FAILOVER")], [Job], Timeline(30, [shortCut])).Duplicates);
    }

    [Fact]
    public void A_run_that_ignores_cancellation_and_completes_beside_its_compensation_is_excused_only_under_an_excused_overlap()
    {
        // b's session was lost 2 s into item 1 of fire 20 (cut off 5 s, longer than the session timeout); the job ignores
        // cancellation, so b's run went on and completed at 29, after a's compensation had started at 26.
        var cut = new CutOff("b", new Interval(At(22), At(27)), Frozen: false);
        var runs = Clean();
        runs[3] = Run(1, 20, "b", 20, 29);
        List<RunRecord> history = [.. runs, Run(1, 20, "a", 26, 28, failover: true, kind: "FAILOVER")];
        var report = HistoryChecker.Check(history, [Job with { IgnoresCancellation = true }], Timeline(30, [cut]));
        Assert.True(report.Ok, report.Describe());
        Assert.Equal(1, report.ExcusedDuplicates);
        Assert.Equal(1, report.ExcusedOverlaps);

        Assert.Equal(1, HistoryChecker.Check(history, [Job], Timeline(30, [cut])).Duplicates); // it honours cancellation: no excuse
    }

    [Fact]
    public void A_compensation_launched_beside_an_unstoppable_run_is_excused_even_when_its_code_waited_for_a_slot_until_that_run_ended()
    {
        // As above, but a's compensation was launched at 26 (its marker written, its fencing token issued) and its code waited
        // for a slot until 30, after b's run had completed at 29: it was started beside it all the same.
        var cut = new CutOff("b", new Interval(At(22), At(27)), Frozen: false);
        var runs = Clean();
        runs[3] = Run(1, 20, "b", 20, 29);
        var compensation = Run(1, 20, "a", 30, 32, failover: true, kind: "FAILOVER");
        List<RunRecord> history = [.. runs, compensation];
        var job = Job with { IgnoresCancellation = true };
        var launched = new Dictionary<(string, string), DateTimeOffset> { [("a", compensation.TaskId)] = At(26) };
        var report = HistoryChecker.Check(history, [job], Timeline(30, [cut]), launched);
        Assert.True(report.Ok, report.Describe());
        Assert.Equal(1, report.ExcusedDuplicates);

        // Launched after b's run completed: a second run of a completed fire, not excused.
        Assert.Equal(1, HistoryChecker.Check(history, [job], Timeline(30, [cut])).Duplicates);
        Assert.Equal(1, HistoryChecker.Check(history, [job], Timeline(30, [cut]), new Dictionary<(string, string), DateTimeOffset> { [("a", compensation.TaskId)] = At(29.5) }).Duplicates);

        // Left open by a's death: not a completion, but a start beside an unstoppable one is excused the same way.
        List<RunRecord> open = [.. runs, Run(1, 20, "a", 26, null, outcome: null, failover: true, kind: "FAILOVER")];
        var died = HistoryChecker.Check(open, [job], Timeline(30, [cut], [("a", At(31))]));
        Assert.DoesNotContain(died.Violations, v => v.Rule == "started-after-completion");
        Assert.Contains(HistoryChecker.Check(open, [Job], Timeline(30, [cut], [("a", At(31))])).Violations, v => v.Rule == "started-after-completion");
    }

    [Fact]
    public void Two_runs_of_one_item_at_the_same_time_overlap_unless_the_earlier_one_s_instance_was_frozen_longer_than_the_session_timeout()
    {
        var runs = new List<RunRecord> { Run(0, 10, "a", 10, 18, outcome: "cancelled"), Run(0, 10, "b", 15, 16, failover: true, kind: "FAILOVER"), Run(1, 10, "b", 10, 11), Run(0, 20, "b", 20, 21), Run(1, 20, "b", 20, 21) };
        var report = HistoryChecker.Check(runs, [Job], Timeline(30));
        Assert.Equal(1, report.Overlaps);

        var frozen = HistoryChecker.Check(runs, [Job], Timeline(30, [new CutOff("a", new Interval(At(11), At(17)), Frozen: true)]));
        Assert.Equal(0, frozen.Overlaps);
        Assert.Equal(1, frozen.ExcusedOverlaps);

        var cutOffHonouringJob = HistoryChecker.Check(runs, [Job], Timeline(30, [new CutOff("a", new Interval(At(11), At(17)), Frozen: false)]));
        Assert.Equal(1, cutOffHonouringJob.Overlaps); // cancellation could have stopped it: no excuse
    }

    [Fact]
    public void A_fire_that_never_completed_is_lost()
    {
        var runs = Clean();
        runs.RemoveAt(3);
        var report = HistoryChecker.Check(runs, [Job], Timeline(30));
        Assert.Equal(1, report.Lost);
        Assert.Contains("item 1 of fire 00:00:20.000", Assert.Single(report.Violations).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Fires_missed_while_the_item_ran_are_owed_once_for_the_latest_and_not_at_all_without_misfire()
    {
        // Item 0's fire-10 run lasts until 35: fires 20 and 30 come while it runs; only 30 is owed (its catch-up).
        List<RunRecord> runs = [Run(0, 10, "a", 10, 35), Run(1, 10, "b", 10, 11), Run(1, 20, "b", 20, 21), Run(1, 30, "b", 30, 31)];
        var report = HistoryChecker.Check(runs, [Job], Timeline(40));
        Assert.Equal(1, report.Lost);
        Assert.Contains("item 0 of fire 00:00:30.000", Assert.Single(report.Violations).Detail, StringComparison.Ordinal);

        Assert.True(HistoryChecker.Check([.. runs, Run(0, 30, "a", 35, 36, kind: "MISFIRE")], [Job], Timeline(40)).Ok);
        Assert.True(HistoryChecker.Check(runs, [Job with { Misfire = false }], Timeline(40)).Ok);
    }

    [Fact]
    public void An_instance_whose_clock_runs_ahead_sees_its_fire_early_so_a_run_ending_within_the_skew_still_held_the_item()
    {
        // a's clock is 0.8 s ahead: its fire 20 came at 19.2, while item 0's fire-10 run still ran (until 19.5); misfire off.
        List<RunRecord> runs = [Run(0, 10, "a", 10, 19.5), Run(1, 10, "b", 10, 11), Run(1, 20, "b", 20, 21)];
        var job = Job with { Misfire = false };
        var skewed = Timeline(30) with { ClockSkew = TimeSpan.FromMilliseconds(800) };
        Assert.True(HistoryChecker.Check(runs, [job], skewed).Ok);

        var report = HistoryChecker.Check(runs, [job], Timeline(30)); // without the skew the item was free at 20
        Assert.Contains("item 0 of fire 00:00:20.000", Assert.Single(report.Violations).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Fires_missed_in_a_row_are_owed_once_by_a_late_run_of_the_latest_but_an_on_time_run_in_between_breaks_the_row()
    {
        // Item 1 missed fires 10 and 20 (its owner was away); fire 20 was compensated late.
        List<RunRecord> runs = [Run(0, 10, "a", 10, 11), Run(0, 20, "a", 20, 21), Run(1, 20, "a", 25, 26, failover: true, kind: "FAILOVER")];
        Assert.True(HistoryChecker.Check(runs, [Job], Timeline(30)).Ok);

        List<RunRecord> broken = [Run(0, 10, "a", 10, 11), Run(0, 20, "a", 20, 21), Run(1, 20, "b", 20, 21), Run(1, 30, "a", 35, 36, failover: true, kind: "FAILOVER"), Run(0, 30, "a", 30, 31)];
        var report = HistoryChecker.Check(broken, [Job], Timeline(40));
        Assert.Contains("item 1 of fire 00:00:10.000", Assert.Single(report.Violations).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rerun_of_a_fire_that_is_not_marked_as_a_failover_is_misattributed()
    {
        List<RunRecord> runs = [Run(0, 10, "a", 10, 11, outcome: "cancelled"), Run(0, 10, "b", 12, 13), Run(1, 10, "b", 10, 11)];
        var report = HistoryChecker.Check(runs, [Job], Timeline(20));
        Assert.Equal(1, report.Misattributed);
        Assert.Contains(report.Violations, v => v.Rule == "rerun-not-failover");
    }

    [Fact]
    public void A_run_left_open_by_a_death_ends_at_the_death()
    {
        List<RunRecord> runs = [Run(0, 10, "a", 10, null, outcome: null), Run(0, 10, "b", 16, 17, failover: true, kind: "FAILOVER"), Run(1, 10, "b", 10, 11)];
        Assert.True(HistoryChecker.Check(runs, [Job], Timeline(20, deaths: [("a", At(12))])).Ok);
        Assert.Equal(1, HistoryChecker.Check(runs, [Job], Timeline(20)).Overlaps); // without the death it would still be running
    }
}
