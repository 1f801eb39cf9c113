using System.Text;
using ShardedJobs.Coordination;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.Tests.Runtime;

/// <summary>Leader election, lazy re-sharding and the assignment in the registry, over several instances on fake time.</summary>
public sealed class ShardingTests
{
    private const string Cron = "0/10 * * * * ?";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Three_instances_share_nine_items_as_ElasticJob_does_and_each_runs_once_per_fire()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("sync", Cron, 9);
        foreach (var id in new[] { "A", "B", "C" })
        {
            await cluster.StartNodeAsync(id, [job]);
        }

        var generations = new List<int>();
        for (var round = 0; round < 4; round++)
        {
            var fire = cluster.NextFire(Cron);
            await cluster.AdvanceToAsync(fire);
            await cluster.Log.WaitForEndedAsync(fire, 9);
            var ranOn = cluster.Log.AssertEachItemOnce(fire, 9);
            // Average allocation over the instances in descending id order: C, B, A (ElasticJob scenario 1).
            Assert.Equal(Expected("C:0,1,2 B:3,4,5 A:6,7,8"), ranOn);
            generations.Add((await cluster.Observer.ExistsAsync(new JobNodes("sync").Sharding, cancellationToken: Ct))!.Version);
        }

        // Sharded once: no spurious re-flagging afterwards (the stamp and the flag arrive as two events of one multi).
        Assert.Single(generations.Distinct());

        Assert.Equal(Expected("C:0,1,2 B:3,4,5 A:6,7,8"), await cluster.AssignmentAsync("sync", 9));
        var stamp = await cluster.Observer.GetAsync(new JobNodes("sync").Sharding, cancellationToken: Ct);
        Assert.Contains("\"instances\":[\"C\",\"B\",\"A\"]", Encoding.UTF8.GetString(stamp!.Data), StringComparison.Ordinal);
        Assert.Null(await cluster.Observer.ExistsAsync(new JobNodes("sync").ShardingNecessary, cancellationToken: Ct));
    }

    [Fact]
    public async Task A_joining_instance_changes_nothing_before_the_next_fire_then_gets_its_share()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("sync", Cron, 6);
        cluster.Script.Duration = _ => TimeSpan.FromSeconds(1);
        await cluster.StartNodeAsync("A", [job]);
        await cluster.StartNodeAsync("B", [job]);
        var first = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(1));
        await cluster.Log.WaitForEndedAsync(first, 6);
        Assert.Equal(Expected("B:0,1,2 A:3,4,5"), cluster.Log.AssertEachItemOnce(first, 6));

        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(3));
        await cluster.StartNodeAsync("C", [job]);
        await TestCluster.WaitUntilAsync(async () => await cluster.Observer.ExistsAsync(new JobNodes("sync").ShardingNecessary, cancellationToken: Ct) is not null, "the leader flags re-sharding");
        Assert.Equal(Expected("B:0,1,2 A:3,4,5"), await cluster.AssignmentAsync("sync", 6)); // lazy: nothing moves before the fire

        var second = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(second + TimeSpan.FromSeconds(1));
        await cluster.Log.WaitForEndedAsync(second, 6);
        Assert.Equal(Expected("C:0,1 B:2,3 A:4,5"), cluster.Log.AssertEachItemOnce(second, 6));
        Assert.Equal(Expected("C:0,1 B:2,3 A:4,5"), await cluster.AssignmentAsync("sync", 6));
        cluster.Log.AssertNoOverlap();
    }

    [Fact]
    public async Task A_gracefully_stopped_instance_leaves_at_once_and_the_next_fire_reshards_over_the_rest()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("sync", Cron, 9);
        var a = await cluster.StartNodeAsync("A", [job]);
        var b = await cluster.StartNodeAsync("B", [job]);
        var c = await cluster.StartNodeAsync("C", [job]);
        var first = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(first);
        await cluster.Log.WaitForEndedAsync(first, 9);

        await b.StopAsync();
        Assert.Null(await cluster.Observer.ExistsAsync(new JobNodes("sync").Instance("B"), cancellationToken: Ct));

        var second = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(second);
        await cluster.Log.WaitForEndedAsync(second, 9);
        // ElasticJob scenario 6: C [0,1,2,3,8], A [4,5,6,7].
        Assert.Equal(Expected("C:0,1,2,3,8 A:4,5,6,7"), cluster.Log.AssertEachItemOnce(second, 9));
        Assert.DoesNotContain(cluster.Log.Runs, r => r.Instance == "B" && r.FireTime == second);
        _ = (a, c);
    }

    [Fact]
    public async Task When_the_leader_is_lost_while_the_others_wait_for_its_sharding_a_new_leader_shards_and_every_item_runs_once()
    {
        await using var cluster = new TestCluster(sessionTimeout: TimeSpan.FromSeconds(3));
        var job = RecordingJob.Define("sync", Cron, 6);
        var a = await cluster.StartNodeAsync("A", [job]);
        await cluster.StartNodeAsync("B", [job]);
        await cluster.StartNodeAsync("C", [job]);
        await TestCluster.WaitUntilAsync(() => a.Job("sync").IsLeader, "A leads (it started first)");
        await TestCluster.WaitUntilAsync(async () => await cluster.Observer.ExistsAsync(new JobNodes("sync").ShardingNecessary, cancellationToken: Ct) is not null, "re-sharding flagged");

        // The leader is cut off just before the fire: its fire is skipped, B and C wait for a sharding that it never writes.
        var fire = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(fire - TimeSpan.FromSeconds(1));
        a.Embedded.Suspend();
        await cluster.AdvanceToAsync(fire);
        Assert.Empty(cluster.Log.For(fire));

        // Its session expires: B or C becomes leader inside its waiting fire, shards over the two of them, and both run.
        await cluster.AdvanceAsync(TimeSpan.FromSeconds(4));
        await cluster.Log.WaitForEndedAsync(fire, 6);
        var ranOn = cluster.Log.AssertEachItemOnce(fire, 6);
        Assert.Equal(Expected("C:0,1,2 B:3,4,5"), ranOn);
        Assert.Contains(cluster.Nodes.Skip(1), n => n.Job("sync").IsLeader);
    }

    [Fact]
    public async Task Items_of_a_reduced_count_are_removed_and_never_run()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("sync", Cron, 6);
        var a = await cluster.StartNodeAsync("A", [job]);
        await cluster.StartNodeAsync("B", [job]);
        var first = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(first);
        await cluster.Log.WaitForEndedAsync(first, 6);

        // An operator changes the count in the registry (the cluster's truth).
        var nodes = new JobNodes("sync");
        var config = JobNodeData.DecodeConfig(nodes.Config, (await cluster.Observer.GetAsync(nodes.Config, cancellationToken: Ct))!.Data);
        await cluster.Observer.SetAsync(nodes.Config, JobNodeData.Encode(config with { Shards = 4 }), cancellationToken: Ct);
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => n.Job("sync").Config.Shards == 4), "the new count reaches the instances");
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => n.Job("sync").View.ReshardingNecessary), "every instance sees the re-sharding flag");

        var second = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(second);
        await cluster.Log.WaitForEndedAsync(second, 4);
        await cluster.SettleAsync();
        cluster.Log.AssertEachItemOnce(second, 4);
        Assert.Null(await cluster.Observer.ExistsAsync(nodes.Item(4), cancellationToken: Ct));
        Assert.Null(await cluster.Observer.ExistsAsync(nodes.Item(5), cancellationToken: Ct));
        Assert.All(cluster.Log.For(second), r => Assert.Equal(4, r.TotalCount));
    }

    [Fact]
    public async Task Reconcile_flags_resharding_when_an_item_s_owner_is_not_live_and_the_next_fire_repairs_the_layout()
    {
        // ElasticJob scenario 32: an operator (or a bug) leaves an item owned by an instance that does not exist.
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("repair", Cron, 4) with { ReconcileIntervalMinutes = 1 };
        var a = await cluster.StartNodeAsync("A", [job]);
        await cluster.StartNodeAsync("B", [job]);
        var first = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(first);
        await cluster.Log.WaitForEndedAsync(first, 4);

        var nodes = new JobNodes("repair");
        await TestCluster.WaitUntilAsync(async () => await cluster.Observer.ExistsAsync(nodes.ItemRunning(3), cancellationToken: Ct) is null, "item 3 released");
        await cluster.Observer.SetAsync(nodes.ItemInstance(2), "ghost"u8.ToArray(), cancellationToken: Ct);
        await cluster.Observer.CreateAsync(nodes.ItemRunning(3), JobNodeData.Encode(new ItemMarker("ghost", first, "t")), cancellationToken: Ct);
        await cluster.AdvanceAsync(TimeSpan.FromSeconds(61), TimeSpan.FromSeconds(1));
        await TestCluster.WaitUntilAsync(() => a.Logs.GetSnapshot().Any(r => r.Message.Contains("reconcile repaired: item(s) 2 had no live owner", StringComparison.Ordinal)), "reconcile reports its repair");
        // The dead owner's marker never blocked item 3: the next fire took it over (or reconcile removed it first).
        Assert.Null(await cluster.Observer.ExistsAsync(nodes.ItemRunning(3), cancellationToken: Ct));
        Assert.Equal(cluster.Log.FireTimes().Count, cluster.Log.Runs.Count(r => r.Item == 3));

        var next = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(next);
        await cluster.Log.WaitForEndedAsync(next, 4);
        cluster.Log.AssertEachItemOnce(next, 4);
        Assert.DoesNotContain("ghost", (await cluster.AssignmentAsync("repair", 4)).Values);
    }

    [Fact]
    public async Task A_fire_that_waited_for_the_re_sharding_runs_the_items_it_gave_away_to_an_instance_that_does_not_run_that_fire()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("sync", Cron, 9);
        cluster.Script.Duration = _ => TimeSpan.FromSeconds(1);
        // The leader's clock is two seconds ahead: it runs each fire (and shards at it) before B does.
        var leader = await cluster.StartNodeAsync("C", [job], clockSkew: TimeSpan.FromSeconds(2));
        await cluster.StartNodeAsync("B", [job]);
        await TestCluster.WaitUntilAsync(() => leader.Job("sync").IsLeader, "C leads (it started first)");
        var first = cluster.NextFire(Cron);
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(3));
        await cluster.Log.WaitForEndedAsync(first, 9);
        Assert.Equal(Expected("C:0,1,2,3,8 B:4,5,6,7"), cluster.Log.AssertEachItemOnce(first, 9));

        // The leader has run the next fire; A joins, its clock past that fire already, so it runs only the later ones. The join
        // flags re-sharding, so B's fire waits for the leader, which shards at its following fire: C [0,1,2], B [3,4,5],
        // A [6,7,8]. B's items 6 and 7 of the waiting fire went to A, which never runs that fire, and C had run that fire
        // with the old assignment. Before the fix B ran only its new items (3 already run by C): 6 and 7 of it were lost.
        var fire = first + TimeSpan.FromSeconds(10);
        await cluster.AdvanceToAsync(fire - TimeSpan.FromSeconds(1.5));
        await cluster.StartNodeAsync("A", [job], clockSkew: TimeSpan.FromSeconds(2));
        await TestCluster.WaitUntilAsync(async () => await cluster.Observer.ExistsAsync(new JobNodes("sync").ShardingNecessary, cancellationToken: Ct) is not null, "the leader flags re-sharding");

        await cluster.RunUntilAsync(runs => runs.Count(r => r.FireTime == fire && r.Outcome == "ok") == 9, TimeSpan.FromSeconds(15), "every item of the waiting fire completes");
        cluster.Log.AssertEachItemOnce(fire, 9);
        Assert.Equal(Expected("C:0,1,2 B:3,4,5 A:6,7,8"), await cluster.AssignmentAsync("sync", 9));
        cluster.Log.AssertNoOverlap();
    }

    internal static Dictionary<int, string> Expected(string layout) =>
        layout.Split(' ')
            .SelectMany(part => part.Split(':')[1].Split(',').Select(item => (Item: int.Parse(item, System.Globalization.CultureInfo.InvariantCulture), Instance: part.Split(':')[0])))
            .ToDictionary(p => p.Item, p => p.Instance);
}
