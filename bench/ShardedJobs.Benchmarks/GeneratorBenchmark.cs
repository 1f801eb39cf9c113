using System.Diagnostics;
using System.Globalization;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using ShardedJobs.Generators;

namespace ShardedJobs.Benchmarks;

/// <summary>
/// Generator time for N job classes (one file each, plus one unrelated file), measured on the driver the compiler uses:
/// "cold" is a new driver on a new compilation (median of 5 after one warm-up; the very first run, JIT included, is reported
/// apart), "after an unrelated edit" re-runs a warm driver on the compilation with one method of the unrelated file changed,
/// as an IDE does on a keystroke (median of 5). Both include the binding work the compiler does for the generator's steps.
/// </summary>
internal static class GeneratorBenchmark
{
    public static int Run(int jobs)
    {
        var newCompilation = Compilation(jobs);
        var compilation = newCompilation();
        GeneratorDriver NewDriver() => CSharpGeneratorDriver.Create([new ShardedJobGenerator().AsSourceGenerator()], parseOptions: Parse);

        var first = Time(() => NewDriver().RunGenerators(compilation));
        // Cold: a new driver on a new compilation (no generator state, no binding caches), as a first build sees it.
        var cold = Median(5, () =>
        {
            var fresh = newCompilation();
            return Time(() => NewDriver().RunGenerators(fresh));
        });
        var generated = NewDriver().RunGenerators(compilation).GetRunResult().GeneratedTrees.Length;

        var driver = NewDriver().RunGenerators(compilation);
        var edits = 0;
        var edit = Median(5, () =>
        {
            var unrelated = compilation.SyntaxTrees.Last();
            var edited = compilation.ReplaceSyntaxTree(unrelated, UnrelatedTree(++edits));
            compilation = edited;
            return Time(() => driver = driver.RunGenerators(edited));
        });

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"benchmark\":\"generator_time\",\"jobs\":{jobs},\"generated_files\":{generated},\"first_run_ms\":{first:0.0},\"cold_ms\":{cold:0.0},\"after_unrelated_edit_ms\":{edit:0.00}}}"));
        return 0;
    }

    internal static readonly CSharpParseOptions Parse = new(LanguageVersion.Latest);

    /// <summary>A factory of new compilations (no binding caches shared) of <paramref name="jobs"/> job files and one unrelated
    /// file, against the host's own assemblies: the input both the generator and the analyzer benchmarks measure.</summary>
    internal static Func<CSharpCompilation> Compilation(int jobs)
    {
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => p.Length > 0).Select(p => MetadataReference.CreateFromFile(p)).ToArray();
        var trees = Enumerable.Range(0, jobs).Select(i => CSharpSyntaxTree.ParseText(Job(i), Parse, path: $"Job{i}.cs"))
            .Append(UnrelatedTree(0)).ToArray();
        return () => CSharpCompilation.Create("Bench", trees, references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
    }

    /// <summary>The unrelated file at <paramref name="version"/>: replacing it is the benchmarks' "unrelated edit".</summary>
    internal static SyntaxTree UnrelatedTree(int version) => CSharpSyntaxTree.ParseText(Unrelated(version), Parse, path: "Unrelated.cs");

    internal static double Median(IEnumerable<double> samples)
    {
        var sorted = samples.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    internal static string Job(int i) => $$"""
        using System.Threading;
        using System.Threading.Tasks;
        using ShardedJobs;

        namespace Bench.Jobs{{i % 10}};

        [ShardedJob("0 0/{{1 + (i % 59)}} * * * ?", shards: {{1 + (i % 8)}}, Failover = true, ItemParameters = "0=a", Name = "job-{{i}}")]
        public sealed class Job{{i}} : IShardedJob
        {
            public Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken) => Task.CompletedTask;
        }
        """;

    private static string Unrelated(int version) => $"namespace Bench; public static class Helpers {{ public static int Value() => {version}; }}";

    private static double Time(Action action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalMilliseconds;
    }

    private static double Median(int runs, Func<double> measure) => Median(Enumerable.Range(0, runs).Select(_ => measure()).ToList());
}
