using System.Diagnostics.Metrics;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ShardedJobs.Cluster;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;
using ShardedJobs.Execution;

namespace ShardedJobs.Hosting;

/// <summary>Wraps the registry the host opens (tests and benchmarks count round trips through it).</summary>
internal delegate IRegistry RegistryDecorator(IRegistry registry);

/// <summary>
/// The hosted service: on start it opens the registry (ZooKeeper, or the embedded one) with one session for the whole process,
/// as ElasticJob's registry center, and starts a <see cref="JobRuntime"/> per job; on stop it stops them all (running items
/// cancelled and awaited up to <see cref="ShardedJobsOptions.ShutdownTimeout"/>) and closes the session, so the other instances
/// see this one leave at once instead of after the session timeout.
/// </summary>
internal sealed class ShardedJobsHost : IHostedService, IAsyncDisposable
{
    private readonly ShardedJobCatalog _catalog;
    private readonly IOptions<ShardedJobsOptions> _options;
    private readonly IServiceProvider _services;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly ShardedJobsMetrics _metrics;
    private readonly Dictionary<string, JobRuntime> _jobs = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private IRegistry? _registry;
    private IRegistry? _abandoned;

    public ShardedJobsHost(ShardedJobCatalog catalog, IOptions<ShardedJobsOptions> options, IServiceProvider services, TimeProvider time,
        ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
    {
        _catalog = catalog;
        _options = options;
        _services = services;
        _time = time;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("ShardedJobs");
        _metrics = new ShardedJobsMetrics(meterFactory);
    }

    /// <summary>The registry while started; null before start and after stop.</summary>
    public IRegistry? Registry => _registry;

    public string? InstanceId { get; private set; }

    public string Namespace => _options.Value.Namespace;

    public IReadOnlyList<string> JobNames => [.. _catalog.Definitions.Select(d => d.Name).Order(StringComparer.Ordinal)];

    /// <summary>Every job is settled and the registry has no undelivered events (see <see cref="JobRuntime.IsSettled"/>).</summary>
    internal bool IsSettled
    {
        get
        {
            lock (_jobs)
            {
                return _jobs.Values.All(j => j.IsSettled) && (_registry is not InMemoryRegistry embedded || embedded.PendingEvents == 0);
            }
        }
    }

    public JobRuntime GetJob(string jobName)
    {
        ArgumentNullException.ThrowIfNull(jobName);
        lock (_jobs)
        {
            if (_registry is null)
            {
                throw new InvalidOperationException("ShardedJobs has not started (or has stopped): start the host before using IJobOperator.");
            }

            return _jobs.TryGetValue(jobName, out var job)
                ? job
                : throw new ArgumentException($"There is no job named '{jobName}'; known jobs: {string.Join(", ", JobNames)}.", nameof(jobName));
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_registry is not null)
            {
                return;
            }

            var options = _options.Value;
            var serverIp = options.ServerIp ?? DetectServerIp();
            var instanceId = options.InstanceId ?? $"{serverIp}@-@{Environment.ProcessId}";
            var (registry, description) = await OpenRegistryAsync(options, cancellationToken).ConfigureAwait(false);
            if (_services.GetService<RegistryDecorator>() is { } decorate)
            {
                registry = decorate(registry);
            }

            JobLog.HostStarting(_logger, instanceId, _catalog.Definitions.Count, options.Namespace, description);

            var context = new RuntimeContext(registry, instanceId, serverIp, _services, _time, _loggerFactory, _metrics,
                new ShardingStrategyResolver(_services.GetServices<IShardingStrategy>()),
                [.. _services.GetServices<IJobListener>()], [.. _services.GetServices<IJobErrorHandler>()], options);
            var started = _catalog.Definitions.OrderBy(d => d.Name, StringComparer.Ordinal)
                .Select(definition => new JobRuntime(definition, JobSettings.Create(definition, options.Jobs.GetValueOrDefault(definition.Name)), context))
                .ToList();
            try
            {
                // Each start is a dozen registry round trips; with many jobs, overlap them (bounded, so ZooKeeper is not flooded).
                await Parallel.ForEachAsync(started, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
                    async (job, token) => await job.StartAsync(token).ConfigureAwait(false)).ConfigureAwait(false);
            }
            catch
            {
                // Leave nothing half-started: the host fails to start with the first error, and the registry session closes.
                foreach (var job in started)
                {
                    await job.DisposeAsync().ConfigureAwait(false);
                }

                await registry.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            lock (_jobs)
            {
                started.ForEach(job => _jobs[job.Name] = job);
                InstanceId = instanceId;
                _registry = registry;
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _lifecycle.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            IRegistry? registry;
            List<JobRuntime> jobs;
            lock (_jobs)
            {
                registry = _registry;
                jobs = [.. _jobs.Values];
                _registry = null;
                _jobs.Clear();
            }

            if (registry is null)
            {
                return;
            }

            await Task.WhenAll(jobs.Select(job => job.StopAsync(cancellationToken))).ConfigureAwait(false);
            foreach (var job in jobs)
            {
                await job.DisposeAsync().ConfigureAwait(false);
            }

            await registry.DisposeAsync().ConfigureAwait(false);
            JobLog.HostStopped(_logger, InstanceId ?? "?");
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>
    /// Test hook for a crash: stops every job as a dead process would (no graceful hand-over is possible because the caller has
    /// cut the registry connection first) and leaves the session open, so the registry expires it after the session timeout,
    /// exactly as after a SIGKILL. The session is closed for good by <see cref="DisposeAsync"/>.
    /// </summary>
    internal async Task AbandonAsync()
    {
        await _lifecycle.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            List<JobRuntime> jobs;
            lock (_jobs)
            {
                _abandoned = _registry;
                jobs = [.. _jobs.Values];
                _registry = null;
                _jobs.Clear();
            }

            await Task.WhenAll(jobs.Select(job => job.StopAsync(CancellationToken.None))).ConfigureAwait(false);
            foreach (var job in jobs)
            {
                await job.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        if (Interlocked.Exchange(ref _abandoned, null) is { } abandoned)
        {
            await abandoned.DisposeAsync().ConfigureAwait(false);
        }

        _metrics.Dispose();
    }

    private async Task<(IRegistry Registry, string Description)> OpenRegistryAsync(ShardedJobsOptions options, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(options.ZooKeeper.ConnectionString))
        {
            // An application that registers its own session (connected to a server it shares between several instances in one
            // process, as the quickstart's --nodes) can drive that session's connection: Suspend it to play a crash.
            if (_services.GetService<InMemoryRegistry>() is { } session)
            {
                if (session.State == RegistryState.Closed)
                {
                    throw new InvalidOperationException(
                        "The InMemoryRegistry registered in the service provider is closed (ShardedJobs closes the session when it stops, " +
                        "as it does a ZooKeeper session): a host that is started again needs a new session from InMemoryRegistryServer.Connect().");
                }

                return (session, "the embedded registry (the application's session)");
            }

            // Instances in one process share the tree when the application registers one server.
            if (_services.GetService<InMemoryRegistryServer>() is { } shared)
            {
                return (shared.Connect(), "the embedded registry (the application's server)");
            }

            // No connection string and nothing set up for several instances: most likely a forgotten setting, so say it loudly.
            JobLog.EmbeddedRegistry(_logger);
            return (new InMemoryRegistryServer(_time, options.ZooKeeper.SessionTimeout).Connect(), "the embedded registry");
        }

        var registry = await ZooKeeperRegistry.ConnectAsync(new ZooKeeperRegistryOptions
        {
            ConnectionString = options.ZooKeeper.ConnectionString,
            Namespace = options.Namespace,
            SessionTimeout = options.ZooKeeper.SessionTimeout,
            ConnectionTimeout = options.ZooKeeper.ConnectionTimeout,
            Digest = options.ZooKeeper.Digest,
            LoggerFactory = _loggerFactory,
            TimeProvider = TimeProvider.System, // the wire protocol's timers run on real time, whatever the jobs' clock is
        }, cancellationToken).ConfigureAwait(false);
        return (registry, $"ZooKeeper {options.ZooKeeper.ConnectionString}");
    }

    /// <summary>ElasticJob's choice: the first IPv4 address of an interface that is up and not loopback.</summary>
    private static string DetectServerIp()
    {
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.OperationalStatus != OperationalStatus.Up || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback)
                {
                    continue;
                }

                foreach (var address in nic.GetIPProperties().UnicastAddresses)
                {
                    if (address.Address.AddressFamily == AddressFamily.InterNetwork && !System.Net.IPAddress.IsLoopback(address.Address))
                    {
                        return address.Address.ToString();
                    }
                }
            }
        }
        catch (NetworkInformationException)
        {
        }

        return "127.0.0.1";
    }
}
