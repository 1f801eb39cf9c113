using System.Text;
using ShardedJobs.Coordination;
using Xunit;

namespace ShardedJobs.Tests.Coordination;

public sealed class JobNodeDataTests
{
    private static readonly DateTimeOffset FireTime = DateTimeOffset.Parse("2026-11-24T12:30:00Z", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Markers_flags_progress_and_registrations_round_trip()
    {
        var marker = new ItemMarker("10.0.0.1@-@42", FireTime, "order-sync@-@3@-@abc");
        var flag = new FailoverFlag("10.0.0.2@-@7", FireTime, "t-1");
        var progress = new InstanceProgress(FireTime, "t-2");
        var registration = new InstanceRegistration("10.0.0.1@-@42", "10.0.0.1");

        Assert.Equal(marker, JobNodeData.DecodeItemMarker("/p", JobNodeData.Encode(marker)));
        Assert.Equal(flag, JobNodeData.DecodeFailoverFlag("/p", JobNodeData.Encode(flag)));
        Assert.Equal(progress, JobNodeData.DecodeProgress("/p", JobNodeData.Encode(progress)));
        Assert.Equal(registration, JobNodeData.DecodeRegistration("/p", JobNodeData.Encode(registration)));
        Assert.Equal("""{"instance":"10.0.0.1@-@42","fireTime":1795523400000,"taskId":"order-sync@-@3@-@abc"}""", Encoding.UTF8.GetString(JobNodeData.Encode(marker)));
        Assert.Equal("jobInstanceId: 10.0.0.1@-@42\nserverIp: 10.0.0.1\n", Encoding.UTF8.GetString(JobNodeData.Encode(registration)));

        // A claim whose fire completed after all carries the mark; older claims without it read as not completed.
        var settled = new ItemMarker("10.0.0.1@-@42", FireTime, "t-1", FireTime.AddMinutes(1), FireCompleted: true);
        Assert.Equal(settled, JobNodeData.DecodeItemMarker("/p", JobNodeData.Encode(settled)));
        Assert.EndsWith(""","fireCompleted":true}""", Encoding.UTF8.GetString(JobNodeData.Encode(settled)), StringComparison.Ordinal);
        Assert.False(JobNodeData.DecodeItemMarker("/p", JobNodeData.Encode(marker)).FireCompleted);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("")]
    [InlineData("[1,2]")]
    [InlineData("""{"instance":"a","taskId":"t"}""")]
    [InlineData("""{"instance":"","fireTime":1,"taskId":"t"}""")]
    [InlineData("""{"instance":"a","fireTime":"noon","taskId":"t"}""")]
    public void Corrupt_markers_are_reported_with_their_path_and_content(string data)
    {
        const string path = "/order-sync/sharding/3/running";

        var error = Assert.Throws<RegistryDataException>(() => JobNodeData.DecodeItemMarker(path, Encoding.UTF8.GetBytes(data)));

        Assert.Equal(path, error.Path);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("Repair or delete the node", error.Message, StringComparison.Ordinal);
        Assert.False(JobNodeData.TryDecodeItemMarker(path, Encoding.UTF8.GetBytes(data), out var marker, out var reported));
        Assert.Null(marker);
        Assert.Equal(path, reported!.Path);
    }

    [Fact]
    public void A_registration_without_its_lines_is_reported_with_its_path()
    {
        var error = Assert.Throws<RegistryDataException>(() => JobNodeData.DecodeRegistration("/job/instances/x", Encoding.UTF8.GetBytes("garbage")));

        Assert.Equal("/job/instances/x", error.Path);
        Assert.Contains("jobInstanceId", error.Message, StringComparison.Ordinal);
    }
}
