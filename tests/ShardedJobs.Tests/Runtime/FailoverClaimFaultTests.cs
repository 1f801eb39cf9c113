using ShardedJobs.Coordination;
using ShardedJobs.TestSupport;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.Tests.Runtime;

/// <summary>
/// Claiming when the connection fails half-way (fake time, the embedded registry with injected faults): an item already
/// claimed is still compensated, and a claim whose reply was lost, though applied, is found to be ours and compensated.
/// Either mistake would leave a claim naming a live instance that nobody ever runs.
/// <para>Layout C [0,1,2], B [3,4,5], A [6,7,8]; B runs 4 and 5 long and crashes; A is busy with long items, so C, idle,
/// claims 4 and then 5 as soon as B's session expires.</para>
/// </summary>
public sealed class FailoverClaimFaultTests : FailoverScenarios
{
    protected override Task<IClusterHarness> StartHarnessAsync() => Task.FromResult<IClusterHarness>(new TestCluster());

    [Fact]
    public Task An_item_claimed_before_the_connection_failed_is_still_compensated() =>
        RunAsync((operation, path) => operation == "exists" && path.EndsWith("/sharding/5/failover", StringComparison.Ordinal) ? RegistryFault.NotSent : RegistryFault.None);

    [Fact]
    public Task A_claim_applied_but_whose_reply_was_lost_is_found_to_be_ours_and_compensated() =>
        RunAsync((operation, path) => operation == "multi" && path.EndsWith("/sharding/4/failover", StringComparison.Ordinal) ? RegistryFault.ReplyLost : RegistryFault.None);

    private async Task RunAsync(Func<string, string, RegistryFault> fault)
    {
        await using var h = await StartHarnessAsync();
        var (_, b, c) = await StartThreeAsync(h, failover: true);
        var fire = await InterruptedFireAsync(h, longItems: [4, 5, 6, 7, 8]);
        var injected = 0;
        c.Registry.Faults = (operation, path) => fault(operation, path) is var what && what != RegistryFault.None && Interlocked.Exchange(ref injected, 1) == 0
            ? what
            : RegistryFault.None;

        await h.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));
        await h.CrashAsync(b);
        await h.RunUntilAsync(runs => Compensations(runs, fire).Count == 2, DetectionBudget(h) + TimeSpan.FromSeconds(2), "items 4 and 5 compensated");
        await h.RunUntilAsync(runs => Compensations(runs, fire).All(r => r.Outcome == "ok"), Long + TimeSpan.FromSeconds(2), "the compensations end");
        Assert.Equal(1, injected);
        Assert.Equal([4, 5], Compensations(h.Log.Runs, fire).Select(r => r.Item).Order());
        Assert.Equal("C", Assert.Single(Compensations(h.Log.Runs, fire), r => r.Item == 4).Instance);
        h.Log.AssertNoOverlap();
        await AssertNoEvidenceNamingAsync(h, "B");
        var nodes = new JobNodes(Job);
        Assert.Null(await h.Observer.ExistsAsync(nodes.ItemFailover(4)));
        Assert.Null(await h.Observer.ExistsAsync(nodes.ItemFailover(5)));
    }
}
