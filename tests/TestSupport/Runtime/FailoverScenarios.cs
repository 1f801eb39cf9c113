using ShardedJobs.Coordination;
using Xunit;

namespace ShardedJobs.TestSupport.Runtime;

/// <summary>
/// The failover scenarios (issue "Failover", ElasticJob's §10), written once and run unchanged on the embedded registry with fake
/// time and on a real ZooKeeper server in real time (each test assembly derives one class per harness). The execution log is
/// the oracle: who ran which item for which fire time, from when to when.
/// <para>Timeline shared by the scenarios: cron every 15 s, 9 items over A, B, C (A leads: it starts first; average allocation
/// gives C [0,1,2], B [3,4,5], A [6,7,8]); the first fire shards, the second (F) is the one that is interrupted.</para>
/// </summary>
public abstract class FailoverScenarios
{
    protected const string Cron = "0/15 * * * * ?";
    protected const string Job = "fo";
    protected static readonly TimeSpan Long = TimeSpan.FromSeconds(10);
    protected static readonly TimeSpan Short = TimeSpan.FromSeconds(1);

    protected abstract Task<IClusterHarness> StartHarnessAsync();

    /// <summary>A crash detected by the registry: at most the session timeout plus the server's tick, plus a second for claiming.</summary>
    protected static TimeSpan DetectionBudget(IClusterHarness h) => h.SessionTimeout + h.TickTime + TimeSpan.FromSeconds(1);

    protected static ShardedJobDefinition Define(bool failover, bool monitorExecution, int shards = 9) =>
        RecordingJob.Define(Job, Cron, shards) with { Failover = failover, MonitorExecution = monitorExecution };

    protected static async Task<(TestNode A, TestNode B, TestNode C)> StartThreeAsync(IClusterHarness h, bool failover, bool monitorExecution = true)
    {
        var job = Define(failover, monitorExecution);
        void Configure(ShardedJobsOptions o) => o.Jobs[Job] = new JobOptions { MaxConcurrency = 9 };
        var a = await h.StartNodeAsync("A", [job], Configure);
        var b = await h.StartNodeAsync("B", [job], Configure);
        var c = await h.StartNodeAsync("C", [job], Configure);
        return (a, b, c);
    }

    /// <summary>Waits for a fire on the settled C/B/A layout, then sets the next fire's durations; returns that fire's time.</summary>
    protected static async Task<DateTimeOffset> InterruptedFireAsync(IClusterHarness h, int[]? longItems = null, Func<ShardContext, TimeSpan>? duration = null)
    {
        DateTimeOffset? settled = null;
        await h.RunUntilAsync(runs =>
        {
            settled = runs.GroupBy(r => r.FireTime)
                .Where(g => g.Count() == 9 && g.All(r => r.Outcome is not null) && SameLayout(g, Layout("C:0,1,2 B:3,4,5 A:6,7,8")))
                .Select(g => (DateTimeOffset?)g.Key).Max();
            return settled is not null;
        }, TimeSpan.FromSeconds(50), "a fire on the C/B/A layout");
        var fire = settled!.Value + TimeSpan.FromSeconds(15);
        h.Script.Duration = shard => shard.FireTime != fire ? Short
            : duration is not null ? duration(shard)
            : longItems!.Contains(shard.Item) ? Long : Short;
        await h.AdvanceToAsync(fire + TimeSpan.FromMilliseconds(500));
        await h.RunUntilAsync(runs => runs.Count(r => r.FireTime == fire) == 9, TimeSpan.FromSeconds(2), "the fire starts every item");
        return fire;
    }

    protected static List<ItemRun> Compensations(IReadOnlyList<ItemRun> runs, DateTimeOffset fire) =>
        [.. runs.Where(r => r.IsFailover && r.FireTime == fire).OrderBy(r => r.Started)];

    protected static int Ended(IReadOnlyList<ItemRun> runs, DateTimeOffset fire) =>
        runs.Where(r => r.FireTime == fire && r.Outcome is not null).Select(r => r.Item).Distinct().Count();

    protected static bool SameLayout(IEnumerable<ItemRun> runs, Dictionary<int, string> layout) =>
        runs.All(r => layout.TryGetValue(r.Item, out var owner) && owner == r.Instance);

    protected static Dictionary<int, string> Layout(string layout) =>
        layout.Split(' ')
            .SelectMany(part => part.Split(':')[1].Split(',').Select(item => (Item: int.Parse(item, System.Globalization.CultureInfo.InvariantCulture), Instance: part.Split(':')[0])))
            .ToDictionary(p => p.Item, p => p.Instance);

    protected static async Task AssertNoEvidenceNamingAsync(IClusterHarness h, string instance)
    {
        var nodes = new JobNodes(Job);
        for (var item = 0; item < 9; item++)
        {
            foreach (var path in new[] { nodes.ItemRunning(item), nodes.ItemFailover(item) })
            {
                var data = await h.Observer.GetStringAsync(path);
                Assert.False(data?.Contains($"\"{instance}\"", StringComparison.Ordinal) == true, $"{path} still names {instance}: {data}");
            }
        }

        Assert.Null(await h.Observer.ExistsAsync(nodes.Progress(instance)));
    }
}

/// <summary>A crash: of a member, of the leader, of two members at once, of a member whose session outlives the next fire.</summary>
public abstract class FailoverCrashesScenarios : FailoverScenarios
{
    [Fact]
    public async Task A_crashed_instance_s_unfinished_items_are_compensated_at_once_with_the_original_fire_time_and_the_next_fire_reshards()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, _) = await StartThreeAsync(h, failover: true);
        var fire = await InterruptedFireAsync(h, longItems: [4, 5]);

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        var crashedAt = h.Now;
        await h.CrashAsync(b);

        var started = await h.RunUntilAsync(runs => Compensations(runs, fire).Count == 2, DetectionBudget(h), "B's items 4 and 5 compensated");
        var compensations = Compensations(h.Log.Runs, fire);
        Assert.Equal([4, 5], compensations.Select(r => r.Item).Order());
        Assert.All(compensations, r => Assert.Contains(r.Instance, new[] { "A", "C" }));
        Assert.All(compensations, r => Assert.InRange(r.Started - crashedAt, TimeSpan.Zero, DetectionBudget(h)));
        // Item 3 finished before the crash: it is never compensated.
        Assert.Single(h.Log.For(fire, Job), r => r.Item == 3);

        var next = fire + TimeSpan.FromSeconds(15);
        await h.RunUntilAsync(runs => Ended(runs, next) == 9 && runs.Where(r => r.IsFailover).All(r => r.Outcome is not null), TimeSpan.FromSeconds(30), "the next fire and the compensations end");
        Assert.Equal(Layout("C:0,1,2,3,8 A:4,5,6,7"), h.Log.AssertEachItemOnce(next, 9, Job));
        Assert.Equal(2, h.Log.For(fire, Job).Count(r => r.IsFailover && r.Outcome == "ok"));
        h.Log.AssertNoOverlap();
        await AssertNoEvidenceNamingAsync(h, "B");
    }

    [Fact]
    public async Task When_the_crashed_instance_was_the_leader_a_new_leader_takes_over_and_its_items_are_compensated()
    {
        await using var h = await StartHarnessAsync();
        var (a, _, _) = await StartThreeAsync(h, failover: true);
        Assert.True(a.Job(Job).IsLeader);
        var fire = await InterruptedFireAsync(h, longItems: [7, 8]);

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        await h.CrashAsync(a);
        await h.RunUntilAsync(runs => Compensations(runs, fire).Count == 2, DetectionBudget(h), "A's items 7 and 8 compensated");
        Assert.Equal([7, 8], Compensations(h.Log.Runs, fire).Select(r => r.Item).Order());
        Assert.Contains(h.Nodes.Where(n => n != a), n => n.Job(Job).IsLeader);

        var next = fire + TimeSpan.FromSeconds(15);
        await h.RunUntilAsync(runs => Ended(runs, next) == 9, TimeSpan.FromSeconds(30), "the next fire ends");
        Assert.Equal(Layout("C:0,1,2,3,8 B:4,5,6,7"), h.Log.AssertEachItemOnce(next, 9, Job));
        h.Log.AssertNoOverlap();
    }

    [Fact]
    public async Task When_two_instances_crash_at_once_the_survivor_compensates_all_their_unfinished_items()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, c) = await StartThreeAsync(h, failover: true);
        var fire = await InterruptedFireAsync(h, longItems: [1, 2, 4, 5]);

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        await Task.WhenAll(h.CrashAsync(b), h.CrashAsync(c));
        await h.RunUntilAsync(runs => Compensations(runs, fire).Count == 4, DetectionBudget(h), "items 1, 2, 4, 5 compensated");
        Assert.All(Compensations(h.Log.Runs, fire), r => Assert.Equal("A", r.Instance));
        Assert.Equal([1, 2, 4, 5], Compensations(h.Log.Runs, fire).Select(r => r.Item).Order());

        var next = fire + TimeSpan.FromSeconds(15);
        await h.RunUntilAsync(runs => Ended(runs, next) == 9, TimeSpan.FromSeconds(30), "the next fire ends");
        Assert.Equal(Layout("A:0,1,2,3,4,5,6,7,8"), h.Log.AssertEachItemOnce(next, 9, Job));
        h.Log.AssertNoOverlap();
    }

    [Fact]
    public async Task An_item_still_running_when_its_owner_s_session_outlived_the_next_fire_is_compensated_for_both_fires()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, _) = await StartThreeAsync(h, failover: true);
        // B's item 4 runs 20 s of fire F; B crashes a second before the next fire, which its session outlives.
        var fire = await InterruptedFireAsync(h, duration: shard => shard.Item == 4 ? TimeSpan.FromSeconds(20) : Short);
        var next = fire + TimeSpan.FromSeconds(15);
        h.Script.Duration = _ => Short;
        await h.AdvanceToAsync(next - TimeSpan.FromSeconds(1));
        await h.CrashAsync(b);

        // Item 4: compensated for F, then for the next fire (which B, alive, would have run as a misfire right after);
        // items 3 and 5, which B never started for the next fire, for that fire.
        await h.RunUntilAsync(runs => Compensations(runs, next).Count(r => r.Outcome is not null) == 3, DetectionBudget(h) + TimeSpan.FromSeconds(4),
            "item 4 compensated for both fires, items 3 and 5 for the next");
        var first = Assert.Single(Compensations(h.Log.Runs, fire));
        Assert.Equal(4, first.Item);
        Assert.Equal([3, 4, 5], Compensations(h.Log.Runs, next).Select(r => r.Item).Order());
        var second = Assert.Single(Compensations(h.Log.Runs, next), r => r.Item == 4);
        Assert.True(second.Started >= first.Ended, "the missed fire of item 4 runs after the interrupted one");
        await h.RunUntilAsync(runs => Ended(runs, next) == 9, TimeSpan.FromSeconds(10), "every item of the next fire ends");
        h.Log.AssertEachItemOnce(next, 9, Job);
        Assert.Single(h.Log.For(fire, Job), r => r.Item == 4 && r.Outcome == "ok");
        h.Log.AssertNoOverlap();
        await AssertNoEvidenceNamingAsync(h, "B");
    }
}

/// <summary>Failover of a failover, enquiry when every survivor is busy, failover off.</summary>
public abstract class FailoverCascadesScenarios : FailoverScenarios
{
    [Fact]
    public async Task When_the_compensating_instance_crashes_too_the_last_one_compensates_with_the_original_fire_time()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, _) = await StartThreeAsync(h, failover: true);
        var fire = await InterruptedFireAsync(h, longItems: [4, 5]);

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        await h.CrashAsync(b);
        await h.RunUntilAsync(runs => Compensations(runs, fire).Count == 2, DetectionBudget(h), "B's items claimed");
        var claimant = h.Nodes.Single(n => n.InstanceId == Compensations(h.Log.Runs, fire)[0].Instance);
        var last = h.Nodes.Single(n => n.InstanceId is "A" or "C" && n != claimant);

        await h.AdvanceToAsync(h.Now + TimeSpan.FromSeconds(1));
        await h.CrashAsync(claimant);
        await h.RunUntilAsync(runs => Compensations(runs, fire).Count(r => r.Instance == last.InstanceId) == 2, DetectionBudget(h),
            "the last instance compensates items 4 and 5 again");
        await h.RunUntilAsync(runs => Compensations(runs, fire).All(r => r.Outcome is not null), TimeSpan.FromSeconds(30), "compensations end");

        // Each of B's items completed exactly once overall, for the interrupted fire; nothing names a dead instance afterwards.
        foreach (var item in new[] { 4, 5 })
        {
            Assert.Single(h.Log.For(fire, Job), r => r.Item == item && r.Outcome == "ok");
            Assert.Single(h.Log.For(fire, Job), r => r.Item == item && r.Instance == last.InstanceId && r.IsFailover);
        }

        h.Log.AssertNoOverlap();
        await AssertNoEvidenceNamingAsync(h, "B");
        await AssertNoEvidenceNamingAsync(h, claimant.InstanceId);
    }

    [Fact]
    public async Task When_every_survivor_is_busy_the_first_to_finish_claims_all_waiting_items_at_once()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, _) = await StartThreeAsync(h, failover: true);
        // ElasticJob scenario 12: A's items take 8 s, C's 12 s, B's 10 s; B dies at 2 s while both survivors are busy.
        var fire = await InterruptedFireAsync(h, duration: shard => shard.InstanceId switch
        {
            "A" => TimeSpan.FromSeconds(8),
            "C" => TimeSpan.FromSeconds(12),
            _ => Long,
        });

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        await h.CrashAsync(b);
        await h.RunUntilAsync(runs => Compensations(runs, fire).Count == 3, TimeSpan.FromSeconds(9), "B's three items claimed by enquiry");
        var aEnded = h.Log.For(fire, Job).Where(r => r.Instance == "A" && !r.IsFailover).Max(r => r.Ended)!.Value;
        var compensations = Compensations(h.Log.Runs, fire);
        Assert.All(compensations, r => Assert.Equal("A", r.Instance));
        Assert.All(compensations, r => Assert.InRange(r.Started - aEnded, TimeSpan.Zero, TimeSpan.FromSeconds(1)));
        h.Log.AssertNoOverlap();
    }

    [Fact]
    public async Task Without_failover_nothing_is_compensated_and_the_next_fire_reshards_unblocked()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, _) = await StartThreeAsync(h, failover: false);
        var fire = await InterruptedFireAsync(h, longItems: [4, 5]);

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        await h.CrashAsync(b);
        var next = fire + TimeSpan.FromSeconds(15);
        await h.RunUntilAsync(runs => Ended(runs, next) == 9, TimeSpan.FromSeconds(30), "the next fire ends");
        Assert.DoesNotContain(h.Log.Runs, r => r.IsFailover);
        Assert.Equal(Layout("C:0,1,2,3,8 A:4,5,6,7"), h.Log.AssertEachItemOnce(next, 9, Job));
        await AssertNoEvidenceNamingAsync(h, "B");
    }
}

/// <summary>Monitoring off, a partition with self-fencing, total loss and restart, a graceful stop.</summary>
public abstract class FailoverBoundariesScenarios : FailoverScenarios
{
    [Fact]
    public async Task Without_execution_monitoring_failover_has_no_evidence_and_compensates_nothing()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, _) = await StartThreeAsync(h, failover: true, monitorExecution: false);
        var fire = await InterruptedFireAsync(h, longItems: [4, 5]);

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        await h.CrashAsync(b);
        var next = fire + TimeSpan.FromSeconds(15);
        await h.RunUntilAsync(runs => Ended(runs, next) == 9, TimeSpan.FromSeconds(30), "the next fire ends");
        Assert.DoesNotContain(h.Log.Runs, r => r.IsFailover);
        h.Log.AssertEachItemOnce(next, 9, Job);
    }

    [Fact]
    public async Task A_partitioned_instance_fences_itself_before_its_session_expires_so_the_compensation_does_not_overlap_and_it_rejoins()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, _) = await StartThreeAsync(h, failover: true);
        var fire = await InterruptedFireAsync(h, longItems: [4, 5]);

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        var cutAt = h.Now;
        await h.CutAsync(b);
        await h.RunUntilAsync(runs => runs.Count(r => r.Instance == "B" && r.FireTime == fire && r.Outcome == "cancelled") == 2, h.SessionTimeout,
            "B cancels its running items before its session can expire");
        var fenced = h.Log.For(fire, Job).Where(r => r.Instance == "B" && r.Outcome == "cancelled").ToList();
        Assert.All(fenced, r => Assert.True(r.Ended - cutAt < h.SessionTimeout, $"fenced after {r.Ended - cutAt}"));

        await h.RunUntilAsync(runs => Compensations(runs, fire).Count == 2, DetectionBudget(h), "B's items compensated after its session expired");
        h.Log.AssertNoOverlap(); // the fenced runs ended before the compensations started

        await h.RestoreAsync(b);
        var next = fire + TimeSpan.FromSeconds(15);
        await h.RunUntilAsync(runs => Ended(runs, next) == 9, TimeSpan.FromSeconds(30), "the next fire ends");
        Assert.Contains(h.Log.For(next, Job), r => r.Instance == "B"); // it registered afresh and took part in the sharding
        h.Log.AssertEachItemOnce(next, 9, Job);
    }

    [Fact]
    public async Task After_every_instance_died_the_restarted_ones_compensate_what_was_interrupted_once()
    {
        // ElasticJob scenario 15: two instances, 4 items of 30 s; both killed at 5 s, both restarted 2 s later.
        await using var h = await StartHarnessAsync();
        var job = Define(failover: true, monitorExecution: true, shards: 4);
        var a = await h.StartNodeAsync("A", [job], o => o.Jobs[Job] = new JobOptions { MaxConcurrency = 9 });
        var b = await h.StartNodeAsync("B", [job], o => o.Jobs[Job] = new JobOptions { MaxConcurrency = 9 });
        var first = await h.RunUntilAsync(runs => runs.Count(r => r.Outcome is not null) >= 4, TimeSpan.FromSeconds(40), "a first fire");
        var fire = h.Log.Runs.Max(r => r.FireTime) + TimeSpan.FromSeconds(15);
        h.Script.Duration = shard => shard.FireTime == fire ? TimeSpan.FromSeconds(30) : Short;
        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(5));
        await h.RunUntilAsync(runs => runs.Count(r => r.FireTime == fire) == 4, TimeSpan.FromSeconds(5), "the interrupted fire started");

        await Task.WhenAll(h.CrashAsync(a), h.CrashAsync(b));
        var crashedAt = h.Now;
        await h.AdvanceToAsync(crashedAt + TimeSpan.FromSeconds(2));
        await h.StartNodeAsync("A2", [job], o => o.Jobs[Job] = new JobOptions { MaxConcurrency = 9 });
        await h.StartNodeAsync("B2", [job], o => o.Jobs[Job] = new JobOptions { MaxConcurrency = 9 });

        await h.RunUntilAsync(runs => Compensations(runs, fire).Count == 4, h.SessionTimeout + h.TickTime + TimeSpan.FromSeconds(5), "all 4 items compensated");
        Assert.Equal([0, 1, 2, 3], Compensations(h.Log.Runs, fire).Select(r => r.Item).Order());
        Assert.All(Compensations(h.Log.Runs, fire), r => Assert.Contains(r.Instance, new[] { "A2", "B2" }));
        _ = first;
    }

    [Fact]
    public async Task An_instance_that_died_just_before_a_fire_has_its_assigned_items_compensated_for_that_fire()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, _) = await StartThreeAsync(h, failover: true);
        var fire = await InterruptedFireAsync(h, longItems: []);
        var next = fire + TimeSpan.FromSeconds(15);

        // B dies a second before the next fire: it never starts it, and its session outlives the fire time.
        await h.AdvanceToAsync(next - TimeSpan.FromSeconds(1));
        await h.CrashAsync(b);
        await h.RunUntilAsync(runs => Compensations(runs, next).Count == 3, DetectionBudget(h) + TimeSpan.FromSeconds(1),
            "B's assigned items compensated for the fire it never started");
        Assert.Equal([3, 4, 5], Compensations(h.Log.Runs, next).Select(r => r.Item).Order());
        await h.RunUntilAsync(runs => Ended(runs, next) == 9, TimeSpan.FromSeconds(10), "every item of that fire ends");
        h.Log.AssertEachItemOnce(next, 9, Job);
    }

    [Fact]
    public async Task An_item_cut_short_by_a_graceful_stop_is_compensated_within_a_second_without_waiting_for_the_session_timeout()
    {
        await using var h = await StartHarnessAsync();
        var (_, b, _) = await StartThreeAsync(h, failover: true);
        var fire = await InterruptedFireAsync(h, longItems: [4, 5]);

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        var stopping = h.Now;
        await b.StopAsync();
        await h.RunUntilAsync(runs => Compensations(runs, fire).Count == 2, TimeSpan.FromSeconds(1), "B's cancelled items compensated");
        Assert.All(h.Log.For(fire, Job).Where(r => r.Instance == "B" && r.Item is 4 or 5), r => Assert.Equal("cancelled", r.Outcome));
        Assert.All(Compensations(h.Log.Runs, fire), r => Assert.True(r.Started - stopping < TimeSpan.FromSeconds(1)));
        h.Log.AssertNoOverlap();
    }
}
