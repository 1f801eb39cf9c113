using System.Diagnostics;

namespace ShardedJobs.TestSupport;

/// <summary>
/// The official Java command-line client (<c>ZooKeeperMain</c>) run as a process: an independent way to write and read
/// nodes, so tests of the fixture (and cross-checks of the project's own client) do not depend on the code under test.
/// </summary>
public static class JavaCli
{
    public static Task CreateNodeAsync(string connectionString, string path, string data) =>
        RunAsync(connectionString, "create", path, data);

    public static async Task<string> GetDataAsync(string connectionString, string path)
    {
        var output = await RunAsync(connectionString, "get", path);
        return output.TrimEnd('\n').Split('\n')[^1];
    }

    /// <summary>Runs one zkCli command and returns its standard output; throws with stdout and stderr when it fails.</summary>
    public static async Task<string> RunAsync(string connectionString, params string[] command)
    {
        var start = new ProcessStartInfo(ZooKeeperInstallation.JavaExecutable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", ZooKeeperInstallation.Require(),
                     "org.apache.zookeeper.ZooKeeperMain", "-server", connectionString }.Concat(command))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start java");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"zkCli {string.Join(' ', command)} against {connectionString} did not finish within 60 s.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"zkCli {string.Join(' ', command)} against {connectionString} exited with {process.ExitCode}.\nstdout:\n{await stdout}\nstderr:\n{await stderr}");
        }

        return await stdout;
    }
}
