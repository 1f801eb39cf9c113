using ShardedJobs.Coordination;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.Tests.Runtime;

/// <summary>
/// Design §3.4: a trigger on a stable cluster costs a small constant number of registry round trips per instance, whatever the
/// number of items (this counts requests, which is exact and does not depend on timing; bench/ measures the same on ZooKeeper).
/// </summary>
public sealed class CoordinationCostTests
{
    private const string Every10s = "0/10 * * * * ?";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(100)]
    public async Task A_fire_on_a_stable_cluster_costs_at_most_four_round_trips_per_instance_whatever_the_item_count(int shards)
    {
        await using var cluster = new TestCluster();
        cluster.Script.Duration = _ => TimeSpan.FromSeconds(1); // every item ends on the same clock tick
        var job = RecordingJob.Define("cost", Every10s, shards);
        var nodes = new List<TestNode>();
        foreach (var id in new[] { "A", "B", "C" })
        {
            // All items of a fire run (and end) together, as the design's figure assumes.
            nodes.Add(await cluster.StartNodeAsync(id, [job], configure: o => o.Jobs["cost"] = new JobOptions { MaxConcurrency = shards }));
        }

        // Warm up: the first fire shards; the second runs on the settled assignment.
        for (var i = 0; i < 2; i++)
        {
            var warm = cluster.NextFire(Every10s);
            await cluster.AdvanceToAsync(warm + TimeSpan.FromSeconds(2));
            await cluster.Log.WaitForEndedAsync(warm, shards);
        }

        await cluster.AdvanceAsync(TimeSpan.FromSeconds(1));
        await WaitForQuietAsync(cluster, nodes);
        var before = nodes.Select(n => n.Registry.Requests).ToList();
        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        await cluster.Log.WaitForEndedAsync(fire, shards);
        await TestCluster.WaitUntilAsync(async () => await AllMarkersReleasedAsync(cluster, shards), "markers released");
        await WaitForQuietAsync(cluster, nodes);

        var perInstance = nodes.Select((n, i) => n.Registry.Requests - before[i]).ToList();
        var withItems = nodes.Where(n => cluster.Log.For(fire).Any(r => r.Instance == n.InstanceId)).Select(n => n.Registry.Requests - before[nodes.IndexOf(n)]);
        // One multi writes every marker and the progress record; items that end together are released in one multi (design
        // target: at most 4 per instance, whatever the item count).
        Assert.All(withItems, requests => Assert.InRange(requests, 2, 4));
        Assert.All(perInstance, requests => Assert.InRange(requests, 0, 4));
        TestContext.Current.TestOutputHelper?.WriteLine($"{shards} items: requests per instance {string.Join(", ", perInstance)}");
    }

    private static async Task<bool> AllMarkersReleasedAsync(TestCluster cluster, int shards)
    {
        var nodes = new JobNodes("cost");
        for (var item = 0; item < shards; item++)
        {
            if (await cluster.Observer.ExistsAsync(nodes.ItemRunning(item), cancellationToken: Ct) is not null)
            {
                return false;
            }
        }

        return true;
    }

    private static async Task WaitForQuietAsync(TestCluster cluster, IReadOnlyList<TestNode> nodes)
    {
        var last = nodes.Sum(n => n.Registry.Requests);
        for (var i = 0; i < 5; i++)
        {
            await cluster.SettleAsync();
            var now = nodes.Sum(n => n.Registry.Requests);
            if (now == last)
            {
                return;
            }

            last = now;
            i = 0;
        }
    }
}
