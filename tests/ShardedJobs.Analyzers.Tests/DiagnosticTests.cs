using Microsoft.CodeAnalysis.Testing;
using ShardedJobs.CodeAnalysis;
using static ShardedJobs.Analyzers.Tests.AnalyzerTest;

namespace ShardedJobs.Analyzers.Tests;

/// <summary>SJ0001 and SJ0003–SJ0008: each reported where it belongs, with the values it names, and not on valid jobs.</summary>
public sealed class DiagnosticTests
{
    private const string Body = "{ public Task ExecuteAsync(ShardContext shard, CancellationToken ct) => Task.CompletedTask; }";

    [Fact]
    public Task A_valid_job_with_every_argument_reports_nothing() => VerifyAsync($$"""
        [ShardedJob("0 0/30 * * * ?", shards: 3, Name = "orders", Failover = true, MonitorExecution = true, Misfire = true,
            ItemParameters = "0=Beijing,1=Shanghai,2=Guangzhou", TimeZone = "Asia/Shanghai", Description = "sync")]
        public sealed class OrderSync : IShardedJob {{Body}}
        """);

    [Fact]
    public Task SJ0001_is_reported_on_MonitorExecution_false_when_Failover_is_on() => VerifyAsync($$"""
        [ShardedJob("0 0 * * * ?", shards: 2, Failover = true, MonitorExecution = {|#0:false|})]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.FailoverWithoutMonitoring).WithLocation(0).WithArguments("OrderSync"));

    [Theory]
    [InlineData("Failover = true")]
    [InlineData("Failover = true, MonitorExecution = true")]
    [InlineData("Failover = false, MonitorExecution = false")]
    [InlineData("MonitorExecution = false")]
    public Task SJ0001_is_not_reported_when_failover_is_off_or_monitoring_on(string arguments) => VerifyAsync($$"""
        [ShardedJob("0 0 * * * ?", shards: 2, {{arguments}})]
        public sealed class OrderSync : IShardedJob {{Body}}
        """);

    [Fact]
    public Task SJ0001_uses_the_job_name_and_follows_constants() => VerifyAsync($$"""
        static class Flags { public const bool Off = false; }
        [ShardedJob("0 0 * * * ?", Name = "orders", Failover = true, MonitorExecution = {|#0:Flags.Off|})]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.FailoverWithoutMonitoring).WithLocation(0).WithArguments("orders"));

    [Theory]
    [InlineData("0 0 * * *", "5 fields")]
    [InlineData("0 0 0 L * ?", "L")]
    [InlineData("0 0 0 15W * ?", "W")]
    [InlineData("0 0 0 ? * 6#3", "#")]
    [InlineData("0 0 0 ? * 6L", "L")]
    [InlineData("0 0 25 * * ?", "25")]
    [InlineData("0 0 0 15 * MON", "?")]
    [InlineData("0 0 0 30 2 ?", "30")]
    [InlineData("0 0 0 * * ? 1960", "1960")]
    [InlineData("every hour", "every")]
    [InlineData("", "empty")]
    public Task SJ0003_is_reported_on_the_cron_with_the_parser_s_reason(string cron, string mentioned)
    {
        var reason = ShardedJobRules.CheckCron(cron);
        Assert.NotNull(reason);
        Assert.Contains(mentioned, reason, StringComparison.Ordinal);
        return VerifyAsync($$"""
            [ShardedJob({|#0:"{{cron}}"|}, shards: 2)]
            public sealed class OrderSync : IShardedJob {{Body}}
            """,
            Diagnostic(DiagnosticDescriptors.InvalidCron).WithLocation(0).WithArguments("OrderSync", reason));
    }

    [Theory]
    [InlineData("0 0 12 ? * MON-FRI")]
    [InlineData("0 0/15 9-17 * * ?")]
    [InlineData("0 0 0 1,15 * ?")]
    [InlineData("*/5 * * * * ?")]
    [InlineData("0 15,45 8-10/2 ? JAN-MAR,DEC SAT,SUN")]
    [InlineData("0 0 0 * * ? 2030-2040")]
    [InlineData("0 0 22-2 * * ?")]
    [InlineData("0 0 0 ? * *")]
    public Task SJ0003_accepts_what_the_runtime_schedules(string cron) => VerifyAsync($$"""
        [ShardedJob("{{cron}}", shards: 2)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """);

    [Fact]
    public Task SJ0003_is_reported_on_a_constant_where_it_is_used() => VerifyAsync($$"""
        static class Schedules { public const string Bad = "0 0 0 L * ?"; }
        [ShardedJob({|#0:Schedules.Bad|})]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.InvalidCron).WithLocation(0).WithArguments("OrderSync", ShardedJobRules.CheckCron("0 0 0 L * ?")!));

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    public Task SJ0004_is_reported_on_shards_below_one(string shards) => VerifyAsync($$"""
        [ShardedJob("0 0 * * * ?", shards: {|#0:{{shards}}|}, ItemParameters = "0=a")]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.InvalidShards).WithLocation(0).WithArguments("OrderSync", shards));

    [Fact]
    public Task SJ0004_is_reported_on_a_positional_shards_argument() => VerifyAsync($$"""
        [ShardedJob("0 0 * * * ?", {|#0:0|})]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.InvalidShards).WithLocation(0).WithArguments("OrderSync", "0"));

    [Theory]
    [InlineData("0=a,0=b", "second parameter")]
    [InlineData("0=a,5=b", "5")]
    [InlineData("0=a,-1=b", "-1")]
    [InlineData("0a", "0a")]
    [InlineData("x=a", "x")]
    public Task SJ0005_is_reported_on_malformed_item_parameters(string parameters, string mentioned)
    {
        var reason = ShardedJobRules.CheckItemParameters(parameters, 2);
        Assert.NotNull(reason);
        Assert.Contains(mentioned, reason, StringComparison.OrdinalIgnoreCase);
        return VerifyAsync($$"""
            [ShardedJob("0 0 * * * ?", shards: 2, ItemParameters = {|#0:"{{parameters}}"|})]
            public sealed class OrderSync : IShardedJob {{Body}}
            """,
            Diagnostic(DiagnosticDescriptors.InvalidItemParameters).WithLocation(0).WithArguments("OrderSync", reason));
    }

    [Theory]
    [InlineData("0=Beijing,1=Shanghai")]
    [InlineData("1=Shanghai")]
    [InlineData("0=北京,1=上海")]
    public Task SJ0005_accepts_well_formed_item_parameters(string parameters) => VerifyAsync($$"""
        [ShardedJob("0 0 * * * ?", shards: 2, ItemParameters = "{{parameters}}")]
        public sealed class OrderSync : IShardedJob {{Body}}
        """);

    [Fact]
    public Task SJ0006_is_reported_on_an_unknown_time_zone() => VerifyAsync($$"""
        [ShardedJob("0 0 * * * ?", TimeZone = {|#0:"Mars/Olympus_Mons"|})]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.UnknownTimeZone).WithLocation(0).WithArguments("OrderSync", ShardedJobRules.CheckTimeZone("Mars/Olympus_Mons")!));

    [Theory]
    [InlineData("Asia/Shanghai")]
    [InlineData("UTC")]
    [InlineData("europe/berlin")]
    [InlineData("China Standard Time")]
    public Task SJ0006_accepts_IANA_and_Windows_ids(string zone) => VerifyAsync($$"""
        [ShardedJob("0 0 * * * ?", TimeZone = "{{zone}}")]
        public sealed class OrderSync : IShardedJob {{Body}}
        """);

    [Theory]
    [InlineData("public abstract class {|#0:Job|} : IShardedJob " + Body, "Job", "abstract")]
    [InlineData("public sealed class {|#0:Job|}<T> : IShardedJob " + Body, "Job", "generic")]
    [InlineData("public sealed class {|#0:Job|} { }", "Job", "IShardedJob")]
    [InlineData("public static class Outer { [ShardedJob(\"0 0 * * * ?\")] private sealed class {|#0:Job|} : IShardedJob " + Body + " }", "Job", "private")]
    public Task SJ0007_is_reported_on_the_class_name(string declaration, string name, string mentioned)
    {
        var source = declaration.StartsWith("public static class Outer", StringComparison.Ordinal) ? declaration : "[ShardedJob(\"0 0 * * * ?\")]\n" + declaration;
        return VerifyAsync(source, Diagnostic(DiagnosticDescriptors.NotAJobClass).WithLocation(0).WithArguments(name, Expect(mentioned)));
    }

    [Fact]
    public Task SJ0007_accepts_an_internal_dataflow_job_and_a_nested_internal_one() => VerifyAsync("""
        [ShardedJob("0 0 * * * ?")]
        internal sealed class Feed : IDataflowJob<int>
        {
            public Task<System.Collections.Generic.IReadOnlyList<int>> FetchAsync(ShardContext shard, CancellationToken ct) => Task.FromResult<System.Collections.Generic.IReadOnlyList<int>>([]);
            public Task ProcessAsync(ShardContext shard, System.Collections.Generic.IReadOnlyList<int> data, CancellationToken ct) => Task.CompletedTask;
        }
        public static class Outer { [ShardedJob("0 0 * * * ?")] internal sealed class Job : IShardedJob { public Task ExecuteAsync(ShardContext shard, CancellationToken ct) => Task.CompletedTask; } }
        """);

    [Fact]
    public Task SJ0008_is_reported_on_every_class_name_of_a_shared_default_name() => VerifyAsync($$"""
        namespace Billing { [ShardedJob("0 0 * * * ?")] public sealed class {|#0:Sync|} : IShardedJob {{Body}} }
        namespace Stock { [ShardedJob("0 0 * * * ?")] public sealed class {|#1:Sync|} : IShardedJob {{Body}} }
        """,
        Diagnostic(DiagnosticDescriptors.DuplicateJobName).WithLocation(0).WithArguments("Sync", "'Billing.Sync' and 'Stock.Sync'"),
        Diagnostic(DiagnosticDescriptors.DuplicateJobName).WithLocation(1).WithArguments("Sync", "'Billing.Sync' and 'Stock.Sync'"));

    [Fact]
    public Task SJ0008_is_reported_on_the_Name_arguments_that_clash() => VerifyAsync($$"""
        [ShardedJob("0 0 * * * ?", Name = {|#0:"orders"|})] public sealed class OrderSync : IShardedJob {{Body}}
        [ShardedJob("0 0 * * * ?", Name = "refunds")] public sealed class RefundSync : IShardedJob {{Body}}
        [ShardedJob("0 0 * * * ?")] public sealed class {|#1:orders|} : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.DuplicateJobName).WithLocation(0).WithArguments("orders", "'OrderSync' and 'orders'"),
        Diagnostic(DiagnosticDescriptors.DuplicateJobName).WithLocation(1).WithArguments("orders", "'OrderSync' and 'orders'"));

    [Fact]
    public Task SJ0008_is_not_reported_for_names_that_differ_only_in_case_of_namespace() => VerifyAsync($$"""
        namespace Billing { [ShardedJob("0 0 * * * ?", Name = "billing-sync")] public sealed class Sync : IShardedJob {{Body}} }
        namespace Stock { [ShardedJob("0 0 * * * ?")] public sealed class Sync : IShardedJob {{Body}} }
        [ShardedJob("0 0 * * * ?")] public sealed class sync : IShardedJob {{Body}}
        """);

    [Fact]
    public Task Several_problems_of_one_job_are_each_reported_on_their_argument() => VerifyAsync($$"""
        [ShardedJob({|#0:"0 0 0 L * ?"|}, shards: 2, ItemParameters = {|#1:"0=a,0=b"|}, TimeZone = {|#2:"Nowhere/Land"|}, Failover = true, MonitorExecution = {|#3:false|})]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        Diagnostic(DiagnosticDescriptors.InvalidCron).WithLocation(0).WithArguments("OrderSync", ShardedJobRules.CheckCron("0 0 0 L * ?")!),
        Diagnostic(DiagnosticDescriptors.InvalidItemParameters).WithLocation(1).WithArguments("OrderSync", ShardedJobRules.CheckItemParameters("0=a,0=b", 2)!),
        Diagnostic(DiagnosticDescriptors.UnknownTimeZone).WithLocation(2).WithArguments("OrderSync", ShardedJobRules.CheckTimeZone("Nowhere/Land")!),
        Diagnostic(DiagnosticDescriptors.FailoverWithoutMonitoring).WithLocation(3).WithArguments("OrderSync"));

    [Fact]
    public Task Classes_without_the_attribute_are_not_looked_at() => VerifyAsync("""
        public abstract class NotAJob { }
        [System.Obsolete] public sealed class Other { }
        """);

    private static string Expect(string mentioned) => mentioned switch
    {
        "abstract" => "it is abstract; make it a concrete class",
        "generic" => "it is generic; the generated code needs one closed type per job",
        "IShardedJob" => "it implements neither IShardedJob nor IDataflowJob<T>",
        "private" => "it is private; the generated code must be able to see it (make it internal or public)",
        _ => throw new ArgumentOutOfRangeException(nameof(mentioned), mentioned, null),
    };
}
