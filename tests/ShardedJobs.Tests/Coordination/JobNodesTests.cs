using ShardedJobs.Coordination;
using Xunit;

namespace ShardedJobs.Tests.Coordination;

public sealed class JobNodesTests
{
    [Fact]
    public void Layout_follows_elasticjob()
    {
        var nodes = new JobNodes("order-sync");

        Assert.Equal("/order-sync", nodes.Root);
        Assert.Equal("/order-sync/config", nodes.Config);
        Assert.Equal("/order-sync/servers/10.0.0.1", nodes.Server("10.0.0.1"));
        Assert.Equal("/order-sync/instances/10.0.0.1@-@42", nodes.Instance("10.0.0.1@-@42"));
        Assert.Equal("/order-sync/sharding/3/instance", nodes.ItemInstance(3));
        Assert.Equal("/order-sync/sharding/3/running", nodes.ItemRunning(3));
        Assert.Equal("/order-sync/sharding/3/misfire", nodes.ItemMisfire(3));
        Assert.Equal("/order-sync/sharding/3/disabled", nodes.ItemDisabled(3));
        Assert.Equal("/order-sync/sharding/3/failover", nodes.ItemFailover(3));
        Assert.Equal("/order-sync/leader/election/instance", nodes.LeaderInstance);
        Assert.Equal("/order-sync/leader/sharding/necessary", nodes.ShardingNecessary);
        Assert.Equal("/order-sync/leader/sharding/processing", nodes.ShardingProcessing);
        Assert.Equal("/order-sync/leader/failover/items/3", nodes.FailoverItem(3));
        Assert.Equal("/order-sync/progress/10.0.0.1@-@42", nodes.Progress("10.0.0.1@-@42"));
        Assert.Equal("/order-sync/trigger/10.0.0.1@-@42", nodes.Trigger("10.0.0.1@-@42"));
        Assert.Equal("/order-sync/systemTime/current", nodes.SystemTime);
    }

    [Theory]
    [InlineData("0", true, 0)]
    [InlineData("17", true, 17)]
    [InlineData("007", false, 0)]
    [InlineData("-1", false, 0)]
    [InlineData("x", false, 0)]
    [InlineData("", false, 0)]
    public void Item_names_parse_strictly(string name, bool valid, int item)
    {
        Assert.Equal(valid, JobNodes.TryParseItem(name, out var parsed));
        if (valid)
        {
            Assert.Equal(item, parsed);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData("..")]
    public void Job_names_that_are_not_node_names_are_rejected(string name)
    {
        Assert.ThrowsAny<ArgumentException>(() => new JobNodes(name));
    }
}
