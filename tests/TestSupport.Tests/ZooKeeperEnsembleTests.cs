using Xunit;

namespace ShardedJobs.TestSupport.Tests;

public sealed class ZooKeeperEnsembleTests
{
    [Fact]
    public async Task Three_servers_form_a_quorum_with_distinct_ports_and_keep_serving_with_the_leader_killed()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var ensemble = await ZooKeeperEnsemble.StartAsync(3, cancellationToken: ct);

        Assert.Equal(3, ensemble.Members.Select(m => m.ClientPort).Distinct().Count());
        var modes = await Task.WhenAll(ensemble.Members.Select(m => FourLetterWords.ModeAsync(m.ClientPort, ct)));
        Assert.Equal(1, modes.Count(m => m == "leader"));
        Assert.Equal(2, modes.Count(m => m == "follower"));
        await JavaCli.CreateNodeAsync(ensemble.ConnectionString, "/before", "1");

        var leader = await ensemble.FindLeaderAsync(ct);
        Assert.NotNull(leader);
        leader.Kill();
        await ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(30), ct);

        var survivors = ensemble.Members.Where(m => m.IsRunning).ToArray();
        Assert.Equal(2, survivors.Length);
        var newLeader = await ensemble.FindLeaderAsync(ct);
        Assert.NotNull(newLeader);
        Assert.NotSame(leader, newLeader);
        // The two survivors still form a majority: writes and reads go through on either of them.
        await JavaCli.CreateNodeAsync(survivors[0].ConnectionString, "/after", "2");
        Assert.Equal("2", await JavaCli.GetDataAsync(survivors[1].ConnectionString, "/after"));
        Assert.Equal("1", await JavaCli.GetDataAsync(survivors[1].ConnectionString, "/before"));

        await leader.RestartAsync(ct);
        Assert.Equal("follower", await FourLetterWords.ModeAsync(leader.ClientPort, ct));
        Assert.Equal("2", await JavaCli.GetDataAsync(leader.ConnectionString, "/after"));
    }
}
