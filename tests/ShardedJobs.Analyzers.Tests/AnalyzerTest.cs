using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Testing;
using ShardedJobs.CodeFixes;

namespace ShardedJobs.Analyzers.Tests;

/// <summary>
/// Runs <see cref="ShardedJobAnalyzer"/> (and <see cref="ShardedJobCodeFixProvider"/>) on test sources that compile against
/// the real ShardedJobs.dll. Reference assemblies come from the test host itself, not from a package download: the tests
/// need nothing beyond the build.
/// </summary>
internal sealed class AnalyzerTest : CSharpCodeFixTest<ShardedJobAnalyzer, ShardedJobCodeFixProvider, DefaultVerifier>
{
    public const string Usings = "using System.Threading;\nusing System.Threading.Tasks;\nusing ShardedJobs;\n";

    private static readonly ImmutableArray<MetadataReference> HostAssemblies =
    [
        .. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(path => path.Length > 0 && !Path.GetFileName(path).StartsWith("ShardedJobs.Analyzers", StringComparison.Ordinal)
                && !Path.GetFileName(path).StartsWith("ShardedJobs.CodeFixes", StringComparison.Ordinal))
            .Select(path => MetadataReference.CreateFromFile(path)),
    ];

    public AnalyzerTest()
    {
        ReferenceAssemblies = new ReferenceAssemblies("net10.0");
        TestState.AdditionalReferences.AddRange(HostAssemblies);
        FixedState.AdditionalReferences.AddRange(HostAssemblies);
    }

    /// <summary>Checks that <paramref name="source"/> (with <see cref="Usings"/> prepended) reports exactly <paramref name="expected"/>.</summary>
    public static Task VerifyAsync(string source, params DiagnosticResult[] expected) => VerifyAsync(source, editorConfig: null, expected);

    public static Task VerifyAsync(string source, string? editorConfig, params DiagnosticResult[] expected)
    {
        var test = new AnalyzerTest { TestCode = Usings + source };
        test.TestState.ExpectedDiagnostics.AddRange(expected);
        if (editorConfig is not null)
        {
            test.TestState.AnalyzerConfigFiles.Add(("/.editorconfig", "root = true\n\n[*.cs]\n" + editorConfig));
        }

        return test.RunAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>Checks the diagnostics of <paramref name="source"/> and that the code fix turns it into <paramref name="fixedSource"/>.</summary>
    public static Task VerifyFixAsync(string source, string fixedSource, DiagnosticResult[] expected, DiagnosticResult[]? remaining = null)
    {
        var test = new AnalyzerTest { TestCode = Usings + source, FixedCode = Usings + fixedSource };
        test.TestState.ExpectedDiagnostics.AddRange(expected);
        test.FixedState.ExpectedDiagnostics.AddRange(remaining ?? []);
        return test.RunAsync(TestContext.Current.CancellationToken);
    }

    public static DiagnosticResult Diagnostic(DiagnosticDescriptor descriptor) => new(descriptor);
}
