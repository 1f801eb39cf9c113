using Microsoft.CodeAnalysis;
using Xunit;

namespace ShardedJobs.Generators.Tests;

/// <summary>The generated source for representative inputs, against approved files; each must also compile warning-free
/// together with the runtime.</summary>
public sealed class GeneratorSnapshotTests
{
    private const string Usings = "using System.Collections.Generic;\nusing System.Threading;\nusing System.Threading.Tasks;\nusing ShardedJobs;\n";

    public static TheoryData<string> Cases => [.. Inputs.Keys];

    private static readonly Dictionary<string, string[]> Inputs = new(StringComparer.Ordinal)
    {
        ["OneJob"] =
        [
            Usings + """
            namespace Shop.Jobs;

            [ShardedJob("0 0/30 * * * ?", shards: 3, Failover = true, MonitorExecution = true)]
            public sealed class OrderSync : IShardedJob
            {
                public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
            }
            """,
        ],
        ["ManyJobs"] =
        [
            Usings + """
            namespace Shop.Billing
            {
                [ShardedJob("0 0 * * * ?", Name = "zeta")]
                public sealed class Invoices : IShardedJob
                {
                    public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
                }
            }
            """,
            Usings + """
            namespace Shop.Stock;

            [ShardedJob("0 0/5 * * * ?", shards: 4, Name = "alpha")]
            internal sealed class Restock : IShardedJob
            {
                public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
            }

            [ShardedJob("30 * * * * ?", shards: 2)]
            public class Mid : IShardedJob
            {
                public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
            }
            """,
        ],
        ["Dataflow"] =
        [
            Usings + """
            namespace Shop.Feeds;

            public sealed record Order(int Id, string Region);

            [ShardedJob("0 0/1 * * * ?", shards: 2, Streaming = true)]
            public sealed class OrderFeed : IDataflowJob<Order>
            {
                public Task<IReadOnlyList<Order>> FetchAsync(ShardContext shard, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<Order>>([]);

                public Task ProcessAsync(ShardContext shard, IReadOnlyList<Order> data, CancellationToken cancellationToken) => Task.CompletedTask;
            }
            """,
        ],
        ["NestedTypes"] =
        [
            Usings + """
            namespace Shop.Nested
            {
                public static partial class Outer
                {
                    internal sealed class Inner : IShardedJob
                    {
                        public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
                    }

                    [ShardedJob("0 0 1 * * ?")]
                    public sealed partial record class Reporter_Job : IShardedJob
                    {
                        // Explicit implementation: the dispatcher calls through the interface.
                        Task IShardedJob.ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
                    }
                }

                public static class Holder
                {
                    [ShardedJob("0 0 2 * * ?", Name = "deep")]
                    protected internal sealed class Deep : IShardedJob
                    {
                        public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
                    }
                }
            }
            """,
        ],
        ["GlobalNamespace"] =
        [
            Usings + """
            [ShardedJob("0/10 * * * * ?")]
            public sealed class Cleanup : IShardedJob
            {
                public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
            }
            """,
        ],
        ["AllArguments"] =
        [
            Usings + """
            namespace Shop;

            [ShardedJob("0 15 10 ? * MON-FRI 2030", shards: 3,
                Name = "order-sync", Failover = true, MonitorExecution = false, Misfire = false,
                ItemParameters = "0=Beijing,1=Shanghai,2=\"Guang\\zhou\"", JobParameter = "full\tsync", TimeZone = "Asia/Shanghai",
                ShardingStrategy = ShardingStrategies.RoundRobinByName, Description = "Syncs orders; per region.", Disabled = true,
                Overwrite = true, MaxTimeDiffSeconds = 5, ReconcileIntervalMinutes = 0)]
            public sealed class OrderSync : IShardedJob
            {
                public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
            }
            """,
        ],
        ["ConstAndNameof"] =
        [
            Usings + """
            namespace Shop;

            internal static class Schedules
            {
                public const string HalfHourly = "0 0/30 * * * ?";
                public const int Regions = 2;
                public const string First = "0=north";
            }

            [ShardedJob(Schedules.HalfHourly, Schedules.Regions, Name = nameof(RegionSync) + "-v2", ItemParameters = Schedules.First + ",1=south")]
            public sealed class RegionSync : IShardedJob
            {
                private const string Parameter = "p";

                public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
            }
            """,
        ],
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Generated_source_matches_the_approved_snapshot_and_compiles_warning_free(string @case)
    {
        var (files, diagnostics) = GeneratorHarness.Run(Inputs[@case]);

        Assert.DoesNotContain(diagnostics, d => d.Severity >= DiagnosticSeverity.Warning);
        Snapshot.Verify(string.Join("\n", files.Keys.Order(StringComparer.Ordinal)) + "\n", nameof(GeneratorSnapshotTests), @case, "files");
        foreach (var (name, text) in files)
        {
            Snapshot.Verify(text, nameof(GeneratorSnapshotTests), @case, name[..^".cs".Length]);
        }
    }

    [Fact]
    public void Output_is_the_same_whatever_the_order_of_the_input_files()
    {
        var forward = GeneratorHarness.Run(Inputs["ManyJobs"]).Files;
        var backward = GeneratorHarness.Run([.. Inputs["ManyJobs"].Reverse()]).Files;
        Assert.Equal(forward.OrderBy(f => f.Key, StringComparer.Ordinal), backward.OrderBy(f => f.Key, StringComparer.Ordinal));
    }
}
