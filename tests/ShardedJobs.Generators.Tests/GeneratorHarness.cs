using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace ShardedJobs.Generators.Tests;

/// <summary>Runs <see cref="ShardedJobGenerator"/> on source text, with step tracking, against the real runtime assembly.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    [
        // The test host's trusted assemblies: the framework, the runtime (ShardedJobs.dll) and Microsoft.Extensions.*.
        .. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(path => path.Length > 0 && !Path.GetFileName(path).StartsWith("ShardedJobs.Generators", StringComparison.Ordinal))
            .Select(path => MetadataReference.CreateFromFile(path)),
    ]);

    public static CSharpCompilation Compile(params string[] sources) =>
        CSharpCompilation.Create(
            "Jobs",
            sources.Select((source, i) => CSharpSyntaxTree.ParseText(source, ParseOptions, path: $"Job{i}.cs")),
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static GeneratorDriver NewDriver() =>
        CSharpGeneratorDriver.Create(
            [new ShardedJobGenerator().AsSourceGenerator()],
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Generates for <paramref name="sources"/>: the generated files by hint name, and the diagnostics of the whole
    /// compilation (input plus generated code).</summary>
    public static (IReadOnlyDictionary<string, string> Files, IReadOnlyList<Diagnostic> Diagnostics) Run(params string[] sources)
    {
        var compilation = Compile(sources);
        NewDriver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        var result = output.SyntaxTrees.Except(compilation.SyntaxTrees)
            .ToDictionary(tree => Path.GetFileName(tree.FilePath), tree => tree.ToString(), StringComparer.Ordinal);
        return (result, [.. generatorDiagnostics, .. output.GetDiagnostics()]);
    }
}
