using System.Diagnostics;
using Xunit;

namespace ShardedJobs.TestSupport.Tests;

public sealed class ZooKeeperServerTests
{
    [Fact]
    public async Task Started_server_answers_ruok_on_loopback_and_is_standalone()
    {
        await using var server = await ZooKeeperServer.StartAsync(cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(server.IsRunning);
        Assert.StartsWith("127.0.0.1:", server.ConnectionString, StringComparison.Ordinal);
        Assert.True(await FourLetterWords.IsOkAsync(server.ClientPort, TestContext.Current.CancellationToken));
        Assert.Equal("standalone", await FourLetterWords.ModeAsync(server.ClientPort, TestContext.Current.CancellationToken));
        Assert.Contains("tickTime=200", File.ReadAllText(Path.Combine(server.Directory, "zoo.cfg")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tick_time_is_configurable_and_bounds_the_session_timeouts()
    {
        await using var server = await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions { TickTimeMs = 300 }, TestContext.Current.CancellationToken);

        var conf = await FourLetterWords.SendAsync(server.ClientPort, "conf", TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.NotNull(conf);
        Assert.Contains("tickTime=300", conf, StringComparison.Ordinal);
        Assert.Contains("minSessionTimeout=600", conf, StringComparison.Ordinal);
        Assert.Contains("maxSessionTimeout=6000", conf, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Killed_server_stops_answering_and_restarts_on_the_same_port_with_its_data()
    {
        await using var server = await ZooKeeperServer.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var port = server.ClientPort;
        await JavaCli.CreateNodeAsync(server.ConnectionString, "/survives-restart", "kept");
        var pid = server.ProcessId;

        server.Kill();

        Assert.False(server.IsRunning);
        Assert.False(ProcessExists(pid));
        Assert.False(await FourLetterWords.IsOkAsync(port, TestContext.Current.CancellationToken));

        await server.RestartAsync(TestContext.Current.CancellationToken);

        Assert.Equal(port, server.ClientPort);
        Assert.True(await FourLetterWords.IsOkAsync(port, TestContext.Current.CancellationToken));
        Assert.Equal("kept", await JavaCli.GetDataAsync(server.ConnectionString, "/survives-restart"));
    }

    [Fact]
    public async Task Graceful_stop_ends_the_process_and_restart_serves_again()
    {
        await using var server = await ZooKeeperServer.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var pid = server.ProcessId;

        await server.StopAsync();

        Assert.False(ProcessExists(pid));
        Assert.False(await FourLetterWords.IsOkAsync(server.ClientPort, TestContext.Current.CancellationToken));
        await server.RestartAsync(TestContext.Current.CancellationToken);
        Assert.True(await FourLetterWords.IsOkAsync(server.ClientPort, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Dispose_kills_the_process_and_removes_its_directory()
    {
        var server = await ZooKeeperServer.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var pid = server.ProcessId;
        var directory = server.Directory;

        await server.DisposeAsync();

        Assert.False(ProcessExists(pid));
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task Server_is_killed_by_its_watchdog_when_its_host_process_dies()
    {
        // Stand-in for a test host that is SIGKILLed, so that neither Dispose nor the exit hook can run.
        using var host = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        await using var server = await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions { HostProcessId = host.Id }, TestContext.Current.CancellationToken);
        var pid = server.ProcessId;
        Assert.True(ProcessExists(pid));

        host.Kill();
        await host.WaitForExitAsync(TestContext.Current.CancellationToken);

        var clock = Stopwatch.StartNew();
        while (ProcessExists(pid) && clock.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        Assert.False(ProcessExists(pid), "the orphaned ZooKeeper process should have been killed by its watchdog");
        Assert.False(await FourLetterWords.IsOkAsync(server.ClientPort, TestContext.Current.CancellationToken));
    }

    internal static bool ProcessExists(int pid)
    {
        // A zombie (exited, not yet reaped) counts as gone.
        var status = $"/proc/{pid}/status";
        if (!File.Exists(status))
        {
            return false;
        }

        try
        {
            return !File.ReadAllLines(status).Any(l => l.StartsWith("State:", StringComparison.Ordinal) && l.Contains('Z', StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }
}
