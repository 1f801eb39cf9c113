using Microsoft.CodeAnalysis;
using Xunit;

namespace ShardedJobs.Generators.Tests;

/// <summary>
/// A class the analyzers reject gets no generated code at all (the user sees the one analyzer error, not compiler errors in
/// generated files); the catalog and <c>AddShardedJobs()</c> are still written, so calling it does not fail to compile too.
/// </summary>
public sealed class GeneratorRejectionTests
{
    private const string Body = "{ public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask; }";
    private const string Usings = "using System.Threading;\nusing System.Threading.Tasks;\nusing ShardedJobs;\n";

    [Theory]
    [InlineData("SJ0003 cron", $"[ShardedJob(\"0 0 25 * * ?\")] public sealed class Bad : IShardedJob {Body}")]
    [InlineData("SJ0003 L", $"[ShardedJob(\"0 0 12 L * ?\")] public sealed class Bad : IShardedJob {Body}")]
    [InlineData("SJ0004 shards", $"[ShardedJob(\"0 * * * * ?\", shards: 0)] public sealed class Bad : IShardedJob {Body}")]
    [InlineData("SJ0005 item parameters", $"[ShardedJob(\"0 * * * * ?\", shards: 2, ItemParameters = \"0=a,0=b\")] public sealed class Bad : IShardedJob {Body}")]
    [InlineData("SJ0006 time zone", $"[ShardedJob(\"0 * * * * ?\", TimeZone = \"Mars/Olympus\")] public sealed class Bad : IShardedJob {Body}")]
    [InlineData("SJ0007 no interface", "[ShardedJob(\"0 * * * * ?\")] public sealed class Bad { }")]
    [InlineData("SJ0007 abstract", $"[ShardedJob(\"0 * * * * ?\")] public abstract class Bad : IShardedJob {Body}")]
    [InlineData("SJ0007 generic", $"[ShardedJob(\"0 * * * * ?\")] public sealed class Bad<T> : IShardedJob {Body}")]
    [InlineData("SJ0007 private", $"public static class Outer {{ [ShardedJob(\"0 * * * * ?\")] private sealed class Bad : IShardedJob {Body} }}")]
    [InlineData("SJ0008 same name", $"[ShardedJob(\"0 * * * * ?\", Name = \"same\")] public sealed class Bad : IShardedJob {Body}\n[ShardedJob(\"0 * * * * ?\", Name = \"same\")] public sealed class Twin : IShardedJob {Body}")]
    public void A_rejected_class_gets_no_generated_code(string rule, string source)
    {
        var (files, diagnostics) = GeneratorHarness.Run(Usings + source + "\npublic static class Uses { public static void Register(Microsoft.Extensions.DependencyInjection.IServiceCollection s) => s.AddShardedJobs(); }");

        Assert.Equal(["ShardedJobs.g.cs"], files.Keys);
        Assert.DoesNotContain("Bad", files["ShardedJobs.g.cs"], StringComparison.Ordinal);
        Assert.True(diagnostics.All(d => d.Severity < DiagnosticSeverity.Error || !d.Location.SourceTree!.FilePath.EndsWith(".g.cs", StringComparison.Ordinal)),
            $"{rule}: the generated code must not add errors:\n{string.Join("\n", diagnostics)}");
    }

    [Fact]
    public void A_valid_job_beside_a_rejected_one_is_still_generated()
    {
        var (files, _) = GeneratorHarness.Run(Usings + $"[ShardedJob(\"0 0 25 * * ?\")] public sealed class Bad : IShardedJob {Body}\n[ShardedJob(\"0 * * * * ?\")] public sealed class Good : IShardedJob {Body}");
        Assert.Equal(["ShardedJobs.Good.g.cs", "ShardedJobs.g.cs"], files.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Without_any_job_nothing_is_generated()
    {
        var (files, _) = GeneratorHarness.Run(Usings + "public sealed class NotAJob { }");
        Assert.Empty(files);
    }
}
