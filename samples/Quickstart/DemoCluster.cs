using System.Globalization;
using Microsoft.Extensions.Hosting;
using ShardedJobs.Coordination;

namespace Quickstart;

/// <summary>
/// <c>--nodes N</c>: N instances in this process, each with its own session on one embedded registry, so they behave towards
/// each other as processes on ZooKeeper do. <c>--kill-after 12s</c> then crashes the first node that is running an OrderSync
/// item: its registry connection is cut (its session expires after the session timeout, as a killed process's would) and it
/// writes nothing more. The others compensate its unfinished items as soon as the session has expired, and the next fire is
/// re-sharded over them. At the end the demo prints what happened, read from what the jobs printed.
/// </summary>
public static class DemoCluster
{
    /// <summary>Short, so that the demo shows a failover within seconds; production sessions are 10–60 s.</summary>
    public static readonly TimeSpan DemoSessionTimeout = TimeSpan.FromSeconds(4);

    private static readonly TimeSpan FireInterval = TimeSpan.FromSeconds(5); // OrderSync's cron

    public static async Task<int> RunAsync(string[] args, DemoSettings settings, string? sessionTimeoutSetting, CancellationToken stop)
    {
        var killAfter = DemoDuration.Parse(settings.KillAfter, "--kill-after");
        var stopAfter = DemoDuration.Parse(settings.StopAfter, "--stop-after") ?? (killAfter is { } k ? k + TimeSpan.FromSeconds(30) : null);
        var sessionTimeout = DemoDuration.Parse(sessionTimeoutSetting, "--session-timeout") ?? DemoSessionTimeout;
        var server = new InMemoryRegistryServer(TimeProvider.System, sessionTimeout);
        using var log = new ExecutionLogFile(settings.LogFile, TimeProvider.System);
        var timeline = new DemoTimeline();
        var overrides = new Dictionary<string, string?> { ["ShardedJobs:ZooKeeper:SessionTimeout"] = sessionTimeout.ToString("c", CultureInfo.InvariantCulture) };
        var nodes = Enumerable.Range(1, settings.Nodes).Select(i =>
        {
            var node = new DemoNode($"node-{i}");
            var session = server.Connect();
            var host = DemoHost.Build(args, node, log, timeline, session, new Dictionary<string, string?>(overrides) { ["ShardedJobs:InstanceId"] = node.Name });
            return (Node: node, Session: session, Host: host);
        }).ToList();

        Console.WriteLine($"ShardedJobs quickstart: {nodes.Count} nodes in this process on one embedded registry (session timeout {sessionTimeout.TotalSeconds:0.#} s)"
            + (killAfter is { } after ? $"; one crashes after {after.TotalSeconds:0.#} s" : "") + (stopAfter is { } end ? $"; stops after {end.TotalSeconds:0.#} s" : "; Ctrl+C to stop") + ".");
        var started = TimeProvider.System.GetUtcNow();
        await Task.WhenAll(nodes.Select(n => n.Host.StartAsync(stop)));

        DemoCrash? crash = null;
        var crashing = killAfter is { } delay
            ? Task.Run(async () => crash = await CrashOneAsync(nodes, delay, sessionTimeout, stop), CancellationToken.None)
            : Task.CompletedTask;
        try
        {
            await Task.Delay(stopAfter ?? Timeout.InfiniteTimeSpan, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        await QuietMomentAsync(nodes.Where(n => !n.Node.IsCrashed).Select(n => n.Node), TimeSpan.FromSeconds(6));
        var stoppedAt = TimeProvider.System.GetUtcNow();
        await Task.WhenAll(nodes.Where(n => !n.Node.IsCrashed).Select(n => n.Host.StopAsync(CancellationToken.None)));
        try
        {
            await crashing;
        }
        catch (OperationCanceledException)
        {
        }

        foreach (var (_, _, host) in nodes)
        {
            await host.StopAsync(CancellationToken.None);
            host.Dispose();
        }

        if (killAfter is not null)
        {
            Console.WriteLine();
            Console.WriteLine("What happened:");
            foreach (var line in timeline.Summarise(nameof(OrderSync), 3, crash, stoppedAt, FireInterval))
            {
                Console.WriteLine("  " + line);
            }
        }

        Console.WriteLine($"Stopped after {(stoppedAt - started).TotalSeconds:0} s.");
        return 0;
    }

    private static async Task<DemoCrash> CrashOneAsync(IReadOnlyList<(DemoNode Node, InMemoryRegistry Session, IHost Host)> nodes, TimeSpan delay,
        TimeSpan sessionTimeout, CancellationToken stop)
    {
        await Task.Delay(delay, stop);
        var (victim, running) = await CrashFirstBusyNodeAsync(nodes, stop);
        var now = TimeProvider.System.GetUtcNow();
        victim.Session.Suspend();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{now.ToLocalTime():HH:mm:ss.fff}  {victim.Node.Name} CRASHES mid-execution ({string.Join(", ", running.Select(r => $"item {r.Item}"))} unfinished): it writes nothing more; its session expires in {sessionTimeout.TotalSeconds:0.#} s, and then the others compensate."));

        // Once the registry has expired the session, stopping the node's host changes nothing the others can see.
        await Task.Delay(sessionTimeout + TimeSpan.FromSeconds(1), stop);
        await victim.Host.StopAsync(CancellationToken.None);
        return new DemoCrash(victim.Node.Name, now, running, sessionTimeout);
    }

    /// <summary>The story is about unfinished work: crashes the first node found running an item of the failover job.</summary>
    private static async Task<((DemoNode Node, InMemoryRegistry Session, IHost Host) Victim, IReadOnlyList<DemoRun> Running)> CrashFirstBusyNodeAsync(
        IReadOnlyList<(DemoNode Node, InMemoryRegistry Session, IHost Host)> nodes, CancellationToken stop)
    {
        while (true)
        {
            foreach (var node in nodes)
            {
                if (node.Node.CrashIfRunning(nameof(OrderSync)) is { } running)
                {
                    return (node, running);
                }
            }

            await Task.Delay(20, stop);
        }
    }

    /// <summary>Stops between two executions when one comes within <paramref name="limit"/>, so that the summary's last fire is whole.</summary>
    private static async Task QuietMomentAsync(IEnumerable<DemoNode> nodes, TimeSpan limit)
    {
        var deadline = TimeProvider.System.GetUtcNow() + limit;
        while (nodes.Any(n => n.Running() > 0) && TimeProvider.System.GetUtcNow() < deadline)
        {
            await Task.Delay(20);
        }
    }
}
