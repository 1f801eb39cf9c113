using System.Threading.Channels;

namespace ShardedJobs.Coordination;

/// <summary>
/// The embedded registry: one session on an <see cref="InMemoryRegistryServer"/>. Faithful to ZooKeeper's semantics (see
/// <see cref="IRegistry"/>), with fault hooks for tests: <see cref="ExpireSession"/>, <see cref="Suspend"/> /
/// <see cref="Resume"/> (a dropped connection; the session expires if it stays dropped longer than the server's session
/// timeout, measured on its <see cref="TimeProvider"/>) and <see cref="WatchDeliveryDelay"/>.
/// </summary>
public sealed class InMemoryRegistry : IRegistry
{
    private readonly InMemoryRegistryServer _server;
    private readonly Channel<(Task Gate, Func<Task> Action)> _events = Channel.CreateUnbounded<(Task Gate, Func<Task> Action)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly KeptEphemerals _kept = new();
    private readonly Lock _stateLock = new();
    private readonly Task _eventLoop;
    private TaskCompletionSource _resumed = NewGate(open: true);
    private ITimer? _expiryTimer;
    private long _sessionId;
    private DateTimeOffset _suspendedAt;
    private volatile RegistryState _state = RegistryState.Connected;
    private int _disposed;

    /// <summary>A registry with a private, single-session tree: the embedded mode for one instance.</summary>
    public InMemoryRegistry()
        : this(new InMemoryRegistryServer())
    {
    }

    internal InMemoryRegistry(InMemoryRegistryServer server)
    {
        _server = server;
        _sessionId = server.OpenSession();
        _eventLoop = Task.Run(RunEventLoopAsync);
    }

    public event Action<RegistrySessionEvent>? SessionChanged;

    public long SessionId => Interlocked.Read(ref _sessionId);

    public RegistryState State => _state;

    public TimeSpan SessionTimeout => _server.SessionTimeout;

    /// <summary>The embedded server is in-process: it is heard from continuously until the connection is suspended.</summary>
    public TimeSpan SinceLastHeard
    {
        get
        {
            lock (_stateLock)
            {
                return _state == RegistryState.Suspended ? _server.TimeProvider.GetUtcNow() - _suspendedAt : TimeSpan.Zero;
            }
        }
    }

    public InMemoryRegistryServer Server => _server;

    /// <summary>Watch and session events queued and not yet delivered (tests wait for zero before moving fake time on).</summary>
    internal int PendingEvents => _events.Reader.Count;

    /// <summary>Test hook: every watch and session event waits this long (on the server's clock) before delivery.</summary>
    public TimeSpan WatchDeliveryDelay { get; set; }

    public Task<string> CreateAsync(string path, ReadOnlyMemory<byte> data, NodeKind kind = NodeKind.Persistent, CancellationToken cancellationToken = default) =>
        Run(path, cancellationToken, id => _server.Create(this, id, path, data, kind));

    public Task DeleteAsync(string path, int version = -1, CancellationToken cancellationToken = default) =>
        Run(path, cancellationToken, id =>
        {
            _server.Delete(this, id, path, version);
            _kept.Forget(path);
            return true;
        });

    public Task<NodeStat?> ExistsAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Run(path, cancellationToken, id => _server.Exists(this, id, path, watcher));

    public Task<RegistryNode?> GetAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Run(path, cancellationToken, id => _server.Get(this, id, path, watcher));

    public Task<NodeStat> SetAsync(string path, ReadOnlyMemory<byte> data, int version = -1, CancellationToken cancellationToken = default) =>
        Run(path, cancellationToken, id => _server.Set(this, id, path, data, version));

    public Task<IReadOnlyList<string>?> GetChildrenAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Run(path, cancellationToken, id => _server.GetChildren(this, id, path, watcher));

    public Task<IReadOnlyList<RegistryOpResult>> MultiAsync(IReadOnlyList<RegistryOp> operations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        return Run(null, cancellationToken, id =>
        {
            var results = _server.Multi(this, id, operations);
            foreach (var delete in operations.OfType<RegistryOp.Delete>())
            {
                _kept.Forget(delete.Path);
            }

            return results;
        });
    }

    public Task KeepEphemeralAsync(string path, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        _kept.KeepAsync(this, path, data, cancellationToken);

    /// <summary>Test hook: the server expires this session now, as after a long partition. The registry then opens a new session
    /// (re-creating kept ephemerals), raising Suspended, SessionLost and NewSession as the ZooKeeper registry does.</summary>
    public void ExpireSession()
    {
        ObjectDisposedException.ThrowIf(_disposed == 1, this);
        var wasSuspended = _state == RegistryState.Suspended;
        if (!wasSuspended)
        {
            Suspend();
        }

        _server.EndSession(SessionId, this);
        if (!wasSuspended)
        {
            Resume();
        }
    }

    /// <summary>Test hook: the connection drops. Calls fail with <see cref="RegistryErrorCode.ConnectionLoss"/>, events wait, and
    /// the session expires unless <see cref="Resume"/> comes within the server's session timeout.</summary>
    public void Suspend() => SuspendConnection(sessionMayExpire: true);

    /// <summary>Test hook: the connection drops as during a ZooKeeper quorum loss: calls fail and events wait as with
    /// <see cref="Suspend"/>, but no server is there to expire the session (when quorum returns, ZooKeeper's new leader renews
    /// every session's timeout), so <see cref="Resume"/> finds it alive however long it took.</summary>
    public void SuspendWithoutExpiry() => SuspendConnection(sessionMayExpire: false);

    private void SuspendConnection(bool sessionMayExpire)
    {
        lock (_stateLock)
        {
            if (_state != RegistryState.Connected)
            {
                return;
            }

            _state = RegistryState.Suspended;
            _suspendedAt = _server.TimeProvider.GetUtcNow();
            _resumed = NewGate(open: false);
            var session = SessionId;
            if (sessionMayExpire)
            {
                _expiryTimer = _server.TimeProvider.CreateTimer(_ => _server.EndSession(session, this), null, _server.SessionTimeout, Timeout.InfiniteTimeSpan);
            }
        }

        Raise(RegistrySessionEventKind.Suspended);
    }

    /// <summary>Test hook: the connection comes back; the session resumes, or, if it expired meanwhile, is replaced.</summary>
    public void Resume()
    {
        TaskCompletionSource gate;
        bool expired;
        lock (_stateLock)
        {
            if (_state != RegistryState.Suspended)
            {
                return;
            }

            _expiryTimer?.Dispose();
            _expiryTimer = null;
            expired = !_server.IsLive(SessionId);
            if (expired)
            {
                Interlocked.Exchange(ref _sessionId, _server.OpenSession());
            }

            _state = RegistryState.Connected;
            gate = _resumed;
        }

        if (!expired)
        {
            gate.TrySetResult();
            Raise(RegistrySessionEventKind.Reconnected);
            return;
        }

        // Same order as ZooKeeper: the old watchers' SessionEnded events were queued at expiry; then SessionLost,
        // then the kept ephemerals are re-created on the new session, then NewSession.
        var newSession = SessionId;
        Raise(RegistrySessionEventKind.SessionLost);
        _events.Writer.TryWrite((Task.CompletedTask, async () =>
        {
            await _kept.RestoreAsync(this, (_, _) => { }, CancellationToken.None).ConfigureAwait(false);
            SessionChanged?.Invoke(new RegistrySessionEvent(RegistrySessionEventKind.NewSession, newSession));
        }));
        gate.TrySetResult();
    }

    /// <summary>Test hook: drops the connection for <paramref name="duration"/> (on the server's clock), then resumes.</summary>
    public async Task DropConnectionAsync(TimeSpan duration, CancellationToken cancellationToken = default)
    {
        Suspend();
        try
        {
            await Task.Delay(duration, _server.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Resume();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        lock (_stateLock)
        {
            _expiryTimer?.Dispose();
            _state = RegistryState.Closed;
            _resumed.TrySetResult();
        }

        // Like closeSession: ephemerals go at once, and armed watches learn that they will never fire.
        _server.EndSession(SessionId, this);
        _events.Writer.TryComplete();
        await _eventLoop.ConfigureAwait(false);
    }

    /// <summary>A watch event queued while the connection is suspended waits for the resume (as ZooKeeper's setWatches catch-up).</summary>
    internal void EnqueueWatchEvent(Action<RegistryWatchEvent> watcher, RegistryWatchEvent watchEvent)
    {
        Task gate;
        lock (_stateLock)
        {
            gate = _resumed.Task;
        }

        _events.Writer.TryWrite((gate, () =>
        {
            watcher(watchEvent);
            return Task.CompletedTask;
        }));
    }

    /// <summary>Session events are never held back by a suspension: they announce it.</summary>
    private void Raise(RegistrySessionEventKind kind)
    {
        var change = new RegistrySessionEvent(kind, SessionId);
        _events.Writer.TryWrite((Task.CompletedTask, () =>
        {
            SessionChanged?.Invoke(change);
            return Task.CompletedTask;
        }));
    }

    private Task<T> Run<T>(string? path, CancellationToken cancellationToken, Func<long, T> operation)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<T>(cancellationToken);
        }

        try
        {
            return _state switch
            {
                RegistryState.Closed => throw new ObjectDisposedException(nameof(InMemoryRegistry)),
                RegistryState.Suspended => throw new RegistryException(RegistryErrorCode.ConnectionLoss, path, $"Registry ConnectionLoss{(path is null ? "" : $" for '{path}'")}: the connection is suspended."),
                _ => Task.FromResult(operation(SessionId)),
            };
        }
        catch (Exception e) when (e is RegistryException or ArgumentException or ObjectDisposedException)
        {
            return Task.FromException<T>(e);
        }
    }

    // ReadAllAsync's own loop, written out: Coyote's rewriting (systematic tests of the failover core) cannot rewrite an
    // `await foreach` over ConfigureAwait (ConfiguredCancelableAsyncEnumerable), and the rewritten loop would crash the test host.
    private async Task RunEventLoopAsync()
    {
        while (await _events.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (_events.Reader.TryRead(out var next))
            {
                var (gate, action) = next;
                await gate.ConfigureAwait(false);
                if (WatchDeliveryDelay > TimeSpan.Zero)
                {
                    await Task.Delay(WatchDeliveryDelay, _server.TimeProvider).ConfigureAwait(false);
                }

                try
                {
                    await action().ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // A throwing watcher must not stop delivery to the others.
                }
            }
        }
    }

    private static TaskCompletionSource NewGate(bool open)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (open)
        {
            gate.TrySetResult();
        }

        return gate;
    }
}
