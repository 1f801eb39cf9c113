using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ShardedJobs.Generators.Tests;

/// <summary>
/// The pipeline is incremental: an edit elsewhere or inside a job's method regenerates nothing; a changed attribute argument
/// regenerates only that job's file (checked with the driver's step tracking, per named step).
/// </summary>
public sealed class GeneratorCachingTests
{
    private const string Usings = "using System.Threading;\nusing System.Threading.Tasks;\nusing ShardedJobs;\n";

    private const string First = Usings + """
        namespace Shop;

        [ShardedJob("0 0/5 * * * ?", shards: 2)]
        public sealed class First : IShardedJob
        {
            public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
        }
        """;

    private const string Second = Usings + """
        namespace Shop;

        [ShardedJob("0 0 * * * ?", shards: 3)]
        public sealed class Second : IShardedJob
        {
            public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
        }
        """;

    private const string Unrelated = "namespace Shop; public static class Helpers { public static int Twice(int x) => 2 * x; }";

    private static readonly string[] AllSteps =
        [StepNames.Parse, StepNames.Jobs, StepNames.Clashes, StepNames.Emitted, StepNames.AnyJob, StepNames.Catalog];

    [Fact]
    public void An_edit_to_an_unrelated_file_leaves_every_step_cached_or_unchanged()
    {
        var result = RunTwice(2, "public static int Twice(int x) => 2 * x;", "public static int Twice(int x) => x + x; public static int Thrice(int x) => 3 * x;");

        AssertNothingRegenerated(result);
    }

    [Fact]
    public void An_edit_to_a_job_s_method_body_leaves_every_step_cached_or_unchanged()
    {
        var result = RunTwice(0, "=> Task.CompletedTask;", "{ await Task.Yield(); }");

        AssertNothingRegenerated(result);
    }

    [Fact]
    public void A_changed_attribute_argument_regenerates_only_that_job()
    {
        var result = RunTwice(0, "shards: 2", "shards: 5");

        var parse = result.TrackedSteps[StepNames.Parse].SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
        Assert.Equal(1, parse.Count(r => r == IncrementalStepRunReason.Modified));
        var emitted = result.TrackedSteps[StepNames.Emitted].SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
        Assert.Equal(1, emitted.Count(r => r == IncrementalStepRunReason.Modified));
        Assert.All(result.TrackedSteps[StepNames.Catalog].SelectMany(s => s.Outputs), o => Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"catalog: {o.Reason}"));

        var sources = result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs).ToList();
        Assert.Equal(1, sources.Count(o => o.Reason == IncrementalStepRunReason.Modified));
        Assert.Contains("Shards = 5", result.GeneratedSources.Single(s => s.HintName == "ShardedJobs.Shop_First.g.cs").SourceText.ToString(), StringComparison.Ordinal);
    }

    /// <summary>Runs the generator, edits source <paramref name="file"/> by replacing text, runs again, returns the second run.</summary>
    private static GeneratorRunResult RunTwice(int file, string before, string after)
    {
        var compilation = GeneratorHarness.Compile(First, Second, Unrelated);
        var driver = GeneratorHarness.NewDriver().RunGenerators(compilation, TestContext.Current.CancellationToken);
        var tree = compilation.SyntaxTrees.ElementAt(file);
        var text = tree.ToString();
        Assert.Contains(before, text, StringComparison.Ordinal);
        var edited = compilation.ReplaceSyntaxTree(tree, CSharpSyntaxTree.ParseText(text.Replace(before, after, StringComparison.Ordinal), GeneratorHarness.ParseOptions, tree.FilePath));
        return driver.RunGenerators(edited, TestContext.Current.CancellationToken).GetRunResult().Results.Single();
    }

    private static void AssertNothingRegenerated(GeneratorRunResult result)
    {
        foreach (var step in AllSteps)
        {
            Assert.True(result.TrackedSteps.ContainsKey(step), $"step {step} did not run");
            Assert.All(result.TrackedSteps[step].SelectMany(s => s.Outputs),
                o => Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {o.Reason}"));
        }

        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            o => Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"output: {o.Reason}"));
    }
}
