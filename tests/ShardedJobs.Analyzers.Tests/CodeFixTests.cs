using Microsoft.CodeAnalysis.Testing;
using static ShardedJobs.Analyzers.Tests.AnalyzerTest;

namespace ShardedJobs.Analyzers.Tests;

/// <summary>The code fixes' resulting source: SJ0001 sets MonitorExecution = true; SJ0008 names the job after its class.</summary>
public sealed class CodeFixTests
{
    private const string Body = "{ public Task ExecuteAsync(ShardContext shard, CancellationToken ct) => Task.CompletedTask; }";

    [Fact]
    public Task SJ0001_replaces_MonitorExecution_false_with_true() => VerifyFixAsync(
        $$"""
        [ShardedJob("0 0 * * * ?", shards: 2, Failover = true, MonitorExecution = {|#0:false|}, Misfire = false)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        $$"""
        [ShardedJob("0 0 * * * ?", shards: 2, Failover = true, MonitorExecution = true, Misfire = false)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        [Diagnostic(DiagnosticDescriptors.FailoverWithoutMonitoring).WithLocation(0).WithArguments("OrderSync")]);

    [Fact]
    public Task SJ0001_replaces_a_constant_too() => VerifyFixAsync(
        $$"""
        static class Flags { public const bool Off = false; }
        [ShardedJob("0 0 * * * ?", Failover = true, MonitorExecution = {|#0:Flags.Off|})]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        $$"""
        static class Flags { public const bool Off = false; }
        [ShardedJob("0 0 * * * ?", Failover = true, MonitorExecution = true)]
        public sealed class OrderSync : IShardedJob {{Body}}
        """,
        [Diagnostic(DiagnosticDescriptors.FailoverWithoutMonitoring).WithLocation(0).WithArguments("OrderSync")]);

    [Fact]
    public Task SJ0001_fixes_every_job_of_the_document_at_once()
    {
        var test = new AnalyzerTest
        {
            TestCode = Usings + $$"""
                [ShardedJob("0 0 * * * ?", Failover = true, MonitorExecution = {|#0:false|})] public sealed class A : IShardedJob {{Body}}
                [ShardedJob("0 0 * * * ?", Failover = true, MonitorExecution = {|#1:false|})] public sealed class B : IShardedJob {{Body}}
                """,
            FixedCode = Usings + $$"""
                [ShardedJob("0 0 * * * ?", Failover = true, MonitorExecution = true)] public sealed class A : IShardedJob {{Body}}
                [ShardedJob("0 0 * * * ?", Failover = true, MonitorExecution = true)] public sealed class B : IShardedJob {{Body}}
                """,
        };
        test.TestState.ExpectedDiagnostics.Add(Diagnostic(DiagnosticDescriptors.FailoverWithoutMonitoring).WithLocation(0).WithArguments("A"));
        test.TestState.ExpectedDiagnostics.Add(Diagnostic(DiagnosticDescriptors.FailoverWithoutMonitoring).WithLocation(1).WithArguments("B"));
        return test.RunAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public Task SJ0008_adds_a_Name_from_the_full_class_name_and_fix_all_names_every_clashing_job()
    {
        var test = new AnalyzerTest
        {
            TestCode = Usings + $$"""
                namespace Billing { [ShardedJob("0 0 * * * ?", shards: 2)] public sealed class {|#0:Sync|} : IShardedJob {{Body}} }
                namespace Stock { [ShardedJob("0 0 * * * ?")] public sealed class {|#1:Sync|} : IShardedJob {{Body}} }
                """,
            // One fix: the first job gets a distinct name, which ends the clash.
            FixedCode = Usings + $$"""
                namespace Billing { [ShardedJob("0 0 * * * ?", shards: 2, Name = "Billing.Sync")] public sealed class Sync : IShardedJob {{Body}} }
                namespace Stock { [ShardedJob("0 0 * * * ?")] public sealed class Sync : IShardedJob {{Body}} }
                """,
            // Fix All: every job of the clash gets its own name.
            BatchFixedCode = Usings + $$"""
                namespace Billing { [ShardedJob("0 0 * * * ?", shards: 2, Name = "Billing.Sync")] public sealed class Sync : IShardedJob {{Body}} }
                namespace Stock { [ShardedJob("0 0 * * * ?", Name = "Stock.Sync")] public sealed class Sync : IShardedJob {{Body}} }
                """,
        };
        test.TestState.ExpectedDiagnostics.Add(Diagnostic(DiagnosticDescriptors.DuplicateJobName).WithLocation(0).WithArguments("Sync", "'Billing.Sync' and 'Stock.Sync'"));
        test.TestState.ExpectedDiagnostics.Add(Diagnostic(DiagnosticDescriptors.DuplicateJobName).WithLocation(1).WithArguments("Sync", "'Billing.Sync' and 'Stock.Sync'"));
        return test.RunAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public Task SJ0008_replaces_a_clashing_Name_and_avoids_names_other_jobs_use()
    {
        var test = new AnalyzerTest
        {
            TestCode = Usings + $$"""
                [ShardedJob("0 0 * * * ?", Name = {|#0:"orders"|})] public sealed class OrderSync : IShardedJob {{Body}}
                [ShardedJob("0 0 * * * ?", Name = "OrderSync")] public sealed class Legacy : IShardedJob {{Body}}
                [ShardedJob("0 0 * * * ?", Name = {|#1:"orders"|})] public sealed class Orders : IShardedJob {{Body}}
                """,
            FixedCode = Usings + $$"""
                [ShardedJob("0 0 * * * ?", Name = "OrderSync2")] public sealed class OrderSync : IShardedJob {{Body}}
                [ShardedJob("0 0 * * * ?", Name = "OrderSync")] public sealed class Legacy : IShardedJob {{Body}}
                [ShardedJob("0 0 * * * ?", Name = "orders")] public sealed class Orders : IShardedJob {{Body}}
                """,
            BatchFixedCode = Usings + $$"""
                [ShardedJob("0 0 * * * ?", Name = "OrderSync2")] public sealed class OrderSync : IShardedJob {{Body}}
                [ShardedJob("0 0 * * * ?", Name = "OrderSync")] public sealed class Legacy : IShardedJob {{Body}}
                [ShardedJob("0 0 * * * ?", Name = "Orders")] public sealed class Orders : IShardedJob {{Body}}
                """,
        };
        test.TestState.ExpectedDiagnostics.Add(Diagnostic(DiagnosticDescriptors.DuplicateJobName).WithLocation(0).WithArguments("orders", "'OrderSync' and 'Orders'"));
        test.TestState.ExpectedDiagnostics.Add(Diagnostic(DiagnosticDescriptors.DuplicateJobName).WithLocation(1).WithArguments("orders", "'OrderSync' and 'Orders'"));
        return test.RunAsync(TestContext.Current.CancellationToken);
    }
}
