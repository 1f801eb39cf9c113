using ShardedJobs.Coordination;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.Tests.Runtime;

/// <summary><see cref="IJobOperator"/>: trigger, disable/enable job, server, instance and item, shutdown here, status.</summary>
public sealed class OperatorTests
{
    private const string Hourly = "0 0 * * * ?";
    private const string Every10s = "0/10 * * * * ?";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Trigger_runs_every_instance_s_items_now()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("manual", Hourly, 4);
        var a = await cluster.StartNodeAsync("A", [job]);
        await cluster.StartNodeAsync("B", [job]);

        await cluster.AdvanceAsync(TimeSpan.FromSeconds(1));
        await a.Operator.TriggerAsync("manual", Ct);
        await cluster.Log.WaitUntilAsync(runs => runs.Count(r => r.Outcome is not null) == 4, "four manual runs");
        var fireTime = Assert.Single(cluster.Log.FireTimes());
        Assert.Equal(Expected("B:0,1 A:2,3"), cluster.Log.AssertEachItemOnce(fireTime, 4));
        Assert.Equal(cluster.Time.GetUtcNow(), fireTime, TimeSpan.FromSeconds(1));
        await TestCluster.WaitUntilAsync(async () => await cluster.Observer.GetChildrenAsync(new JobNodes("manual").TriggerRoot, cancellationToken: Ct) is not { Count: > 0 }, "trigger nodes consumed");
    }

    [Fact]
    public async Task A_disabled_item_runs_nowhere_until_enabled_without_misfire_or_reassignment()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("items", Every10s, 6);
        var a = await cluster.StartNodeAsync("A", [job]);
        await cluster.StartNodeAsync("B", [job]);
        var first = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(first);
        await cluster.Log.WaitForEndedAsync(first, 6);
        var layout = await cluster.AssignmentAsync("items", 6);

        await a.Operator.DisableItemAsync("items", 3, Ct);
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => n.Job("items").View.DisabledItems.Contains(3)), "all see item 3 disabled");
        var second = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(second);
        await cluster.Log.WaitForEndedAsync(second, 5);
        await cluster.SettleAsync();
        Assert.Equal([0, 1, 2, 4, 5], cluster.Log.For(second).Select(r => r.Item));
        Assert.Equal(layout, await cluster.AssignmentAsync("items", 6));
        Assert.Null(await cluster.Observer.ExistsAsync(new JobNodes("items").ItemMisfire(3), cancellationToken: Ct));

        await a.Operator.EnableItemAsync("items", 3, Ct);
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => !n.Job("items").View.DisabledItems.Contains(3)), "all see item 3 enabled");
        var third = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(third);
        await cluster.Log.WaitForEndedAsync(third, 6);
        cluster.Log.AssertEachItemOnce(third, 6);
        Assert.Equal(2, cluster.Log.Runs.Count(r => r.Item == 3));
    }

    [Fact]
    public async Task Disabling_the_leader_s_server_moves_leadership_and_its_items_until_enabled_again()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("servers", Every10s, 6);
        var a = await cluster.StartNodeAsync("A", [job], serverIp: "10.0.0.1");
        var b = await cluster.StartNodeAsync("B", [job], serverIp: "10.0.0.2");
        await cluster.StartNodeAsync("C", [job], serverIp: "10.0.0.3");
        await TestCluster.WaitUntilAsync(() => a.Job("servers").IsLeader, "A leads");

        await b.Operator.DisableServerAsync("servers", "10.0.0.1", Ct);
        await TestCluster.WaitUntilAsync(() => !a.Job("servers").IsLeader && cluster.Nodes.Skip(1).Any(n => n.Job("servers").IsLeader), "leadership moves off the disabled server");
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => n.Job("servers").View.ReshardingNecessary), "re-sharding flagged");
        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 6);
        Assert.Equal(Expected("C:0,1,2 B:3,4,5"), cluster.Log.AssertEachItemOnce(fire, 6));

        await b.Operator.EnableServerAsync("servers", "10.0.0.1", Ct);
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => n.Job("servers").View.ReshardingNecessary), "re-sharding flagged again");
        var next = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(next);
        await cluster.Log.WaitForEndedAsync(next, 6);
        Assert.Equal(Expected("C:0,1 B:2,3 A:4,5"), cluster.Log.AssertEachItemOnce(next, 6));
    }

    [Fact]
    public async Task A_disabled_instance_runs_nothing_and_a_restart_with_the_server_disabled_keeps_it_disabled()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("instances", Every10s, 4);
        var a = await cluster.StartNodeAsync("A", [job], serverIp: "10.0.0.1");
        await cluster.StartNodeAsync("B", [job], serverIp: "10.0.0.2");

        await a.Operator.DisableInstanceAsync("instances", "B", Ct);
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => n.Job("instances").View.ReshardingNecessary), "re-sharding flagged");
        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 4);
        Assert.Equal(Expected("A:0,1,2,3"), cluster.Log.AssertEachItemOnce(fire, 4));
        var status = await a.Operator.GetStatusAsync("instances", Ct);
        Assert.True(Assert.Single(status.Instances, i => i.InstanceId == "B").Disabled);

        // ElasticJob pitfall 22: a restart must not re-enable a server an operator disabled.
        await a.Operator.DisableServerAsync("instances", "10.0.0.1", Ct);
        await a.StopAsync();
        var restarted = await cluster.StartNodeAsync("A2", [job], serverIp: "10.0.0.1");
        var after = await restarted.Operator.GetStatusAsync("instances", Ct);
        Assert.False(Assert.Single(after.Servers, s => s.ServerIp == "10.0.0.1").Enabled);
    }

    [Fact]
    public async Task A_disabled_job_fires_nowhere_until_enabled()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("paused", Every10s, 2);
        var a = await cluster.StartNodeAsync("A", [job]);
        await a.Operator.DisableJobAsync("paused", Ct);
        await TestCluster.WaitUntilAsync(() => a.Job("paused").Config.Disabled, "the job is disabled");
        await cluster.AdvanceAsync(TimeSpan.FromSeconds(25));
        Assert.Empty(cluster.Log.Runs);

        await a.Operator.EnableJobAsync("paused", Ct);
        await TestCluster.WaitUntilAsync(() => !a.Job("paused").Config.Disabled, "the job is enabled");
        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 2);
        Assert.True((await a.Operator.GetStatusAsync("paused", Ct)).Disabled is false);
    }

    [Fact]
    public async Task Shutting_a_job_down_on_one_instance_hands_its_items_to_the_others_and_leaves_the_other_jobs_running()
    {
        await using var cluster = new TestCluster();
        var one = RecordingJob.Define("one", Every10s, 2);
        var two = RecordingJob.Define("two", Every10s, 2);
        var a = await cluster.StartNodeAsync("A", [one, two]);
        await cluster.StartNodeAsync("B", [one, two]);

        await a.Operator.ShutdownAsync("one", Ct);
        Assert.True(a.Job("one").IsShutDown);
        await TestCluster.WaitUntilAsync(() => cluster.Nodes[1].Job("one").View.ReshardingNecessary, "B sees re-sharding for 'one'");
        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 4);
        Assert.Equal(Expected("B:0,1"), cluster.Log.AssertEachItemOnce(fire, 2, "one"));
        Assert.Equal(Expected("B:0 A:1"), cluster.Log.AssertEachItemOnce(fire, 2, "two"));
        Assert.Null((await a.Operator.GetStatusAsync("one", Ct)).NextFireTime);
    }

    [Fact]
    public async Task Status_shows_leader_instances_servers_and_every_item_with_its_markers()
    {
        await using var cluster = new TestCluster();
        cluster.Script.Duration = shard => shard.Item == 0 ? TimeSpan.FromSeconds(30) : TimeSpan.Zero;
        var job = RecordingJob.Define("seen", Every10s, 3) with { ItemParameters = "0=a,2=c" };
        var a = await cluster.StartNodeAsync("A", [job], serverIp: "10.0.0.1");
        await cluster.StartNodeAsync("B", [job], serverIp: "10.0.0.2");
        await a.Operator.DisableItemAsync("seen", 2, Ct);
        var first = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(first + TimeSpan.FromSeconds(10));
        await TestCluster.WaitUntilAsync(async () => (await a.Operator.GetStatusAsync("seen", Ct)).Items[0].Misfire, "item 0 misfired");

        var status = await a.Operator.GetStatusAsync("seen", Ct);
        Assert.Equal("seen", status.JobName);
        Assert.Equal(Every10s, status.Cron);
        Assert.Equal(3, status.Shards);
        Assert.Equal("A", status.Leader);
        Assert.False(status.ReshardingPending);
        Assert.Equal(["A", "B"], status.Instances.Select(i => i.InstanceId));
        Assert.True(status.Instances[0].IsLeader && status.Instances[0].IsThisInstance);
        Assert.Equal(["10.0.0.1", "10.0.0.2"], status.Servers.Where(s => s.Enabled).Select(s => s.ServerIp));
        Assert.Equal(first + TimeSpan.FromSeconds(20), status.NextFireTime);

        var item0 = status.Items[0];
        Assert.Equal("B", item0.Instance);
        Assert.Equal("a", item0.Parameter);
        Assert.Equal("B", item0.Running?.Instance);
        Assert.Equal(first, item0.Running?.FireTime);
        Assert.True(item0.Misfire);
        Assert.Null(status.Items[1].Running);
        Assert.True(status.Items[2].Disabled);
        Assert.Equal("c", status.Items[2].Parameter);
    }

    [Fact]
    public async Task Operations_name_what_is_wrong()
    {
        await using var cluster = new TestCluster();
        var a = await cluster.StartNodeAsync("A", [RecordingJob.Define("known", Hourly, 2)]);
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => a.Operator.TriggerAsync("nope", Ct));
        Assert.Contains("'nope'", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("known", unknown.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => a.Operator.DisableItemAsync("known", 2, Ct));
        var server = await Assert.ThrowsAsync<ArgumentException>(() => a.Operator.DisableServerAsync("known", "192.0.2.7", Ct));
        Assert.Contains("192.0.2.7", server.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => a.Operator.DisableInstanceAsync("known", "ghost", Ct));
        Assert.Equal(["known"], a.Operator.JobNames);
    }

    private static Dictionary<int, string> Expected(string layout) => ShardingTests.Expected(layout);
}
