using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ShardedJobs.ZooKeeper;

namespace ShardedJobs.Coordination;

/// <summary>Settings of a <see cref="ZooKeeperRegistry"/>.</summary>
public sealed record ZooKeeperRegistryOptions
{
    /// <summary><c>host:port[,host:port...][/chroot]</c>.</summary>
    public required string ConnectionString { get; init; }

    /// <summary>Every path lives below <c>/{Namespace}</c> (after the connection string's own chroot, if any).</summary>
    public required string Namespace { get; init; }

    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan ConnectionTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary><c>user:password</c>: authenticates the session and creates every node with the creator-only ACL.</summary>
    public string? Digest { get; init; }

    /// <summary>
    /// When ZooKeeper cannot be reached at start: false (default) fails <see cref="ZooKeeperRegistry.ConnectAsync"/> with one
    /// clear error; true logs that error, returns a <see cref="RegistryState.Suspended"/> registry and keeps trying in the
    /// background, raising <see cref="RegistrySessionEventKind.NewSession"/> once connected.
    /// </summary>
    public bool RetryInBackground { get; init; }

    public ILoggerFactory? LoggerFactory { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// <see cref="IRegistry"/> on a real ZooKeeper ensemble through the project's own client, with the namespace as chroot.
/// A dropped connection is <see cref="RegistrySessionEventKind.Suspended"/> until the client resumes the same session
/// (<see cref="RegistrySessionEventKind.Reconnected"/>); an expired session is <see cref="RegistrySessionEventKind.SessionLost"/>,
/// after which the registry opens a new session in the background, re-creates the kept ephemerals and raises
/// <see cref="RegistrySessionEventKind.NewSession"/>. Calls made meanwhile fail with a transient <see cref="RegistryException"/>.
/// </summary>
public sealed partial class ZooKeeperRegistry : IRegistry
{
    private readonly ZooKeeperRegistryOptions _options;
    private readonly ZooKeeperClientOptions _clientOptions;
    private readonly ZooKeeperClientOptions _baseOptions;
    private readonly string _namespacePath;
    private readonly IReadOnlyList<ZooKeeperAcl> _acl;
    private readonly KeptEphemerals _kept = new();
    private readonly Dictionary<Action<RegistryWatchEvent>, Action<WatchedEvent>> _watchers = [];
    private readonly CancellationTokenSource _disposing = new();
    private readonly ILogger _logger;
    private volatile ZooKeeperClient? _client;
    private Task _reestablishing = Task.CompletedTask;
    private int _disposed;

    private ZooKeeperRegistry(ZooKeeperRegistryOptions options, ZooKeeperClientOptions baseOptions, ZooKeeperClientOptions clientOptions, string namespacePath)
    {
        _options = options;
        _baseOptions = baseOptions;
        _clientOptions = clientOptions;
        _namespacePath = namespacePath;
        _acl = options.Digest is null ? ZooKeeperAcl.OpenUnsafe : ZooKeeperAcl.CreatorAll;
        _logger = options.LoggerFactory?.CreateLogger<ZooKeeperRegistry>() ?? NullLogger<ZooKeeperRegistry>.Instance;
    }

    public event Action<RegistrySessionEvent>? SessionChanged;

    public long SessionId => _client?.SessionId ?? 0;

    public TimeSpan SinceLastHeard => _client?.SinceLastHeard ?? TimeSpan.MaxValue;

    public TimeSpan SessionTimeout => _client is { NegotiatedSessionTimeout.Ticks: > 0 } client ? client.NegotiatedSessionTimeout : _options.SessionTimeout;

    public RegistryState State => _disposed == 1 ? RegistryState.Closed : _client?.State == ZooKeeperState.Connected ? RegistryState.Connected : RegistryState.Suspended;

    /// <summary>The full chroot: the connection string's own, then the namespace.</summary>
    public string Chroot => _namespacePath;

    internal ZooKeeperClient Client => _client ?? throw new InvalidOperationException("not connected yet");

    /// <summary>Connects (at most <see cref="ZooKeeperRegistryOptions.ConnectionTimeout"/>) and makes sure the namespace node exists.</summary>
    /// <exception cref="RegistryException">ZooKeeper could not be reached in time; the message names the connection string and the timeout.</exception>
    public static async Task<ZooKeeperRegistry> ConnectAsync(ZooKeeperRegistryOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Namespace) || options.Namespace.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"The registry namespace '{options.Namespace}' must be a single non-empty node name (no '/'), e.g. 'shardedjobs'.", nameof(options));
        }

        var baseOptions = new ZooKeeperClientOptions
        {
            ConnectionString = options.ConnectionString,
            SessionTimeout = options.SessionTimeout,
            ConnectionTimeout = options.ConnectionTimeout,
            Digest = options.Digest,
            LoggerFactory = options.LoggerFactory,
            TimeProvider = options.TimeProvider,
        };
        var parsed = ZooKeeperConnectionString.Parse(options.ConnectionString);
        var chroot = (parsed.Chroot ?? "") + "/" + options.Namespace;
        var clientOptions = baseOptions with { ConnectionString = StripChroot(options.ConnectionString) + chroot };
        var registry = new ZooKeeperRegistry(options, baseOptions, clientOptions, chroot);
        try
        {
            registry.Attach(await registry.OpenSessionAsync(cancellationToken).ConfigureAwait(false));
            return registry;
        }
        catch (ZooKeeperException e)
        {
            var error = Map(e, null);
            if (!options.RetryInBackground || e.Code != ZooKeeperErrorCode.ConnectionLoss)
            {
                throw error;
            }

            RegistryLog.StartingDisconnected(registry._logger, error.Message);
            registry._reestablishing = Task.Run(registry.ReestablishAsync);
            return registry;
        }
    }

    /// <summary>Makes sure the namespace node exists (from outside the chroot: a client cannot create its own root), then opens the chrooted session.</summary>
    private async Task<ZooKeeperClient> OpenSessionAsync(CancellationToken cancellationToken)
    {
        await using (var outside = await ZooKeeperClient.ConnectAsync(_baseOptions, cancellationToken).ConfigureAwait(false))
        {
            var prefix = "";
            foreach (var segment in _namespacePath.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                prefix += "/" + segment;
                try
                {
                    await outside.CreateAsync(prefix, ReadOnlyMemory<byte>.Empty, CreateMode.Persistent, _acl, cancellationToken).ConfigureAwait(false);
                }
                catch (NodeExistsException)
                {
                }
            }
        }

        return await ZooKeeperClient.ConnectAsync(_clientOptions, cancellationToken).ConfigureAwait(false);
    }

    public Task<string> CreateAsync(string path, ReadOnlyMemory<byte> data, NodeKind kind = NodeKind.Persistent, CancellationToken cancellationToken = default) =>
        Call(path, c => c.CreateAsync(path, data, ToMode(kind), _acl, cancellationToken));

    public async Task DeleteAsync(string path, int version = -1, CancellationToken cancellationToken = default)
    {
        await Call(path, async c =>
        {
            await c.DeleteAsync(path, version, cancellationToken).ConfigureAwait(false);
            return true;
        }).ConfigureAwait(false);
        _kept.Forget(path);
    }

    public async Task<NodeStat?> ExistsAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        await Call(path, c => c.ExistsAsync(path, Wrap(watcher), cancellationToken)).ConfigureAwait(false) is { } stat ? ToStat(stat) : null;

    public async Task<RegistryNode?> GetAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default)
    {
        try
        {
            var node = await Call(path, c => c.GetDataAsync(path, Wrap(watcher), cancellationToken)).ConfigureAwait(false);
            return new RegistryNode(node.Data, ToStat(node.Stat));
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
        {
            return null;
        }
    }

    public async Task<NodeStat> SetAsync(string path, ReadOnlyMemory<byte> data, int version = -1, CancellationToken cancellationToken = default) =>
        ToStat(await Call(path, c => c.SetDataAsync(path, data, version, cancellationToken)).ConfigureAwait(false));

    public async Task<IReadOnlyList<string>?> GetChildrenAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await Call(path, c => c.GetChildrenAsync(path, Wrap(watcher), cancellationToken)).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
        {
            return null;
        }
    }

    public async Task<IReadOnlyList<RegistryOpResult>> MultiAsync(IReadOnlyList<RegistryOp> operations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        var ops = operations.Select(op => op switch
        {
            RegistryOp.Create c => ZooKeeperOp.Create(c.Path, c.Data, ToMode(c.Kind), _acl),
            RegistryOp.Delete d => ZooKeeperOp.Delete(d.Path, d.Version),
            RegistryOp.SetData s => ZooKeeperOp.SetData(s.Path, s.Data, s.Version),
            RegistryOp.Check c => ZooKeeperOp.Check(c.Path, c.Version),
            _ => throw new ArgumentException($"Unknown registry operation {op.GetType().Name}.", nameof(operations)),
        }).ToArray();
        var results = await Call(null, c => c.MultiAsync(ops, cancellationToken)).ConfigureAwait(false);
        foreach (var delete in operations.OfType<RegistryOp.Delete>())
        {
            _kept.Forget(delete.Path);
        }

        return [.. results.Select(r => r switch
        {
            OpResult.Created c => (RegistryOpResult)new RegistryOpResult.Created(c.Path),
            OpResult.Deleted => new RegistryOpResult.Deleted(),
            OpResult.DataSet s => new RegistryOpResult.DataSet(s.Stat.Version),
            _ => new RegistryOpResult.Checked(),
        })];
    }

    public Task KeepEphemeralAsync(string path, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        _kept.KeepAsync(this, path, data, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        try
        {
            await _reestablishing.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        // closeSession: this instance's ephemerals go at once, so peers see a clean departure instead of waiting for expiry.
        if (_client is { } client)
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void Attach(ZooKeeperClient client)
    {
        client.StateChanged += change => OnClientStateChanged(client, change);
        _client = client;
    }

    private void OnClientStateChanged(ZooKeeperClient client, ZooKeeperStateChange change)
    {
        if (!ReferenceEquals(client, _client) || _disposed == 1)
        {
            return;
        }

        switch (change.State)
        {
            case ZooKeeperState.Disconnected:
                Raise(RegistrySessionEventKind.Suspended, change.SessionId);
                break;
            case ZooKeeperState.Connected when !change.NewSession:
                Raise(RegistrySessionEventKind.Reconnected, change.SessionId);
                break;
            case ZooKeeperState.Expired:
                RegistryLog.SessionLost(_logger, change.SessionId);
                Raise(RegistrySessionEventKind.SessionLost, change.SessionId);
                _reestablishing = Task.Run(ReestablishAsync);
                break;
        }
    }

    /// <summary>Opens a new session after expiry (retrying until it succeeds or the registry is disposed), then restores kept ephemerals.</summary>
    private async Task ReestablishAsync()
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (!_disposing.IsCancellationRequested)
        {
            try
            {
                var client = await OpenSessionAsync(_disposing.Token).ConfigureAwait(false);
                var old = _client;
                Attach(client);
                if (old is not null)
                {
                    _ = old.DisposeAsync().AsTask();
                }

                await _kept.RestoreAsync(this, (path, e) => RegistryLog.RestoreFailed(_logger, path, e), _disposing.Token).ConfigureAwait(false);
                RegistryLog.NewSession(_logger, client.SessionId);
                Raise(RegistrySessionEventKind.NewSession, client.SessionId);
                return;
            }
            catch (Exception e) when (e is ZooKeeperException or RegistryException)
            {
                RegistryLog.ReestablishFailed(_logger, e.Message);
                await Task.Delay(delay, _options.TimeProvider, _disposing.Token).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 2000));
            }
        }
    }

    private void Raise(RegistrySessionEventKind kind, long sessionId) => SessionChanged?.Invoke(new RegistrySessionEvent(kind, sessionId));

    /// <summary>
    /// One adapter per distinct watcher (delegate equality, as the embedded registry compares them), so registering the same
    /// watcher through exists and get yields one event, as on ZooKeeper. An adapter is forgotten when it fires: watches are one-shot.
    /// </summary>
    private Action<WatchedEvent>? Wrap(Action<RegistryWatchEvent>? watcher)
    {
        if (watcher is null)
        {
            return null;
        }

        lock (_watchers)
        {
            if (_watchers.TryGetValue(watcher, out var existing))
            {
                return existing;
            }

            Action<WatchedEvent> adapter = null!;
            adapter = e =>
            {
                lock (_watchers)
                {
                    if (_watchers.TryGetValue(watcher, out var current) && ReferenceEquals(current, adapter))
                    {
                        _watchers.Remove(watcher);
                    }
                }

                var type = e.Type switch
                {
                    WatchedEventType.NodeCreated => RegistryEventType.NodeCreated,
                    WatchedEventType.NodeDeleted => RegistryEventType.NodeDeleted,
                    WatchedEventType.NodeDataChanged => RegistryEventType.NodeDataChanged,
                    WatchedEventType.NodeChildrenChanged => RegistryEventType.NodeChildrenChanged,
                    _ => RegistryEventType.SessionEnded,
                };
                watcher(new RegistryWatchEvent(type, e.Path ?? "/"));
            };
            _watchers[watcher] = adapter;
            return adapter;
        }
    }

    private async Task<T> Call<T>(string? path, Func<ZooKeeperClient, Task<T>> call)
    {
        var client = _client;
        if (client is null)
        {
            ObjectDisposedException.ThrowIf(_disposed == 1, this);
            throw new RegistryException(RegistryErrorCode.ConnectionLoss, path,
                $"Registry ConnectionLoss{(path is null ? "" : $" for '{path}'")}: not connected to ZooKeeper at '{_options.ConnectionString}' yet; still trying in the background.");
        }

        try
        {
            return await call(client).ConfigureAwait(false);
        }
        catch (ZooKeeperException e)
        {
            throw Map(e, path);
        }
        catch (ObjectDisposedException)
        {
            throw new ObjectDisposedException(nameof(ZooKeeperRegistry));
        }
    }

    private static RegistryException Map(ZooKeeperException e, string? path)
    {
        if (e is MultiOperationException multi)
        {
            var results = multi.Results.Select((r, i) => (RegistryOpResult)new RegistryOpResult.Failed(
                i < multi.FailedIndex ? null : i == multi.FailedIndex ? MapCode(multi.Code) : RegistryErrorCode.Other)).ToList();
            return new RegistryMultiException(MapCode(multi.Code), multi.Path, multi.FailedIndex, results);
        }

        return new RegistryException(MapCode(e.Code), e.Path ?? path, e.Message, e);
    }

    private static RegistryErrorCode MapCode(ZooKeeperErrorCode code) => code switch
    {
        ZooKeeperErrorCode.NoNode => RegistryErrorCode.NoNode,
        ZooKeeperErrorCode.NodeExists => RegistryErrorCode.NodeExists,
        ZooKeeperErrorCode.BadVersion => RegistryErrorCode.BadVersion,
        ZooKeeperErrorCode.NotEmpty => RegistryErrorCode.NotEmpty,
        ZooKeeperErrorCode.NoChildrenForEphemerals => RegistryErrorCode.NoChildrenForEphemerals,
        ZooKeeperErrorCode.ConnectionLoss or ZooKeeperErrorCode.OperationTimeout or ZooKeeperErrorCode.RequestTimeout => RegistryErrorCode.ConnectionLoss,
        ZooKeeperErrorCode.SessionExpired => RegistryErrorCode.SessionExpired,
        ZooKeeperErrorCode.NoAuth => RegistryErrorCode.NoAuth,
        _ => RegistryErrorCode.Other,
    };

    private static CreateMode ToMode(NodeKind kind) => kind switch
    {
        NodeKind.Ephemeral => CreateMode.Ephemeral,
        NodeKind.PersistentSequential => CreateMode.PersistentSequential,
        NodeKind.EphemeralSequential => CreateMode.EphemeralSequential,
        _ => CreateMode.Persistent,
    };

    private static NodeStat ToStat(ZooKeeperStat stat) =>
        new(stat.Version, stat.EphemeralOwner, stat.NumChildren, DateTimeOffset.FromUnixTimeMilliseconds(stat.Mtime));

    private static string StripChroot(string connectionString)
    {
        var slash = connectionString.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? connectionString.Trim() : connectionString[..slash].Trim();
    }

    private static partial class RegistryLog
    {
        [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Registry session 0x{SessionId:x} was lost (expired); opening a new session")]
        public static partial void SessionLost(ILogger logger, long sessionId);

        [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Registry opened new session 0x{SessionId:x} and restored its ephemeral nodes")]
        public static partial void NewSession(ILogger logger, long sessionId);

        [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Registry could not open a new session yet: {Reason}")]
        public static partial void ReestablishFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = 2004, Level = LogLevel.Error, Message = "Registry could not re-create the ephemeral node '{Path}' on the new session")]
        public static partial void RestoreFailed(ILogger logger, string path, Exception exception);

        [LoggerMessage(EventId = 2005, Level = LogLevel.Error, Message = "{Reason} Starting disconnected and retrying in the background (RetryInBackground)")]
        public static partial void StartingDisconnected(ILogger logger, string reason);
    }
}
