using System.Diagnostics;
using System.Globalization;

namespace ShardedJobs.TestSupport;

/// <summary>
/// A quorum of real ZooKeeper servers on loopback (3 by default), each with distinct client, peer and election ports.
/// Members can be stopped, killed and restarted one at a time, to test a client against a leader change or a lost member.
/// </summary>
public sealed class ZooKeeperEnsemble : IAsyncDisposable
{
    private readonly string _directory;

    private ZooKeeperEnsemble(string directory, IReadOnlyList<ZooKeeperServer> members)
    {
        _directory = directory;
        Members = members;
    }

    public IReadOnlyList<ZooKeeperServer> Members { get; }

    /// <summary>All members' client addresses, comma separated, as a ZooKeeper connection string.</summary>
    public string ConnectionString => string.Join(',', Members.Select(m => m.ConnectionString));

    /// <summary>Starts <paramref name="size"/> servers and waits until every one of them is leader or follower.</summary>
    public static async Task<ZooKeeperEnsemble> StartAsync(int size = 3, ZooKeeperServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 2);
        options ??= new ZooKeeperServerOptions();
        ZooKeeperInstallation.Require();
        var directory = Directory.CreateTempSubdirectory("shardedjobs-zk-ensemble-").FullName;
        var ports = FreePorts.Take(3 * size);
        var lines = Enumerable.Range(1, size)
            .Select(id => string.Create(CultureInfo.InvariantCulture, $"server.{id}=127.0.0.1:{ports[3 * (id - 1) + 1]}:{ports[3 * (id - 1) + 2]}"))
            .ToArray();
        var members = Enumerable.Range(1, size)
            .Select(id => ZooKeeperServer.Create(options, ports[3 * (id - 1)], id, lines, Path.Combine(directory, $"member{id}")))
            .ToArray();
        var ensemble = new ZooKeeperEnsemble(directory, members);
        try
        {
            foreach (var member in members)
            {
                await member.LaunchAsync(cancellationToken);
            }

            await Task.WhenAll(members.Select(m => m.WaitUntilServingAsync(cancellationToken)));
            return ensemble;
        }
        catch
        {
            await ensemble.DisposeAsync();
            throw;
        }
    }

    /// <summary>The member that currently leads the quorum, or null while there is none.</summary>
    public async Task<ZooKeeperServer?> FindLeaderAsync(CancellationToken cancellationToken = default)
    {
        foreach (var member in Members.Where(m => m.IsRunning))
        {
            if (await FourLetterWords.ModeAsync(member.ClientPort, cancellationToken) == "leader")
            {
                return member;
            }
        }

        return null;
    }

    /// <summary>Waits until every running member serves (is leader or follower) again, e.g. after a leader was killed.</summary>
    public async Task WaitUntilServingAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var running = Members.Where(m => m.IsRunning).ToArray();
            var serving = await Task.WhenAll(running.Select(m => m.IsServingAsync(cancellationToken)));
            if (serving.All(s => s))
            {
                return;
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"The ensemble did not serve again within {timeout}. Logs:\n" +
                    string.Join("\n----\n", running.Select(m => $"member {m.MemberId}:\n{m.LogTail(15)}")));
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var member in Members)
        {
            await member.DisposeAsync();
        }

        await ZooKeeperServer.DeleteDirectoryAsync(_directory);
    }
}
