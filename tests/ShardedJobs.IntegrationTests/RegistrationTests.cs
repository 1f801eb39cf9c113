using ShardedJobs.Coordination;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.IntegrationTests;

/// <summary>An instance's registration on a real ZooKeeper server, whose watches arrive after the writes they report.</summary>
public sealed class RegistrationTests
{
    private const string Job = "registration";

    [Fact]
    public async Task Starting_instances_do_not_take_a_view_that_has_not_seen_their_registration_yet_for_a_deleted_one()
    {
        await using var h = await ZooKeeperTestCluster.StartAsync();
        var job = RecordingJob.Define(Job, "0/5 * * * * ?", 3) with { Failover = true, MonitorExecution = true };
        var nodes = new List<TestNode>();
        foreach (var id in new[] { "A", "B", "C" })
        {
            nodes.Add(await h.StartNodeAsync(id, [job]));
        }

        // Each start changes every view a few times (config, servers, instances, the re-sharding flag). Before the fix an
        // instance whose view had not yet seen its own node (or that had not registered yet) "restored" its registration on
        // such a change: early, ahead of its predecessor check, and with a warning each time.
        await Task.Delay(TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);
        Assert.All(nodes, node => Assert.DoesNotContain(node.Logs.GetSnapshot(), r => r.Id.Id == 3018));

        var b = nodes[1];
        var path = new JobNodes(Job).Instance(b.InstanceId);
        await h.Observer.DeleteAsync(path, cancellationToken: TestContext.Current.CancellationToken);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (await h.Observer.ExistsAsync(path, cancellationToken: TestContext.Current.CancellationToken) is null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.NotNull(await h.Observer.ExistsAsync(path, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Single(b.Logs.GetSnapshot(), r => r.Id.Id == 3018);
    }
}
