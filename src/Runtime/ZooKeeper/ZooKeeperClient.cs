using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ShardedJobs.ZooKeeper;

/// <summary>
/// An asynchronous, thread-safe ZooKeeper client speaking the wire protocol directly.
/// <para>
/// Three roles, as in the Java client: a connection loop that owns the socket (handshake, pings, in-order reply matching,
/// reconnection with the same session to any server), a session state machine (<see cref="State"/>), and a single event loop
/// that delivers watch events and state changes in order, so user code never runs on the I/O loop and a slow watcher cannot
/// stall the connection.
/// </para>
/// <para>
/// Failures: a lost connection fails every request in flight with <see cref="ConnectionLossException"/> (a write may or may not
/// have been applied) and the client reconnects by itself; requests issued meanwhile wait for the next connection attempt.
/// When the server reports the session gone, the client turns <see cref="ZooKeeperState.Expired"/> for good: every call fails
/// with <see cref="SessionExpiredException"/> and every armed watch gets one <see cref="WatchedEventType.None"/> event.
/// </para>
/// </summary>
public sealed partial class ZooKeeperClient : IAsyncDisposable
{
    private static readonly byte[] s_emptyPassword = new byte[16];

    private readonly ZooKeeperClientOptions _options;
    private readonly ZooKeeperConnectionString _connectionString;
    private readonly string? _chroot;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly WatchManager _watches = new();
    private readonly Channel<PendingRequest> _outgoing = Channel.CreateUnbounded<PendingRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<Action> _events = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<(string Scheme, byte[] Auth)> _auths = [];
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _firstConnection = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _connectionLoop;
    private readonly Task _eventLoop;

    private volatile ZooKeeperState _state = ZooKeeperState.Connecting;
    private volatile Connection? _connection;
    private long _lastHeardTimestamp;
    private long _sessionId;
    private byte[] _sessionPassword = s_emptyPassword;
    private int _negotiatedTimeoutMs;
    private long _lastZxid;
    private int _lastXid;
    private int _serverIndex;
    private string? _lastError;
    private int _disposed;

    private ZooKeeperClient(ZooKeeperClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.SessionTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.SessionTimeout, "ZooKeeper SessionTimeout must be positive, e.g. 00:00:10.");
        }

        _options = options;
        _connectionString = ZooKeeperConnectionString.Parse(options.ConnectionString);
        _chroot = _connectionString.Chroot;
        _logger = options.LoggerFactory?.CreateLogger<ZooKeeperClient>() ?? NullLogger<ZooKeeperClient>.Instance;
        _time = options.TimeProvider;
        _random = options.RandomSeed is { } seed ? new Random(seed) : new Random();
        // The server list is shuffled once and then walked round-robin, so clients spread over the ensemble.
        _servers = [.. _connectionString.Servers.OrderBy(_ => _random.Next())];
        if (options.Digest is { } digest)
        {
            _ = ZooKeeperAcl.DigestId(digest); // validates the format before anything is sent
            _auths.Add(("digest", Encoding.UTF8.GetBytes(digest)));
        }

        if (options.ExistingSession is var (id, password))
        {
            _sessionId = id;
            _sessionPassword = password;
        }

        _eventLoop = Task.Run(RunEventLoopAsync);
        _connectionLoop = Task.Run(RunConnectionLoopAsync);
    }

    private readonly (string Host, int Port)[] _servers;

    /// <summary>Raised on the event loop whenever <see cref="State"/> changes.</summary>
    public event Action<ZooKeeperStateChange>? StateChanged;

    public ZooKeeperState State => _state;

    /// <summary>The session id (0 before the first connection).</summary>
    public long SessionId => Interlocked.Read(ref _sessionId);

    /// <summary>
    /// How long since anything was last received from the server, on any connection of this session. The server expires the
    /// session once it has heard nothing for the session timeout; this is the client's best view of how close that is.
    /// </summary>
    public TimeSpan SinceLastHeard => _time.GetElapsedTime(Volatile.Read(ref _lastHeardTimestamp));

    /// <summary>The session timeout the server granted (zero before the first connection).</summary>
    public TimeSpan NegotiatedSessionTimeout => TimeSpan.FromMilliseconds(Volatile.Read(ref _negotiatedTimeoutMs));

    /// <summary>The chroot every path is relative to, or null.</summary>
    public string? Chroot => _chroot;

    internal byte[] SessionPassword => _sessionPassword;

    /// <summary>The highest transaction id seen in any reply.</summary>
    public long LastZxid => Interlocked.Read(ref _lastZxid);

    /// <summary>The <c>host:port</c> of the server the client is connected to, or null while disconnected.</summary>
    public string? ConnectedServer => _connection?.Server;

    /// <summary>Creates a client and waits until it has a session (at most <see cref="ZooKeeperClientOptions.ConnectionTimeout"/>).</summary>
    /// <exception cref="ConnectionLossException">No server answered in time; the message names the connection string and the timeout.</exception>
    public static async Task<ZooKeeperClient> ConnectAsync(ZooKeeperClientOptions options, CancellationToken cancellationToken = default)
    {
        var client = new ZooKeeperClient(options);
        try
        {
            await client._firstConnection.Task.WaitAsync(options.ConnectionTimeout, options.TimeProvider, cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch (TimeoutException)
        {
            var lastError = client._lastError;
            await client.DisposeAsync().ConfigureAwait(false);
            throw new ConnectionLossException(null,
                $"Could not connect to ZooKeeper at '{options.ConnectionString}' within {options.ConnectionTimeout.TotalSeconds:0.###} s" +
                (lastError is null ? "." : $" (last error: {lastError}).") +
                " Check that the servers are running and reachable, or raise ConnectionTimeout.");
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Shorthand for <see cref="ConnectAsync(ZooKeeperClientOptions, CancellationToken)"/>.</summary>
    public static Task<ZooKeeperClient> ConnectAsync(string connectionString, TimeSpan sessionTimeout, CancellationToken cancellationToken = default) =>
        ConnectAsync(new ZooKeeperClientOptions { ConnectionString = connectionString, SessionTimeout = sessionTimeout }, cancellationToken);

    // ---------------------------------------------------------------- operations

    /// <summary>Creates a node and returns its actual path (with the sequence suffix for sequential modes).</summary>
    public async Task<string> CreateAsync(string path, ReadOnlyMemory<byte> data, CreateMode mode = CreateMode.Persistent,
        IReadOnlyList<ZooKeeperAcl>? acl = null, CancellationToken cancellationToken = default)
    {
        if (mode == CreateMode.Container)
        {
            return (await CreateWithStatAsync(path, data, mode, acl, cancellationToken).ConfigureAwait(false)).Path;
        }

        ValidateCreatePath(path, mode);
        var body = ZooKeeperRequests.CreateBody(ToServerPath(path), data.Span, acl ?? ZooKeeperAcl.OpenUnsafe, mode);
        var reply = await SendAsync(OpCode.Create, body, path, null, cancellationToken).ConfigureAwait(false);
        return ToClientPath(Decode(reply, path, ZooKeeperRequests.ReadPath));
    }

    /// <summary>Creates a node (create2) and returns its actual path and its Stat.</summary>
    public async Task<CreatedNode> CreateWithStatAsync(string path, ReadOnlyMemory<byte> data, CreateMode mode = CreateMode.Persistent,
        IReadOnlyList<ZooKeeperAcl>? acl = null, CancellationToken cancellationToken = default)
    {
        ValidateCreatePath(path, mode);
        var body = ZooKeeperRequests.CreateBody(ToServerPath(path), data.Span, acl ?? ZooKeeperAcl.OpenUnsafe, mode);
        // Containers exist only through op 19; op 1/15 with the container flag silently makes a plain node.
        var op = mode == CreateMode.Container ? OpCode.CreateContainer : OpCode.Create2;
        var reply = await SendAsync(op, body, path, null, cancellationToken).ConfigureAwait(false);
        return Decode(reply, path, (ref JuteReader reader) => new CreatedNode(ToClientPath(ZooKeeperRequests.ReadPath(ref reader)), reader.ReadStat()));
    }

    /// <summary>Deletes a node if its version matches (-1: any version).</summary>
    public async Task DeleteAsync(string path, int version = -1, CancellationToken cancellationToken = default)
    {
        ZooKeeperPaths.Validate(path);
        await SendAsync(OpCode.Delete, ZooKeeperRequests.DeleteBody(ToServerPath(path), version), path, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The node's Stat, or null when it does not exist. A <paramref name="watcher"/> fires once on creation, change or deletion (also when the node is missing).</summary>
    public async Task<ZooKeeperStat?> ExistsAsync(string path, Action<WatchedEvent>? watcher = null, CancellationToken cancellationToken = default)
    {
        ZooKeeperPaths.Validate(path);
        var serverPath = ToServerPath(path);
        var body = ZooKeeperRequests.PathAndWatchBody(serverPath, watcher is not null);
        var watch = watcher is null ? null : new WatchRegistration(WatchKind.Exist, serverPath, watcher);
        var reply = await SendAsync(OpCode.Exists, body, path, watch, cancellationToken, tolerate: ZooKeeperErrorCode.NoNode).ConfigureAwait(false);
        return reply.Error == ZooKeeperErrorCode.NoNode ? null : Decode(reply, path, static (ref JuteReader reader) => reader.ReadStat());
    }

    /// <summary>The node's data and Stat. A <paramref name="watcher"/> fires once on change or deletion.</summary>
    /// <exception cref="NoNodeException">The node does not exist (no watch is left).</exception>
    public async Task<NodeData> GetDataAsync(string path, Action<WatchedEvent>? watcher = null, CancellationToken cancellationToken = default)
    {
        ZooKeeperPaths.Validate(path);
        var serverPath = ToServerPath(path);
        var body = ZooKeeperRequests.PathAndWatchBody(serverPath, watcher is not null);
        var watch = watcher is null ? null : new WatchRegistration(WatchKind.Data, serverPath, watcher);
        var reply = await SendAsync(OpCode.GetData, body, path, watch, cancellationToken).ConfigureAwait(false);
        return Decode(reply, path, static (ref JuteReader reader) => new NodeData(reader.ReadBuffer() ?? [], reader.ReadStat()));
    }

    /// <summary>Replaces the node's data if its version matches (-1: any version) and returns the new Stat.</summary>
    public async Task<ZooKeeperStat> SetDataAsync(string path, ReadOnlyMemory<byte> data, int version = -1, CancellationToken cancellationToken = default)
    {
        ZooKeeperPaths.Validate(path);
        var reply = await SendAsync(OpCode.SetData, ZooKeeperRequests.SetDataBody(ToServerPath(path), data.Span, version), path, null, cancellationToken).ConfigureAwait(false);
        return Decode(reply, path, static (ref JuteReader reader) => reader.ReadStat());
    }

    /// <summary>The node's children (bare names, sorted ordinally). A <paramref name="watcher"/> fires once when a child is added or removed, or the node is deleted.</summary>
    public async Task<IReadOnlyList<string>> GetChildrenAsync(string path, Action<WatchedEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        (await GetChildrenCoreAsync(path, watcher, withStat: false, cancellationToken).ConfigureAwait(false)).Children;

    /// <summary>Like <see cref="GetChildrenAsync"/>, with the node's Stat (getChildren2).</summary>
    public Task<ChildrenWithStat> GetChildrenWithStatAsync(string path, Action<WatchedEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        GetChildrenCoreAsync(path, watcher, withStat: true, cancellationToken);

    /// <summary>
    /// Runs <paramref name="operations"/> atomically: all are applied, or none. Returns one result per operation.
    /// </summary>
    /// <exception cref="MultiOperationException">Nothing was applied; it names the first failing operation and its code.</exception>
    public async Task<IReadOnlyList<OpResult>> MultiAsync(IReadOnlyList<ZooKeeperOp> operations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        if (operations.Count == 0)
        {
            return [];
        }

        foreach (var op in operations)
        {
            if (op is CreateOp create)
            {
                ValidateCreatePath(create.Path, create.Mode);
            }
            else
            {
                ZooKeeperPaths.Validate(op.Path);
            }
        }

        var reply = await SendAsync(OpCode.Multi, ZooKeeperRequests.MultiBody(operations, ToServerPath), null, null, cancellationToken).ConfigureAwait(false);
        var results = Decode(reply, null, (ref JuteReader reader) => ZooKeeperRequests.ReadMultiResults(ref reader, ToClientPath));
        for (var i = 0; i < results.Count; i++)
        {
            if (results[i] is OpResult.Error { Code: not ZooKeeperErrorCode.Ok } failure)
            {
                throw new MultiOperationException(failure.Code, i < operations.Count ? operations[i].Path : null, i, results);
            }
        }

        return results;
    }

    /// <summary>Makes the connected server catch up with the leader for <paramref name="path"/>, so a following read sees every write committed before.</summary>
    public async Task SyncAsync(string path, CancellationToken cancellationToken = default)
    {
        ZooKeeperPaths.Validate(path);
        await SendAsync(OpCode.Sync, ZooKeeperRequests.PathBody(ToServerPath(path)), path, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The node's ACL and Stat.</summary>
    public async Task<(IReadOnlyList<ZooKeeperAcl> Acl, ZooKeeperStat Stat)> GetAclAsync(string path, CancellationToken cancellationToken = default)
    {
        ZooKeeperPaths.Validate(path);
        var reply = await SendAsync(OpCode.GetAcl, ZooKeeperRequests.PathBody(ToServerPath(path)), path, null, cancellationToken).ConfigureAwait(false);
        return Decode(reply, path, static (ref JuteReader reader) => ((IReadOnlyList<ZooKeeperAcl>)reader.ReadAcls(), reader.ReadStat()));
    }

    /// <summary>Adds credentials to this session's connection, and to every future connection of it.</summary>
    /// <remarks>Rejected credentials end the client in <see cref="ZooKeeperState.AuthFailed"/>, as the server closes the connection.
    /// The call itself fails with <see cref="ZooKeeperErrorCode.AuthFailed"/>, or with <see cref="ZooKeeperErrorCode.ConnectionLoss"/>
    /// when the server's close overtakes its reply; the credentials are re-sent on the next connection, which then ends the client.</remarks>
    public async Task AddAuthAsync(string scheme, byte[] auth, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(scheme);
        ArgumentNullException.ThrowIfNull(auth);
        ThrowIfTerminal(null);
        lock (_auths)
        {
            _auths.Add((scheme, auth));
        }

        // Remembered for every later connection; sent now on the current one (or the next, if disconnected).
        await SendAsync(OpCode.Auth, ZooKeeperRequests.AuthBody(scheme, auth), null, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Adds digest credentials (<c>user:password</c>).</summary>
    public Task AddDigestAuthAsync(string userAndPassword, CancellationToken cancellationToken = default)
    {
        _ = ZooKeeperAcl.DigestId(userAndPassword);
        return AddAuthAsync("digest", Encoding.UTF8.GetBytes(userAndPassword), cancellationToken);
    }

    /// <summary>Ends the session (its ephemeral nodes go at once) and closes the client. Safe to call more than once.</summary>
    public async Task CloseAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            await _connectionLoop.ConfigureAwait(false);
            return;
        }

        if (_state == ZooKeeperState.Connected)
        {
            try
            {
                var timeout = TimeSpan.FromMilliseconds(Math.Clamp(Volatile.Read(ref _negotiatedTimeoutMs), 500, 3000));
                await SendAsync(OpCode.CloseSession, [], null, null, CancellationToken.None).WaitAsync(timeout, _time).ConfigureAwait(false);
                ZooKeeperLog.Closed(_logger, SessionId);
            }
            catch (Exception e) when (e is ZooKeeperException or TimeoutException)
            {
                // The session then ends by expiry instead; nothing else to do.
            }
        }

        Terminate(ZooKeeperState.Closed);
        await _closing.CancelAsync().ConfigureAwait(false);
        await _connectionLoop.ConfigureAwait(false);
        _events.Writer.TryComplete();
        await _eventLoop.ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    // ---------------------------------------------------------------- request plumbing

    private async Task<ChildrenWithStat> GetChildrenCoreAsync(string path, Action<WatchedEvent>? watcher, bool withStat, CancellationToken cancellationToken)
    {
        ZooKeeperPaths.Validate(path);
        var serverPath = ToServerPath(path);
        var body = ZooKeeperRequests.PathAndWatchBody(serverPath, watcher is not null);
        var watch = watcher is null ? null : new WatchRegistration(WatchKind.Child, serverPath, watcher);
        var reply = await SendAsync(withStat ? OpCode.GetChildren2 : OpCode.GetChildren, body, path, watch, cancellationToken).ConfigureAwait(false);
        return Decode(reply, path, (ref JuteReader reader) =>
        {
            var children = reader.ReadStrings();
            children.Sort(StringComparer.Ordinal);
            return new ChildrenWithStat(children, withStat ? reader.ReadStat() : null!);
        });
    }

    private async Task<Reply> SendAsync(OpCode op, byte[] body, string? path, WatchRegistration? watch, CancellationToken cancellationToken,
        ZooKeeperErrorCode tolerate = ZooKeeperErrorCode.Ok)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfTerminal(path);
        var request = new PendingRequest(op, body, path, watch);
        if (!_outgoing.Writer.TryWrite(request))
        {
            ThrowIfTerminal(path);
            throw new ObjectDisposedException(nameof(ZooKeeperClient));
        }

        Reply reply;
        if (cancellationToken.CanBeCanceled)
        {
            // A request cancelled before it was written is never sent; once sent, its reply is still consumed in order.
            using var registration = cancellationToken.Register(static (r, token) => ((PendingRequest)r!).Cancel(token), request);
            reply = await request.Completion.Task.ConfigureAwait(false);
        }
        else
        {
            reply = await request.Completion.Task.ConfigureAwait(false);
        }

        if (reply.Error != ZooKeeperErrorCode.Ok && reply.Error != tolerate)
        {
            throw ZooKeeperException.Create(reply.Error, path);
        }

        return reply;
    }

    private delegate T BodyParser<T>(ref JuteReader reader);

    /// <summary>
    /// Decodes a reply body. A body that does not decode means the server (or the stream) broke the protocol: the connection
    /// is dropped, as for any other corruption, and the caller gets <see cref="ConnectionLossException"/>, never a parsing error.
    /// </summary>
    private T Decode<T>(Reply reply, string? path, BodyParser<T> parse)
    {
        try
        {
            var reader = new JuteReader(reply.Body);
            return parse(ref reader);
        }
        catch (ZooKeeperProtocolException e)
        {
            _connection?.Abort(ZooKeeperErrorCode.ConnectionLoss);
            throw new ConnectionLossException(path, $"ZooKeeper sent a malformed reply{(path is null ? "" : $" for '{path}'")} ({e.Message}); the connection was dropped.", e);
        }
    }

    private void ThrowIfTerminal(string? path)
    {
        switch (_state)
        {
            case ZooKeeperState.Expired:
                throw new SessionExpiredException(path);
            case ZooKeeperState.AuthFailed:
                throw new ZooKeeperException(ZooKeeperErrorCode.AuthFailed, path, "The ZooKeeper client stopped after the server rejected its credentials; create a new client with valid credentials.");
            case ZooKeeperState.Closed:
                throw new ObjectDisposedException(nameof(ZooKeeperClient), "The ZooKeeper client is closed.");
        }
    }

    private static void ValidateCreatePath(string path, CreateMode mode) =>
        ZooKeeperPaths.Validate(path, sequential: mode is CreateMode.PersistentSequential or CreateMode.EphemeralSequential);

    internal string ToServerPath(string clientPath) => _chroot is null ? clientPath : clientPath == "/" ? _chroot : _chroot + clientPath;

    internal string ToClientPath(string serverPath)
    {
        if (_chroot is null)
        {
            return serverPath;
        }

        if (serverPath == _chroot)
        {
            return "/";
        }

        return serverPath.StartsWith(_chroot, StringComparison.Ordinal) && serverPath.Length > _chroot.Length && serverPath[_chroot.Length] == '/'
            ? serverPath[_chroot.Length..]
            : serverPath;
    }

    private int NextXid()
    {
        // 1, 2, ... int.MaxValue, then 1 again: ordinary xids are never 0 or negative (those are reserved).
        int current, next;
        do
        {
            current = Volatile.Read(ref _lastXid);
            next = current == int.MaxValue ? 1 : current + 1;
        }
        while (Interlocked.CompareExchange(ref _lastXid, next, current) != current);
        return next;
    }

    private void ObserveZxid(long zxid)
    {
        long current;
        while (zxid > (current = Interlocked.Read(ref _lastZxid)))
        {
            if (Interlocked.CompareExchange(ref _lastZxid, zxid, current) == current)
            {
                return;
            }
        }
    }

    // ---------------------------------------------------------------- session state machine

    private void SetState(ZooKeeperState state, bool newSession = false)
    {
        var previous = _state;
        if (previous == state && !newSession)
        {
            return;
        }

        _state = state;
        var change = new ZooKeeperStateChange(state, SessionId, newSession);
        Post(() => StateChanged?.Invoke(change));
    }

    /// <summary>Moves to a terminal state once: fails everything queued and pending, and tells every armed watcher.</summary>
    private void Terminate(ZooKeeperState state)
    {
        lock (_outgoing)
        {
            if (_state is ZooKeeperState.Expired or ZooKeeperState.AuthFailed or ZooKeeperState.Closed)
            {
                return;
            }

            SetState(state);
            _outgoing.Writer.TryComplete();
        }

        var code = state switch
        {
            ZooKeeperState.Expired => ZooKeeperErrorCode.SessionExpired,
            ZooKeeperState.AuthFailed => ZooKeeperErrorCode.AuthFailed,
            _ => ZooKeeperErrorCode.ConnectionLoss,
        };
        _connection?.Abort(code);
        FailQueued(code);
        foreach (var (watcher, serverPath) in _watches.RemoveAll())
        {
            var notice = new WatchedEvent(WatchedEventType.None, state, ToClientPath(serverPath));
            Post(() => watcher(notice));
        }

        _firstConnection.TrySetException(ZooKeeperException.Create(code, null));
    }

    private void FailQueued(ZooKeeperErrorCode code)
    {
        while (_outgoing.Reader.TryRead(out var request))
        {
            request.Fail(code);
        }
    }

    private void Post(Action action) => _events.Writer.TryWrite(action);

    private async Task RunEventLoopAsync()
    {
        await foreach (var action in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                ZooKeeperLog.HandlerThrew(_logger, e);
            }
        }
    }

    private async Task RunConnectionLoopAsync()
    {
        var failures = 0;
        while (!_closing.IsCancellationRequested && _state is ZooKeeperState.Connecting or ZooKeeperState.Connected or ZooKeeperState.Disconnected)
        {
            if (failures > 0)
            {
                try
                {
                    await Task.Delay(ReconnectDelay(failures), _time, _closing.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            var (host, port) = _servers[_serverIndex];
            _serverIndex = (_serverIndex + 1) % _servers.Length;
            var server = $"{host}:{port}";
            Connection? connection = null;
            try
            {
                connection = await Connection.OpenAsync(this, host, port, AttemptTimeout(), _closing.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (!_closing.IsCancellationRequested)
            {
                _lastError = $"{server}: {e.Message}";
                ZooKeeperLog.ConnectAttemptFailed(_logger, server, e.Message);
                // Requests that waited for this attempt fail now, as in the Java client.
                FailQueued(ZooKeeperErrorCode.ConnectionLoss);
                failures++;
                continue;
            }
            catch (Exception)
            {
                break;
            }

            var response = connection.Response;
            if (response.SessionIsGone)
            {
                connection.Dispose();
                ZooKeeperLog.SessionExpired(_logger, SessionId);
                Terminate(ZooKeeperState.Expired);
                break;
            }

            var newSession = SessionId == 0;
            Interlocked.Exchange(ref _sessionId, response.SessionId);
            _sessionPassword = response.Password;
            Volatile.Write(ref _negotiatedTimeoutMs, response.TimeoutMs);
            ZooKeeperLog.Connected(_logger, response.SessionId, newSession ? "established" : "resumed", server, response.TimeoutMs);
            _connection = connection;
            failures = 0;
            SetState(ZooKeeperState.Connected, newSession);
            _firstConnection.TrySetResult();

            var (reason, error) = await connection.RunAsync().ConfigureAwait(false);
            _connection = null;
            connection.Dispose();
            if (reason == ConnectionEnd.AuthFailed)
            {
                Terminate(ZooKeeperState.AuthFailed);
                break;
            }

            if (_closing.IsCancellationRequested || Volatile.Read(ref _disposed) == 1 || _state is not ZooKeeperState.Connected)
            {
                break;
            }

            ZooKeeperLog.ConnectionLost(_logger, server, SessionId, error?.Message ?? reason.ToString(), error is ZooKeeperProtocolException ? error : null);
            SetState(ZooKeeperState.Disconnected);
            // The next attempt goes straight to the next server; only repeated failures back off.
            failures = _servers.Length > 1 ? 0 : 1;
        }

        FailQueued(_state == ZooKeeperState.Expired ? ZooKeeperErrorCode.SessionExpired : ZooKeeperErrorCode.ConnectionLoss);
    }

    /// <summary>Before the first session the requested timeout, then the negotiated one, shared out over the servers (Java's rule).</summary>
    private TimeSpan AttemptTimeout()
    {
        var sessionMs = Volatile.Read(ref _negotiatedTimeoutMs) is > 0 and var negotiated ? negotiated : _options.SessionTimeout.TotalMilliseconds;
        return TimeSpan.FromMilliseconds(Math.Max(250, sessionMs / _servers.Length));
    }

    /// <summary>A random pause that grows with consecutive failures, capped by <see cref="ZooKeeperClientOptions.MaxReconnectDelay"/> and by a quarter of the session timeout.</summary>
    private TimeSpan ReconnectDelay(int failures)
    {
        var sessionMs = Volatile.Read(ref _negotiatedTimeoutMs) is > 0 and var negotiated ? negotiated : _options.SessionTimeout.TotalMilliseconds;
        var capMs = Math.Min(_options.MaxReconnectDelay.TotalMilliseconds, sessionMs / 4);
        var ceilingMs = Math.Min(capMs, 50 * Math.Pow(2, Math.Min(failures, 10)));
        lock (_random)
        {
            return TimeSpan.FromMilliseconds(ceilingMs / 2 + _random.NextDouble() * ceilingMs / 2);
        }
    }
}
