using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.IntegrationTests;

/// <summary>
/// Three runtime instances against a real ZooKeeper server, in real time, with the per-item execution log as the oracle:
/// on a stable cluster every item runs exactly once per fire time; after an instance leaves, the items are re-sharded over the
/// others. Each scenario is its own class, so they run in parallel, each with its own server.
/// </summary>
public sealed class StableClusterTests
{
    internal const string EveryTwoSeconds = "0/2 * * * * ?";

    [Fact]
    public async Task Every_item_runs_exactly_once_per_fire_and_a_graceful_stop_reshards_over_the_others()
    {
        await using var cluster = await ZooKeeperTestCluster.StartAsync();
        cluster.Script.Duration = _ => TimeSpan.FromMilliseconds(200);
        var job = RecordingJob.Define("zk-sync", EveryTwoSeconds, 9);
        var a = await cluster.StartNodeAsync("A", [job]);
        var b = await cluster.StartNodeAsync("B", [job]);
        await cluster.StartNodeAsync("C", [job]);

        var stable = await Scenarios.WaitForLayoutAsync(cluster.Log, "zk-sync", 9, "C:0,1,2 B:3,4,5 A:6,7,8");
        await Scenarios.AssertNextFiresEachItemOnceAsync(cluster.Log, "zk-sync", 9, after: stable, fires: 3, layout: "C:0,1,2 B:3,4,5 A:6,7,8");

        await b.StopAsync();
        var moved = await Scenarios.WaitForLayoutAsync(cluster.Log, "zk-sync", 9, "C:0,1,2,3,8 A:4,5,6,7");
        await Scenarios.AssertNextFiresEachItemOnceAsync(cluster.Log, "zk-sync", 9, after: moved, fires: 2, layout: "C:0,1,2,3,8 A:4,5,6,7");
        cluster.Log.AssertNoOverlap();
        _ = a;
    }
}

public sealed class CrashedInstanceTests
{
    [Fact]
    public async Task After_an_instance_s_session_expires_its_items_are_resharded_over_the_survivors()
    {
        await using var cluster = await ZooKeeperTestCluster.StartAsync();
        cluster.Script.Duration = _ => TimeSpan.FromMilliseconds(200);
        var job = RecordingJob.Define("zk-crash", StableClusterTests.EveryTwoSeconds, 6);
        await cluster.StartNodeAsync("A", [job]);
        var b = await cluster.StartNodeAsync("B", [job]);
        await cluster.StartNodeAsync("C", [job]);

        var stable = await Scenarios.WaitForLayoutAsync(cluster.Log, "zk-crash", 6, "C:0,1 B:2,3 A:4,5");
        await Scenarios.AssertNextFiresEachItemOnceAsync(cluster.Log, "zk-crash", 6, after: stable, fires: 2, layout: "C:0,1 B:2,3 A:4,5");

        await cluster.CrashAsync(b);
        var moved = await Scenarios.WaitForLayoutAsync(cluster.Log, "zk-crash", 6, "C:0,1,2 A:3,4,5", TimeSpan.FromSeconds(20));
        await Scenarios.AssertNextFiresEachItemOnceAsync(cluster.Log, "zk-crash", 6, after: moved, fires: 2, layout: "C:0,1,2 A:3,4,5");
        cluster.Log.AssertNoOverlap();
    }
}

internal static class Scenarios
{
    /// <summary>Waits for a fire whose runs show exactly <paramref name="layout"/> (every item once) and returns its fire time.</summary>
    public static async Task<DateTimeOffset> WaitForLayoutAsync(ExecutionLog log, string job, int shards, string layout, TimeSpan? timeout = null)
    {
        var expected = Parse(layout);
        DateTimeOffset? found = null;
        await log.WaitUntilAsync(runs =>
        {
            found = runs.Where(r => r.Job == job).GroupBy(r => r.FireTime)
                .Where(g => g.Count() == shards && g.All(r => r.Outcome is not null) && g.All(r => expected.TryGetValue(r.Item, out var owner) && owner == r.Instance)
                    && g.Select(r => r.Item).Distinct().Count() == shards)
                .Select(g => (DateTimeOffset?)g.Key).Max();
            return found is not null;
        }, $"a fire of {job} with layout {layout}", timeout ?? TimeSpan.FromSeconds(20));
        return found!.Value;
    }

    /// <summary>Asserts that the <paramref name="fires"/> fires after <paramref name="after"/> each ran every item exactly once, on <paramref name="layout"/>.</summary>
    public static async Task AssertNextFiresEachItemOnceAsync(ExecutionLog log, string job, int shards, DateTimeOffset after, int fires, string layout)
    {
        var times = Enumerable.Range(1, fires).Select(i => after + TimeSpan.FromSeconds(2 * i)).ToList();
        foreach (var fire in times)
        {
            await log.WaitForEndedAsync(fire, shards, job, TimeSpan.FromSeconds(15));
        }

        await Task.Delay(500, TestContext.Current.CancellationToken); // a duplicate would show up by now
        foreach (var fire in times)
        {
            Assert.Equal(Parse(layout), log.AssertEachItemOnce(fire, shards, job));
        }
    }

    private static Dictionary<int, string> Parse(string layout) =>
        layout.Split(' ')
            .SelectMany(part => part.Split(':')[1].Split(',').Select(item => (Item: int.Parse(item, System.Globalization.CultureInfo.InvariantCulture), Instance: part.Split(':')[0])))
            .ToDictionary(p => p.Item, p => p.Instance);
}
