extern alias analyzers;

using System.Collections.Immutable;
using System.Globalization;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using ShardedJobAnalyzer = analyzers::ShardedJobs.Analyzers.ShardedJobAnalyzer;

namespace ShardedJobs.Benchmarks;

/// <summary>
/// Analyzer time for N job classes (the generator benchmark's jobs: valid, failover on, crons of 1 to 59 minutes), as the
/// compiler runs it: all analyzer diagnostics of a new compilation. "first" includes JIT and the schedule-gap searches
/// (cached per distinct cron for the process); "cold" is the median of 5 on new compilations after that; "after an unrelated
/// edit" is the median of 5 on the compilation with one unrelated method changed (what an IDE re-analyses on a keystroke).
/// </summary>
internal static class AnalyzerBenchmark
{
    public static async Task<int> RunAsync(int jobs)
    {
        var newCompilation = GeneratorBenchmark.Compilation(jobs);
        ImmutableArray<DiagnosticAnalyzer> analyzer = [new ShardedJobAnalyzer()];

        async Task<(double Ms, int Diagnostics)> Analyze(Compilation compilation)
        {
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            var diagnostics = await compilation.WithAnalyzers(analyzer).GetAnalyzerDiagnosticsAsync();
            return (System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds, diagnostics.Length);
        }

        var (first, found) = await Analyze(newCompilation());
        var cold = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            cold.Add((await Analyze(newCompilation())).Ms);
        }

        var edited = new List<double>();
        var compilation = newCompilation();
        for (var i = 1; i <= 5; i++)
        {
            compilation = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Last(), GeneratorBenchmark.UnrelatedTree(i));
            edited.Add((await Analyze(compilation)).Ms);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"benchmark\":\"analyzer_time\",\"jobs\":{jobs},\"diagnostics\":{found},\"first_run_ms\":{first:0.0},\"cold_ms\":{GeneratorBenchmark.Median(cold):0.0},\"after_unrelated_edit_ms\":{GeneratorBenchmark.Median(edited):0.0}}}"));
        return found == 0 ? 0 : 1;
    }
}
