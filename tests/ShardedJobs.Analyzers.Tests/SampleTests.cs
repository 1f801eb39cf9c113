using System.Reflection;
using Microsoft.CodeAnalysis.Testing;

namespace ShardedJobs.Analyzers.Tests;

/// <summary>The samples, as sources with their own .editorconfig: no diagnostic (and proof the analyzer did look at them).</summary>
public sealed class SampleTests
{
    internal static readonly string RepositoryRoot = typeof(SampleTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(attribute => attribute.Key == "RepositoryRoot").Value!;

    [Theory]
    [InlineData("samples/Quickstart")]
    [InlineData("samples/AotSample")]
    public Task The_samples_have_no_diagnostics(string sample) => Run(sample, withEditorConfig: true);

    [Fact]
    public Task Without_its_editorconfig_the_quickstart_s_5_second_failover_demo_gets_SJ0002()
    {
        var source = File.ReadAllText(Path.Combine(RepositoryRoot, "samples/Quickstart/OrderSync.cs"));
        var cron = "\"0/5 * * * * ?\"";
        var start = source.IndexOf(cron, StringComparison.Ordinal);
        Assert.True(start >= 0, "the quickstart's OrderSync no longer fires every 5 s; update this test");
        var line = source[..start].Count(c => c == '\n') + 1;
        var column = start - source.LastIndexOf('\n', start);
        return Run("samples/Quickstart", withEditorConfig: false,
            AnalyzerTest.Diagnostic(DiagnosticDescriptors.FailoverOnShortInterval)
                .WithSpan("/samples/Quickstart/OrderSync.cs", line, column, line, column + cron.Length)
                .WithArguments("OrderSync", "0/5 * * * * ?", "5 s", "1 min"));
    }

    private static Task Run(string sample, bool withEditorConfig, params DiagnosticResult[] expected)
    {
        var directory = Path.Combine(RepositoryRoot, sample);
        var test = new AnalyzerTest
        {
            // The samples call generated code (AddShardedJobs()) that only the source generator writes: compiler errors
            // about it are not this test's business, the analyzer's diagnostics are.
            CompilerDiagnostics = CompilerDiagnostics.None,
        };
        var sources = Directory.GetFiles(directory, "*.cs", SearchOption.AllDirectories)
            .Where(path => !path.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !path.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.NotEmpty(sources);
        foreach (var path in sources)
        {
            test.TestState.Sources.Add(("/" + sample + "/" + Path.GetRelativePath(directory, path).Replace('\\', '/'), File.ReadAllText(path)));
        }

        var editorConfig = Path.Combine(directory, ".editorconfig");
        if (withEditorConfig && File.Exists(editorConfig))
        {
            test.TestState.AnalyzerConfigFiles.Add(("/" + sample + "/.editorconfig", File.ReadAllText(editorConfig)));
        }

        test.TestState.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync(TestContext.Current.CancellationToken);
    }
}
