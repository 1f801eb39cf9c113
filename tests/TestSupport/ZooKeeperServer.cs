using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ShardedJobs.TestSupport;

/// <summary>Settings for a throw-away ZooKeeper server process.</summary>
public sealed record ZooKeeperServerOptions
{
    /// <summary>ZooKeeper's tick. Short in tests: sessions may then be as short as 2 ticks and expire within a tick of their timeout.</summary>
    public int TickTimeMs { get; init; } = 200;

    /// <summary>Longest session timeout the server grants; ZooKeeper's default is 20 ticks.</summary>
    public int? MaxSessionTimeoutMs { get; init; }

    /// <summary>How long to wait for the server to serve before giving up with its log in the exception.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>More <c>zoo.cfg</c> lines (key = value).</summary>
    public IReadOnlyDictionary<string, string> ExtraConfig { get; init; } = new Dictionary<string, string>();

    /// <summary>JVM system properties (ZooKeeper reads some settings, e.g. <c>znode.container.checkIntervalMs</c>, only from there).</summary>
    public IReadOnlyDictionary<string, string> SystemProperties { get; init; } = new Dictionary<string, string>();

    /// <summary>The process whose death kills the server (its watchdog polls it every second); default: this test host.</summary>
    public int? HostProcessId { get; init; }
}

/// <summary>
/// One real ZooKeeper server process on a loopback port, with its own temporary data directory.
/// It can be stopped gracefully (SIGTERM), killed (SIGKILL) and restarted on the same port and data directory.
/// The process never outlives the test host: a watchdog next to it kills it when the host is gone, a process-exit
/// hook kills it when the host exits, and <see cref="DisposeAsync"/> kills it and deletes its directory.
/// </summary>
public sealed class ZooKeeperServer : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<ZooKeeperServer, byte> s_live = new();
    private static int s_exitHookInstalled;

    private readonly ZooKeeperServerOptions _options;
    private readonly string _configPath;
    private readonly bool _ownsDirectory;
    private Process? _wrapper;
    private int _javaPid;
    private int _disposed;

    private ZooKeeperServer(ZooKeeperServerOptions options, string directory, int clientPort, int? memberId, bool ownsDirectory)
    {
        _options = options;
        Directory = directory;
        ClientPort = clientPort;
        MemberId = memberId;
        _ownsDirectory = ownsDirectory;
        _configPath = Path.Combine(directory, "zoo.cfg");
        DataDirectory = Path.Combine(directory, "data");
        LogPath = Path.Combine(directory, "server.log");
    }

    /// <summary>The loopback port clients connect to.</summary>
    public int ClientPort { get; }

    /// <summary><c>127.0.0.1:{port}</c>.</summary>
    public string ConnectionString => FormattableString.Invariant($"127.0.0.1:{ClientPort}");

    /// <summary>The ensemble member id (<c>myid</c>), or null for a standalone server.</summary>
    public int? MemberId { get; }

    public string Directory { get; }

    public string DataDirectory { get; }

    /// <summary>Standard output and error of the server process (all runs appended).</summary>
    public string LogPath { get; }

    public int TickTimeMs => _options.TickTimeMs;

    /// <summary>The JVM's process id while it runs; 0 when stopped.</summary>
    public int ProcessId => Volatile.Read(ref _javaPid);

    public bool IsRunning => ProcessId != 0 && _wrapper is { HasExited: false };

    /// <summary>Starts a standalone server on a free loopback port and waits until it answers <c>ruok</c> and serves requests.</summary>
    public static async Task<ZooKeeperServer> StartAsync(ZooKeeperServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ZooKeeperServerOptions();
        ZooKeeperInstallation.Require();
        Exception? last = null;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var port = FreePorts.Take(1)[0];
            var server = Create(options, port, memberId: null, ensembleLines: null, directory: null);
            try
            {
                await server.LaunchAsync(cancellationToken);
                await server.WaitUntilServingAsync(cancellationToken);
                return server;
            }
            catch (PortTakenException e)
            {
                // Another process grabbed the port between choosing and binding it: choose again.
                last = e;
                await server.DisposeAsync();
            }
            catch
            {
                await server.DisposeAsync();
                throw;
            }
        }

        throw new InvalidOperationException("Could not find a free loopback port for ZooKeeper after 5 attempts.", last);
    }

    internal static ZooKeeperServer Create(ZooKeeperServerOptions options, int clientPort, int? memberId, IReadOnlyList<string>? ensembleLines, string? directory)
    {
        var ownsDirectory = directory is null;
        directory ??= System.IO.Directory.CreateTempSubdirectory("shardedjobs-zk-").FullName;
        System.IO.Directory.CreateDirectory(directory);
        var server = new ZooKeeperServer(options, directory, clientPort, memberId, ownsDirectory);
        System.IO.Directory.CreateDirectory(server.DataDirectory);
        var config = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"tickTime={options.TickTimeMs}")
            .AppendLine(CultureInfo.InvariantCulture, $"dataDir={server.DataDirectory}")
            .AppendLine(CultureInfo.InvariantCulture, $"clientPort={clientPort}")
            .AppendLine("clientPortAddress=127.0.0.1")
            .AppendLine("admin.enableServer=false")
            .AppendLine("4lw.commands.whitelist=*")
            // Test suites open many connections from 127.0.0.1; the default cap of 60 per address would refuse some.
            .AppendLine("maxClientCnxns=0");
        if (options.MaxSessionTimeoutMs is { } max)
        {
            config.AppendLine(CultureInfo.InvariantCulture, $"maxSessionTimeout={max}");
        }

        if (ensembleLines is not null)
        {
            config.AppendLine("initLimit=25").AppendLine("syncLimit=10");
            foreach (var line in ensembleLines)
            {
                config.AppendLine(line);
            }

            File.WriteAllText(Path.Combine(server.DataDirectory, "myid"), memberId!.Value.ToString(CultureInfo.InvariantCulture));
        }

        foreach (var (key, value) in options.ExtraConfig)
        {
            config.AppendLine(CultureInfo.InvariantCulture, $"{key}={value}");
        }

        File.WriteAllText(server._configPath, config.ToString());
        return server;
    }

    /// <summary>Stops the server with SIGTERM and waits for the process to exit (it is killed if it has not after 10 s).</summary>
    public async Task StopAsync()
    {
        var pid = ProcessId;
        if (pid == 0)
        {
            return;
        }

        Signal(pid, "TERM");
        await WaitForExitAsync(TimeSpan.FromSeconds(10));
        if (IsRunning)
        {
            Kill();
        }
    }

    /// <summary>Kills the server with SIGKILL, as a crash would, and waits until the process is gone.</summary>
    public void Kill()
    {
        var pid = ProcessId;
        if (pid == 0)
        {
            return;
        }

        Signal(pid, "KILL");
        WaitForExitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
    }

    /// <summary>Starts the server again on the same port with the same data directory, after a stop or a kill.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        if (IsRunning)
        {
            await StopAsync();
        }

        // The old socket can linger for a moment after a kill; a few tries ride that out.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await LaunchAsync(cancellationToken);
                await WaitUntilServingAsync(cancellationToken);
                return;
            }
            catch (PortTakenException) when (attempt < 10)
            {
                await Task.Delay(500, cancellationToken);
            }
        }
    }

    /// <summary>The last lines of the server's log, for failure messages.</summary>
    public string LogTail(int lines = 40)
    {
        try
        {
            var all = File.ReadAllLines(LogPath);
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException)
        {
            return "(no server log)";
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        Kill();
        _wrapper?.Dispose();
        s_live.TryRemove(this, out _);
        if (_ownsDirectory)
        {
            await DeleteDirectoryAsync(Directory);
        }
    }

    internal static async Task DeleteDirectoryAsync(string directory)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                System.IO.Directory.Delete(directory, recursive: true);
                return;
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
            catch (IOException)
            {
                await Task.Delay(100);
            }
        }
    }

    internal async Task LaunchAsync(CancellationToken cancellationToken)
    {
        var classPath = ZooKeeperInstallation.Require();
        InstallExitHook();
        var jvmArgs = new StringBuilder("-Xmx256m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dzookeeper.admin.enableServer=false");
        foreach (var (key, value) in _options.SystemProperties)
        {
            jvmArgs.Append(CultureInfo.InvariantCulture, $" -D{key}={value}");
        }

        // A small shell wrapper runs the JVM and a watchdog that kills it as soon as this test host is gone,
        // even when the host itself is SIGKILLed (a hung test run killed by a timeout, say).
        var script = string.Join('\n',
            $"exec 3>>'{LogPath}' 2>&3",
            $"'{ZooKeeperInstallation.JavaExecutable}' {jvmArgs} -cp '{classPath}' org.apache.zookeeper.server.quorum.QuorumPeerMain '{_configPath}' >&3 2>&3 3>&- &",
            "j=$!",
            "echo $j",
            $"( while kill -0 {_options.HostProcessId ?? Environment.ProcessId} 2>/dev/null && kill -0 $j 2>/dev/null; do sleep 1; done; kill -9 $j 2>/dev/null ) >/dev/null 2>&1 3>&- &",
            "w=$!",
            "wait $j; rc=$?",
            "kill $w 2>/dev/null",
            "exit $rc");
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        File.AppendAllText(LogPath, $"==== launch at {DateTimeOffset.UtcNow:O} ====\n");
        var wrapper = Process.Start(start) ?? throw new InvalidOperationException("Could not start /bin/sh for ZooKeeper.");
        var pidLine = await wrapper.StandardOutput.ReadLineAsync(cancellationToken);
        if (!int.TryParse(pidLine, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid))
        {
            throw new InvalidOperationException($"ZooKeeper launcher printed '{pidLine}' instead of a process id.");
        }

        _wrapper?.Dispose();
        _wrapper = wrapper;
        Volatile.Write(ref _javaPid, pid);
        s_live[this] = 0;
    }

    internal async Task WaitUntilServingAsync(CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < _options.StartTimeout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!IsRunning)
            {
                var log = LogTail();
                if (log.Contains("Address already in use", StringComparison.Ordinal) || log.Contains("BindException", StringComparison.Ordinal))
                {
                    Volatile.Write(ref _javaPid, 0);
                    throw new PortTakenException(ClientPort);
                }

                throw new InvalidOperationException($"ZooKeeper on port {ClientPort} exited during start-up. Log:\n{log}");
            }

            // `ruok` answers imok as soon as the process listens, before it serves requests (srvr then says
            // "not currently serving"), so readiness needs both.
            if (await FourLetterWords.IsOkAsync(ClientPort, cancellationToken) && await IsServingAsync(cancellationToken))
            {
                return;
            }

            await Task.Delay(100, cancellationToken);
        }

        throw new TimeoutException($"ZooKeeper on port {ClientPort} did not serve within {_options.StartTimeout}. Log:\n{LogTail()}");
    }

    /// <summary>True when the server is part of a working quorum (leader or follower) or runs standalone.</summary>
    public async Task<bool> IsServingAsync(CancellationToken cancellationToken = default) =>
        await FourLetterWords.ModeAsync(ClientPort, cancellationToken) is "leader" or "follower" or "standalone";

    private async Task WaitForExitAsync(TimeSpan timeout)
    {
        var wrapper = _wrapper;
        if (wrapper is not null)
        {
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await wrapper.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                // Reported by the caller through IsRunning.
            }
        }

        if (wrapper is null || wrapper.HasExited)
        {
            Volatile.Write(ref _javaPid, 0);
        }
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {pid.ToString(CultureInfo.InvariantCulture)}")
        {
            UseShellExecute = false,
            RedirectStandardError = true,
        });
        kill?.WaitForExit();
    }

    private static void InstallExitHook()
    {
        if (Interlocked.Exchange(ref s_exitHookInstalled, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                foreach (var server in s_live.Keys)
                {
                    if (server.ProcessId is var pid and not 0)
                    {
                        Signal(pid, "KILL");
                    }
                }
            };
        }
    }

    private sealed class PortTakenException(int port) : Exception($"Port {port} was taken before ZooKeeper could bind it.");
}
