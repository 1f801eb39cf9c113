using System.Diagnostics;
using System.Globalization;

namespace ShardedJobs.TestSupport;

/// <summary>
/// The quickstart sample as a real OS process (<c>dotnet Quickstart.dll …</c>), for tests and benchmarks that SIGKILL an
/// instance. A watchdog beside it kills it when the test host is gone, so no sample outlives a crashed test run.
/// </summary>
public sealed class SampleProcess : IAsyncDisposable
{
    private readonly Process _wrapper;
    private readonly bool _ownsOutput;

    private SampleProcess(Process wrapper, int pid, string instanceId, string outputPath, bool ownsOutput)
    {
        _wrapper = wrapper;
        ProcessId = pid;
        InstanceId = instanceId;
        OutputPath = outputPath;
        _ownsOutput = ownsOutput;
    }

    public int ProcessId { get; }

    public string InstanceId { get; }

    /// <summary>Where the process's console output goes (for a failing test's message).</summary>
    public string OutputPath { get; }

    public bool HasExited => _wrapper.HasExited;

    /// <summary>The sample's exit code, once it has exited.</summary>
    public int ExitCode => _wrapper.ExitCode;

    /// <summary>The built sample, next to this build's configuration (the solution build builds it before any test runs).</summary>
    public static string SamplePath
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Attributes.sln")))
            {
                directory = directory.Parent;
            }

            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
            var path = Path.Combine(directory?.FullName ?? ".", "samples", "Quickstart", "bin", configuration, "net10.0", "Quickstart.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"The quickstart sample is not built at {path}; build Attributes.sln ({configuration}) first.", path);
        }
    }

    /// <summary>Starts the sample with <paramref name="arguments"/> (its <c>--instance-id</c> is added).</summary>
    /// <param name="outputPath">Where to append the console output, kept after <see cref="DisposeAsync"/> (a chaos run restarts one
    /// instance id many times and traces violations in its output); by default a temporary file deleted on dispose.</param>
    public static async Task<SampleProcess> StartAsync(string instanceId, IEnumerable<string> arguments, string? outputPath = null)
    {
        var output = outputPath ?? Path.Combine(Path.GetTempPath(), $"shardedjobs-sample-{instanceId}-{Guid.NewGuid():N}.out");
        var command = string.Join(' ', new[] { "dotnet", SamplePath, "--instance-id", instanceId }.Concat(arguments).Select(Quote));
        var script = string.Join('\n',
            $"{command} {(outputPath is null ? ">" : ">>")} {Quote(output)} 2>&1 &",
            "p=$!",
            "echo $p",
            $"( while kill -0 {Environment.ProcessId} 2>/dev/null && kill -0 $p 2>/dev/null; do sleep 1; done; kill -9 $p 2>/dev/null ) >/dev/null 2>&1 &",
            "w=$!",
            "wait $p; rc=$?",
            "kill $w 2>/dev/null",
            "exit $rc");
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        var wrapper = Process.Start(start) ?? throw new InvalidOperationException("Could not start /bin/sh for the sample.");
        wrapper.ErrorDataReceived += (_, _) => { }; // the shell's "Killed" notices: not ours to print
        wrapper.BeginErrorReadLine();
        var pidLine = await wrapper.StandardOutput.ReadLineAsync().ConfigureAwait(false);
        return int.TryParse(pidLine, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid)
            ? new SampleProcess(wrapper, pid, instanceId, output, ownsOutput: outputPath is null)
            : throw new InvalidOperationException($"The sample launcher printed '{pidLine}' instead of a process id.");
    }

    /// <summary>SIGKILL: no shutdown code runs; the registry notices only when the session expires.</summary>
    public void Kill() => Signal("KILL");

    /// <summary>SIGTERM: the host shuts down gracefully.</summary>
    public void Terminate() => Signal("TERM");

    /// <summary>SIGSTOP: the process freezes (nothing of it runs, not even its timers), as in a long GC pause or a VM stall.</summary>
    public void Pause() => Signal("STOP");

    /// <summary>SIGCONT: a frozen process runs on, unaware of the time it lost.</summary>
    public void Resume() => Signal("CONT");

    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        await _wrapper.WaitForExitAsync(cancellation.Token).ConfigureAwait(false);
    }

    public string Output() => File.Exists(OutputPath) ? File.ReadAllText(OutputPath) : "";

    public async ValueTask DisposeAsync()
    {
        if (!_wrapper.HasExited)
        {
            Kill();
            try
            {
                await WaitForExitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        _wrapper.Dispose();
        if (_ownsOutput)
        {
            File.Delete(OutputPath);
        }
    }

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, ProcessId.ToString(CultureInfo.InvariantCulture)]);
        kill?.WaitForExit();
    }

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
