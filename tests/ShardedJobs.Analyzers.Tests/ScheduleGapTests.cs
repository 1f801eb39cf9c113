using static ShardedJobs.Analyzers.Tests.AnalyzerTest;

namespace ShardedJobs.Analyzers.Tests;

/// <summary>SJ0002: the shortest gap of the real schedule against the threshold, default or from .editorconfig.</summary>
public sealed class ScheduleGapTests
{
    private const string Body = "{ public Task ExecuteAsync(ShardContext shard, CancellationToken ct) => Task.CompletedTask; }";

    [Theory]
    [InlineData("0 0/5 * * * ?", 5 * 60)]
    [InlineData("0 0 9-17 * * MON-FRI", 60 * 60)]
    [InlineData("0/10 * * * * ?", 10)]
    [InlineData("0 15,45 * * * ?", 30 * 60)]
    [InlineData("0 0,50 * * * ?", 10 * 60)]
    [InlineData("0 0 22-2 * * ?", 60 * 60)]
    [InlineData("0 0 0 * * ?", 24 * 60 * 60)]
    [InlineData("0 0 12 ? * MON,WED", 2 * 24 * 60 * 60)]
    [InlineData("0 0 0 1 * ?", 28 * 24 * 60 * 60)]
    [InlineData("0 0 12 ? * SAT,SUN", 24 * 60 * 60)]
    public void The_shortest_gap_is_measured_over_the_schedule(string cron, int seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), ShardedJobAnalyzer.ShortestGap(cron));

    [Fact]
    public Task SJ0002_is_reported_on_the_cron_of_a_failover_job_firing_under_a_minute() => VerifyAsync($$"""
        [ShardedJob({|#0:"0/10 * * * * ?"|}, shards: 2, Failover = true)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.FailoverOnShortInterval).WithLocation(0).WithArguments("OrderSync", "0/10 * * * * ?", "10 s", "1 min"));

    [Theory]
    [InlineData("0 0/1 * * * ?")]
    [InlineData("0 0/5 * * * ?")]
    public Task SJ0002_is_not_reported_at_or_above_the_default_threshold(string cron) => VerifyAsync($$"""
        [ShardedJob("{{cron}}", shards: 2, Failover = true)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """);

    [Fact]
    public Task SJ0002_is_not_reported_without_failover() => VerifyAsync($$"""
        [ShardedJob("* * * * * ?", shards: 2)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """);

    [Fact]
    public Task SJ0002_is_not_reported_on_a_cron_that_does_not_parse_which_SJ0003_covers() => VerifyAsync($$"""
        [ShardedJob({|#0:"0 0 0 L * ?"|}, Failover = true)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.InvalidCron).WithLocation(0).WithArguments("OrderSync", CodeAnalysis.ShardedJobRules.CheckCron("0 0 0 L * ?")!));

    [Fact]
    public Task The_threshold_is_read_from_editorconfig() => VerifyAsync($$"""
        [ShardedJob({|#0:"0 0 9-17 * * MON-FRI"|}, Failover = true)]
        public sealed class Hourly : IShardedJob {{Body}}
        [ShardedJob({|#1:"0 0/5 * * * ?"|}, Failover = true)]
        public sealed class FiveMinutes : IShardedJob {{Body}}
        [ShardedJob("0 0 0/2 * * ?", Failover = true)]
        public sealed class TwoHours : IShardedJob {{Body}}
        """,
        "shardedjobs.failover_min_interval_seconds = 7200",
        Diagnostic(DiagnosticDescriptors.FailoverOnShortInterval).WithLocation(0).WithArguments("Hourly", "0 0 9-17 * * MON-FRI", "1 h", "2 h"),
        Diagnostic(DiagnosticDescriptors.FailoverOnShortInterval).WithLocation(1).WithArguments("FiveMinutes", "0 0/5 * * * ?", "5 min", "2 h"));

    [Fact]
    public Task A_lower_threshold_in_editorconfig_allows_short_schedules() => VerifyAsync($$"""
        [ShardedJob("0/10 * * * * ?", Failover = true)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        "shardedjobs.failover_min_interval_seconds = 5");

    [Theory]
    [InlineData("sixty")]
    [InlineData("-5")]
    [InlineData("")]
    public Task An_unreadable_threshold_falls_back_to_the_default(string value) => VerifyAsync($$"""
        [ShardedJob({|#0:"0/30 * * * * ?"|}, Failover = true)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        $"shardedjobs.failover_min_interval_seconds = {value}",
        Diagnostic(DiagnosticDescriptors.FailoverOnShortInterval).WithLocation(0).WithArguments("OrderSync", "0/30 * * * * ?", "30 s", "1 min"));

    [Theory]
    [InlineData(90, "90 s")]
    [InlineData(120, "2 min")]
    [InlineData(5400, "90 min")]
    [InlineData(86400, "1 day")]
    [InlineData(172800, "2 days")]
    [InlineData(0.5, "0.5 s")]
    public void Durations_are_written_in_their_largest_whole_unit(double seconds, string text) =>
        Assert.Equal(text, ShardedJobAnalyzer.Describe(TimeSpan.FromSeconds(seconds)));
}
