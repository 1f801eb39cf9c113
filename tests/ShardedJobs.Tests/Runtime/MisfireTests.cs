using ShardedJobs.Coordination;
using ShardedJobs.TestSupport;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.Tests.Runtime;

/// <summary>Execution monitoring and misfire: an item never runs twice at once; a missed fire is caught up once, right after.</summary>
public sealed class MisfireTests
{
    private const string Every10s = "0/10 * * * * ?";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_overrunning_item_is_caught_up_once_right_after_it_ends_with_the_latest_missed_fire_time()
    {
        // ElasticJob scenario 19: cron every 10 s, the item takes 25 s, Misfire = true.
        await using var cluster = new TestCluster();
        cluster.Script.Duration = _ => TimeSpan.FromSeconds(25);
        await cluster.StartNodeAsync("A", [RecordingJob.Define("slow", Every10s, 1)]);

        var first = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(26));

        var runs = cluster.Log.Runs.OrderBy(r => r.Started).ToList();
        Assert.Equal(2, runs.Count);
        Assert.Equal(first, runs[0].FireTime);
        // The fires at +10 s and +20 s found it running: one catch-up, for the latest of them, as soon as the run ended.
        Assert.Equal(first + TimeSpan.FromSeconds(20), runs[1].FireTime);
        Assert.InRange(runs[1].Started - runs[0].Ended!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        Assert.Null(await cluster.Observer.ExistsAsync(new JobNodes("slow").ItemMisfire(0), cancellationToken: Ct));
        cluster.Log.AssertNoOverlap();
    }

    [Fact]
    public async Task Without_misfire_an_overrunning_item_runs_again_at_its_next_fire_time()
    {
        await using var cluster = new TestCluster();
        cluster.Script.Duration = _ => TimeSpan.FromSeconds(25);
        await cluster.StartNodeAsync("A", [RecordingJob.Define("slow", Every10s, 1) with { Misfire = false }]);

        var first = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(31));

        var runs = cluster.Log.Runs.OrderBy(r => r.Started).ToList();
        Assert.Equal([first, first + TimeSpan.FromSeconds(30)], runs.Select(r => r.FireTime));
        Assert.InRange(runs[1].Started - (first + TimeSpan.FromSeconds(30)), TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task Items_that_finished_start_on_time_while_a_slow_item_of_the_same_fire_is_still_running()
    {
        await using var cluster = new TestCluster();
        await cluster.StartNodeAsync("A", [RecordingJob.Define("mixed", Every10s, 3)]);
        var warmUp = cluster.NextFire(Every10s); // the first fire also shards
        await cluster.AdvanceToAsync(warmUp);
        await cluster.Log.WaitForEndedAsync(warmUp, 3);
        cluster.Script.Duration = shard => shard.Item == 0 ? TimeSpan.FromSeconds(15) : TimeSpan.FromSeconds(1);

        var first = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(11));
        var second = first + TimeSpan.FromSeconds(10);
        await cluster.Log.WaitForEndedAsync(second, 2);
        Assert.Equal([1, 2], cluster.Log.For(second).Select(r => r.Item));
        Assert.All(cluster.Log.For(second), r => Assert.InRange(r.Started - second, TimeSpan.Zero, TimeSpan.FromSeconds(1)));

        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(16));
        await cluster.Log.WaitUntilAsync(runs => runs.Any(r => r.Item == 0 && r.FireTime == second), "the catch-up of item 0 starts");
        var catchUp = Assert.Single(cluster.Log.Runs, r => r.Item == 0 && r.FireTime == second);
        var slowRun = Assert.Single(cluster.Log.For(first), r => r.Item == 0);
        Assert.InRange(catchUp.Started - slowRun.Ended!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        cluster.Log.AssertNoOverlap();
    }

    [Fact]
    public async Task An_item_moved_by_resharding_while_it_runs_starts_on_its_new_owner_only_after_the_old_run_ended()
    {
        // ElasticJob scenario 21: the leader does not wait for running items; the marker multi refuses the overlap instead.
        await using var cluster = new TestCluster();
        cluster.Script.Duration = shard => shard.Item == 0 && shard.InstanceId == "A" ? TimeSpan.FromSeconds(14) : TimeSpan.FromSeconds(1);
        await cluster.StartNodeAsync("A", [RecordingJob.Define("moving", Every10s, 2)]);
        var first = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(2));
        Assert.Equal([0, 1], cluster.Log.For(first).Select(r => r.Item));

        // B joins; with average allocation over [B, A] item 0 moves to B at the next fire while A still runs it.
        await cluster.StartNodeAsync("B", [RecordingJob.Define("moving", Every10s, 2)]);
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => n.Job("moving").View.ReshardingNecessary), "re-sharding flagged and seen");
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(16));

        var second = first + TimeSpan.FromSeconds(10);
        var moved = Assert.Single(cluster.Log.Runs, r => r.Item == 0 && r.FireTime == second);
        Assert.Equal("B", moved.Instance);
        var oldRun = Assert.Single(cluster.Log.For(first), r => r.Item == 0);
        Assert.InRange(moved.Started - oldRun.Ended!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(1)); // right after A's run ended, as a catch-up
        Assert.Equal("A", Assert.Single(cluster.Log.For(second), r => r.Item == 1).Instance);
        cluster.Log.AssertNoOverlap();
    }

    [Fact]
    public async Task Fires_that_find_an_item_running_elsewhere_arm_one_watch_for_its_end_not_one_each()
    {
        // As above, but A's run outlasts four of B's fires. Each found item 0 busy on A and armed a watch on its marker; when
        // the run ended every watch ran the catch-ups again, with their registry reads (hundreds at one instant in the fault
        // simulator's overloaded jobs). One watch answers for them all.
        await using var cluster = new TestCluster();
        cluster.Script.Duration = shard => shard.Item == 0 && shard.InstanceId == "A" ? TimeSpan.FromSeconds(44) : TimeSpan.FromSeconds(1);
        await cluster.StartNodeAsync("A", [RecordingJob.Define("moving", Every10s, 2)]);
        var first = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(2));

        var b = await cluster.StartNodeAsync("B", [RecordingJob.Define("moving", Every10s, 2)]);
        var marker = new JobNodes("moving").ItemRunning(0);
        var watches = 0;
        b.Registry.Faults = (operation, path) =>
        {
            if (operation == "exists" && path == marker)
            {
                Interlocked.Increment(ref watches);
            }

            return RegistryFault.None;
        };
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => n.Job("moving").View.ReshardingNecessary), "re-sharding flagged and seen");
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(46));

        var caughtUp = Assert.Single(cluster.Log.Runs, r => r.Item == 0 && r.Instance == "B");
        Assert.Equal(first + TimeSpan.FromSeconds(40), caughtUp.FireTime); // the latest of the fires it missed, once
        Assert.Equal(1, Volatile.Read(ref watches));
        cluster.Log.AssertNoOverlap();
    }

    [Fact]
    public async Task A_marker_left_by_an_instance_that_is_gone_never_blocks_the_item()
    {
        await using var cluster = new TestCluster();
        var nodes = new JobNodes("stale");
        await cluster.StartNodeAsync("A", [RecordingJob.Define("stale", Every10s, 2)]);
        // A crashed instance's evidence: a persistent marker naming an instance with no live registration.
        await cluster.Observer.CreateWithParentsAsync(nodes.ItemRunning(1), JobNodeData.Encode(new ItemMarker("ghost", TestCluster.Epoch, "ghost-task")), cancellationToken: Ct);

        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 2);
        cluster.Log.AssertEachItemOnce(fire, 2);
        await TestCluster.WaitUntilAsync(async () => await cluster.Observer.ExistsAsync(nodes.ItemRunning(1), cancellationToken: Ct) is null, "the marker is released");
        Assert.Contains(cluster.Nodes[0].Logs.GetSnapshot(), r => r.Message.Contains("took over the running marker of item 1", StringComparison.Ordinal));
    }
}
