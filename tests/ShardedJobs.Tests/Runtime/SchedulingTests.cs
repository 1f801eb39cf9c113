using ShardedJobs.Coordination;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.Tests.Runtime;

/// <summary>One instance: fires at the cron times with the right context, once per item.</summary>
public sealed class SchedulingTests
{
    private const string EveryTenSeconds = "0/10 * * * * ?";

    [Fact]
    public async Task Each_fire_runs_every_item_once_with_its_context()
    {
        await using var cluster = new TestCluster();
        var job = RecordingJob.Define("orders", EveryTenSeconds, 3) with { ItemParameters = "0=Beijing, 1 = Shanghai ,2=Guangzhou", JobParameter = "full" };
        await cluster.StartNodeAsync("A", [job]);

        var fire = cluster.NextFire(EveryTenSeconds);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 3);

        var runs = cluster.Log.For(fire);
        Assert.Equal([0, 1, 2], runs.Select(r => r.Item));
        Assert.Equal(["Beijing", "Shanghai", "Guangzhou"], runs.Select(r => r.Parameter));
        Assert.All(runs, r =>
        {
            Assert.Equal("A", r.Instance);
            Assert.Equal("full", r.JobParameter);
            Assert.Equal(3, r.TotalCount);
            Assert.False(r.IsFailover);
            Assert.Equal(fire, r.FireTime);
        });
        Assert.Single(runs.Select(r => r.TaskId).Distinct());

        var second = cluster.NextFire(EveryTenSeconds);
        await cluster.AdvanceToAsync(second);
        await cluster.Log.WaitForEndedAsync(second, 3);
        Assert.Equal(TimeSpan.FromSeconds(10), second - fire);
        Assert.NotEqual(runs[0].TaskId, cluster.Log.For(second)[0].TaskId);
        cluster.Log.AssertEachItemOnce(second, 3);
    }
}
