using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using ShardedJobs.Cluster;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;
using Specification = Microsoft.Coyote.Specifications.Specification;

namespace ShardedJobs.Coyote.Tests;

/// <summary>
/// The failover core under systematic testing: instance B left with items 0..3 unfinished (their running markers name it, its
/// progress record remains); A, C and D, live, each on its own session of one embedded registry server, handle the departure
/// concurrently (<see cref="FailoverCoordinator.FlagDepartedAsync"/>) and claim what is waiting
/// (<see cref="FailoverCoordinator.ClaimAsync"/>). Item 4 runs on A, which is live: never flagged.
/// <para>The embedded registry completes its calls synchronously; the interleavings come from the scheduling points Coyote puts
/// at the race-checked operations each call makes (Interlocked, volatile and concurrent-collection accesses; on by default), and
/// at task creation and completion. With race checking off, an iteration has about 23 scheduling points instead of 160-190 and
/// a claim made non-atomic on purpose goes unnoticed; with it, Coyote finds that in the first iteration. Each registry call is
/// atomic, as on a real registry.</para>
/// </summary>
internal static class FailoverScenario
{
    public const int Shards = 5;
    public static readonly int[] DepartedItems = [0, 1, 2, 3];
    private static readonly string[] Live = ["A", "C", "D"];
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Fire = Start.AddMinutes(-1);

    public static async Task RunAsync()
    {
        var time = new FakeTimeProvider(Start);
        var server = new InMemoryRegistryServer(time, TimeSpan.FromSeconds(10));
        var nodes = new JobNodes("job");
        var config = new JobConfig { JobName = "job", Cron = "0 * * * * ?", Shards = Shards, Failover = true };
        var resolved = ResolvedJobConfig.TryResolve(config, new ShardingStrategyResolver(), out var problems)
            ?? throw new InvalidOperationException(string.Join("; ", problems));

        var setup = server.Connect();
        var sessions = new List<InMemoryRegistry> { setup };
        using var metrics = new ShardedJobsMetrics();
        try
        {
            await setup.CreateWithParentsAsync(nodes.Progress("B"), JobNodeData.Encode(new InstanceProgress(Fire, "B-task"))).ConfigureAwait(false);
            foreach (var item in DepartedItems)
            {
                await setup.CreateWithParentsAsync(nodes.ItemRunning(item), JobNodeData.Encode(new ItemMarker("B", Fire, $"task-{item}"))).ConfigureAwait(false);
            }

            await setup.CreateWithParentsAsync(nodes.ItemRunning(4), JobNodeData.Encode(new ItemMarker("A", Fire, "task-4"))).ConfigureAwait(false);
            await setup.EnsurePathAsync(nodes.Instances).ConfigureAwait(false);

            var coordinators = new List<(string Id, FailoverCoordinator Coordinator)>();
            foreach (var id in Live)
            {
                var session = server.Connect();
                sessions.Add(session);
                await session.CreateAsync(nodes.Instance(id), JobNodeData.Encode(new InstanceRegistration(id, "127.0.0.1")), NodeKind.Ephemeral).ConfigureAwait(false);
                var view = new JobClusterView(session, nodes, id, Shards, NullLogger.Instance, time);
                coordinators.Add((id, new FailoverCoordinator(session, nodes, view, id, () => resolved, NullLogger.Instance, metrics, time)));
            }

            var outcomes = await Task.WhenAll(coordinators.Select(c => Task.Run(async () =>
            {
                var flagged = await c.Coordinator.FlagDepartedAsync("B", "its registration vanished", CancellationToken.None).ConfigureAwait(false);
                var claims = await c.Coordinator.ClaimAsync(Shards, CancellationToken.None).ConfigureAwait(false);
                return (c.Id, Flagged: flagged, Claims: claims);
            }))).ConfigureAwait(false);

            // Each item is flagged once: one instance handled the departure, the others found it handled.
            var flaggedBy = outcomes.Where(o => o.Flagged.Count > 0).ToList();
            Specification.Assert(flaggedBy.Count == 1, $"the departure was handled {flaggedBy.Count} times: {Describe(outcomes)}");
            Specification.Assert(flaggedBy[0].Flagged.SequenceEqual(DepartedItems), $"flagged {string.Join(",", flaggedBy[0].Flagged)}, expected 0,1,2,3");

            // Each item is claimed by exactly one instance, and none is lost.
            var claimed = outcomes.SelectMany(o => o.Claims.Select(c => (o.Id, c.Item))).ToList();
            foreach (var item in DepartedItems)
            {
                var claimants = claimed.Where(c => c.Item == item).Select(c => c.Id).ToList();
                Specification.Assert(claimants.Count == 1, $"item {item} claimed by [{string.Join(",", claimants)}]: {Describe(outcomes)}");
                var claim = await setup.GetAsync(nodes.ItemFailover(item)).ConfigureAwait(false);
                Specification.Assert(claim is not null && JobNodeData.TryDecodeItemMarker(nodes.ItemFailover(item), claim.Data, out var marker, out _)
                    && marker!.Instance == claimants[0] && marker.TaskId == $"task-{item}" && marker.FireTime == Fire,
                    $"the registry's claim of item {item} does not name {claimants[0]} with B's fire");
                Specification.Assert(await setup.ExistsAsync(nodes.ItemRunning(item)).ConfigureAwait(false) is null, $"B's running marker of item {item} is still there");
            }

            Specification.Assert(claimed.All(c => DepartedItems.Contains(c.Item)), $"an item that was not B's was claimed: {Describe(outcomes)}");
            Specification.Assert(await setup.GetChildrenAsync(nodes.FailoverItems).ConfigureAwait(false) is { Count: 0 }, "flags are left waiting");
            Specification.Assert(await setup.ExistsAsync(nodes.Progress("B")).ConfigureAwait(false) is null, "B's progress record is still there");
            Specification.Assert(await setup.ExistsAsync(nodes.ItemRunning(4)).ConfigureAwait(false) is not null, "A's running marker of item 4 went");
        }
        finally
        {
            foreach (var session in sessions)
            {
                await session.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static string Describe(IEnumerable<(string Id, IReadOnlyList<int> Flagged, IReadOnlyList<FailoverClaim> Claims)> outcomes) =>
        string.Join("; ", outcomes.Select(o => $"{o.Id} flagged [{string.Join(",", o.Flagged)}] claimed [{string.Join(",", o.Claims.Select(c => c.Item))}]"));
}
