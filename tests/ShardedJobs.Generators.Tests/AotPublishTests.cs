using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit;

namespace ShardedJobs.Generators.Tests;

/// <summary>
/// The generated code and the runtime together survive trimming and Native AOT: <c>samples/AotSample</c> (a simple and a
/// dataflow job, the generic host, options binding, the embedded registry) is published with <c>PublishAot=true</c> from a
/// fresh intermediate directory (so the native compiler really runs), must produce no trim or AOT warning, and its native
/// binary must run every item of one fire and exit 0.
/// </summary>
public sealed partial class AotPublishTests
{
    [Fact]
    public async Task The_AOT_sample_publishes_without_trim_or_AOT_warnings_and_runs_its_jobs()
    {
        var root = RepositoryRoot();
        var work = Directory.CreateTempSubdirectory("shardedjobs-aot-").FullName;
        try
        {
            var (publishCode, publishOutput) = await RunAsync("dotnet",
                ["publish", Path.Combine(root, "samples", "AotSample", "AotSample.csproj"), "-c", "Release", "-r", "linux-x64", "-o", Path.Combine(work, "out"),
                 $"-p:IntermediateOutputPath={Path.Combine(work, "obj")}/", "-p:TreatWarningsAsErrors=false", "-nologo"], TimeSpan.FromMinutes(10));
            Assert.True(publishCode == 0, $"dotnet publish failed ({publishCode}):\n{publishOutput}");
            Assert.Contains("Generating native code", publishOutput, StringComparison.Ordinal);
            var warnings = WarningLine().Matches(publishOutput).Select(m => m.Value).Distinct().ToList();
            Assert.True(warnings.Count == 0, $"trim/AOT warnings:\n{string.Join("\n", warnings)}");

            var (runCode, runOutput) = await RunAsync(Path.Combine(work, "out", "AotSample"), [], TimeSpan.FromSeconds(30));
            Assert.True(runCode == 0, $"the native sample exited {runCode}:\n{runOutput}");
            Assert.Equal(4, runOutput.Split('\n').Count(line => line.StartsWith("ran ", StringComparison.Ordinal)));
            Assert.Contains("ran numbers item 0: 0,10", runOutput, StringComparison.Ordinal);
            Assert.Contains("ran Greeter item 1 (b)", runOutput, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [GeneratedRegex(@"warning (IL\d{4}|AOT\w*|CS\d{4})[^\n]*")]
    private static partial Regex WarningLine();

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Attributes.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("Attributes.sln not found above " + AppContext.BaseDirectory);
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cancellation.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} did not finish within {timeout}:\n{await output}{await error}");
        }

        return (process.ExitCode, await output + await error);
    }
}
