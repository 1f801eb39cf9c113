using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ShardedJobs.ZooKeeper;

internal readonly record struct Reply(long Zxid, ZooKeeperErrorCode Error, byte[] Body);

/// <summary>A request from the moment it is queued until its reply (or failure) is known.</summary>
internal sealed class PendingRequest(OpCode op, byte[] body, string? path, WatchRegistration? watch)
{
    private volatile bool _cancelled;

    public OpCode Op { get; } = op;

    public byte[] Body { get; } = body;

    public string? Path { get; } = path;

    public WatchRegistration? Watch { get; } = watch;

    public int Xid { get; set; }

    /// <summary>Completed off the I/O loop: continuations never run on the thread that reads the socket.</summary>
    public TaskCompletionSource<Reply> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsCancelled => _cancelled;

    public void Cancel(CancellationToken token)
    {
        _cancelled = true;
        Completion.TrySetCanceled(token);
    }

    public void Fail(ZooKeeperErrorCode code) => Completion.TrySetResult(new Reply(0, code, []));
}

internal enum ConnectionEnd
{
    Failed,
    AuthFailed,
    Aborted,
}

public sealed partial class ZooKeeperClient
{
    /// <summary>One TCP connection of the session: handshake, then a send loop, a receive loop and a liveness monitor.</summary>
    private sealed class Connection : IDisposable
    {
        private const int SendBatchBytes = 64 * 1024;

        private readonly ZooKeeperClient _client;
        private readonly Socket _socket;
        private readonly CancellationTokenSource _stop = new();
        private readonly Queue<PendingRequest> _pending = new();
        private readonly Queue<PendingRequest?> _authWaiters = new();
        private long _lastSendTimestamp;
        private long _lastReceiveTimestamp;
        private volatile bool _authFailed;
        private volatile bool _aborted;
        private ZooKeeperErrorCode _abortCode = ZooKeeperErrorCode.ConnectionLoss;

        private Connection(ZooKeeperClient client, Socket socket, string server)
        {
            _client = client;
            _socket = socket;
            Server = server;
        }

        public string Server { get; }

        public ConnectResponse Response { get; private set; }

        private TimeProvider Time => _client._time;

        /// <summary>Connects and performs the session handshake within <paramref name="timeout"/>.</summary>
        public static async Task<Connection> OpenAsync(ZooKeeperClient client, string host, int port, TimeSpan timeout, CancellationToken cancellationToken)
        {
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attempt.CancelAfter(timeout);
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, LingerState = new LingerOption(false, 0) };
            var connection = new Connection(client, socket, $"{host}:{port}");
            try
            {
                var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, attempt.Token).ConfigureAwait(false);
                await socket.ConnectAsync(addresses, port, attempt.Token).ConfigureAwait(false);
                var request = new ConnectRequest(client.LastZxid, (int)client._options.SessionTimeout.TotalMilliseconds, client.SessionId, client._sessionPassword);
                await socket.SendAsync(request.ToFrame(), SocketFlags.None, attempt.Token).ConfigureAwait(false);
                var header = new byte[4];
                await connection.ReceiveExactlyAsync(header, attempt.Token).ConfigureAwait(false);
                var length = BinaryPrimitives.ReadInt32BigEndian(header);
                if (length is < 0 or > 1024)
                {
                    throw new ZooKeeperProtocolException($"the server answered the handshake with a {length}-byte frame");
                }

                var payload = new byte[length];
                await connection.ReceiveExactlyAsync(payload, attempt.Token).ConfigureAwait(false);
                connection.Response = ConnectResponse.Parse(payload);
                return connection;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                connection.Dispose();
                throw new TimeoutException($"no session handshake within {timeout.TotalMilliseconds:0} ms");
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }

        /// <summary>Runs the connection until it fails or is aborted, then fails every request still waiting for a reply on it.</summary>
        public async Task<(ConnectionEnd Reason, Exception? Error)> RunAsync()
        {
            var now = Time.GetTimestamp();
            _lastReceiveTimestamp = now;
            _lastSendTimestamp = now;
            Volatile.Write(ref _client._lastHeardTimestamp, now); // the handshake's reply was just received
            Exception? error = null;
            var loops = new[] { SendLoopAsync(), ReceiveLoopAsync(), MonitorAsync() };
            try
            {
                await await Task.WhenAny(loops).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                error = e;
            }

            await _stop.CancelAsync().ConfigureAwait(false);
            _socket.Dispose();
            try
            {
                await Task.WhenAll(loops).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The first failure is the one reported; the others are its consequences.
            }

            var code = _aborted ? _abortCode : ZooKeeperErrorCode.ConnectionLoss;
            lock (_pending)
            {
                while (_pending.TryDequeue(out var request))
                {
                    request.Fail(code);
                }

                while (_authWaiters.TryDequeue(out var waiter))
                {
                    waiter?.Fail(code);
                }
            }

            var reason = _authFailed ? ConnectionEnd.AuthFailed : _aborted ? ConnectionEnd.Aborted : ConnectionEnd.Failed;
            return (reason, error ?? (reason == ConnectionEnd.Failed ? new IOException("the connection ended") : null));
        }

        /// <summary>Ends the connection from outside (the session ended or the client closed); pending requests fail with <paramref name="code"/>.</summary>
        public void Abort(ZooKeeperErrorCode code)
        {
            _abortCode = code;
            _aborted = true;
            try
            {
                _stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The connection ended and was disposed while we decided to abort it: nothing left to stop.
            }
        }

        public void Dispose()
        {
            _socket.Dispose();
            _stop.Dispose();
        }

        // ------------------------------------------------------------ sending

        private async Task SendLoopAsync()
        {
            var token = _stop.Token;
            var writer = new JuteWriter(SendBatchBytes);
            WriteSessionRestore(writer);
            await FlushAsync(writer, token).ConfigureAwait(false);
            var reader = _client._outgoing.Reader;
            Task<bool>? waiting = null;
            while (true)
            {
                while (writer.Length < SendBatchBytes && reader.TryRead(out var request))
                {
                    Append(writer, request);
                }

                if (writer.Length > 0)
                {
                    await FlushAsync(writer, token).ConfigureAwait(false);
                    continue;
                }

                // Idle: ping after a third of the session timeout without sending anything, as the Java client does.
                var pingDue = PingInterval - Time.GetElapsedTime(Volatile.Read(ref _lastSendTimestamp));
                if (pingDue <= TimeSpan.Zero)
                {
                    ZooKeeperRequests.WriteFrame(writer, Xids.Ping, OpCode.Ping, []);
                    await FlushAsync(writer, token).ConfigureAwait(false);
                    continue;
                }

                waiting ??= reader.WaitToReadAsync(token).AsTask();
                var delay = Task.Delay(pingDue, Time, token);
                if (await Task.WhenAny(waiting, delay).ConfigureAwait(false) == waiting)
                {
                    var more = await waiting.ConfigureAwait(false);
                    waiting = null;
                    if (!more)
                    {
                        return; // the client reached a terminal state
                    }
                }
                else
                {
                    await delay.ConfigureAwait(false); // surfaces cancellation
                }
            }
        }

        /// <summary>Auth packets first, then setWatches for every armed watch: what a new connection must restore before anything else.</summary>
        private void WriteSessionRestore(JuteWriter writer)
        {
            lock (_client._auths)
            {
                foreach (var (scheme, auth) in _client._auths)
                {
                    lock (_pending)
                    {
                        _authWaiters.Enqueue(null);
                    }

                    ZooKeeperRequests.WriteFrame(writer, Xids.Auth, OpCode.Auth, ZooKeeperRequests.AuthBody(scheme, auth));
                }
            }

            var (data, exist, child) = _client._watches.Snapshot();
            if (data.Count + exist.Count + child.Count == 0)
            {
                return;
            }

            foreach (var batch in SetWatchesBatches(data, exist, child))
            {
                var request = new PendingRequest(OpCode.SetWatches, batch, null, null);
                _ = request.Completion.Task.ContinueWith(
                    static (t, state) =>
                    {
                        var code = t.Result.Error;
                        if (code is not ZooKeeperErrorCode.Ok and not ZooKeeperErrorCode.ConnectionLoss)
                        {
                            ZooKeeperLog.SetWatchesFailed((Microsoft.Extensions.Logging.ILogger)state!, code);
                        }
                    },
                    _client._logger, CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
                Append(writer, request);
            }
        }

        private IEnumerable<byte[]> SetWatchesBatches(List<string> data, List<string> exist, List<string> child)
        {
            // Split like the Java client, so one huge watch set never exceeds the server's frame limit.
            var lists = new[] { new List<string>(), new List<string>(), new List<string>() };
            var bytes = 0;
            var sources = new[] { data, exist, child };
            for (var kind = 0; kind < 3; kind++)
            {
                foreach (var path in sources[kind])
                {
                    lists[kind].Add(path);
                    bytes += Encoding.UTF8.GetByteCount(path) + 4;
                    if (bytes >= ProtocolLimits.SetWatchesBatchBytes)
                    {
                        yield return Encode(lists);
                        bytes = 0;
                        lists = [[], [], []];
                    }
                }
            }

            if (lists.Any(l => l.Count > 0))
            {
                yield return Encode(lists);
            }

            byte[] Encode(List<string>[] batch) => ZooKeeperRequests.SetWatchesBody(_client.LastZxid, batch[0], batch[1], batch[2]);
        }

        private void Append(JuteWriter writer, PendingRequest request)
        {
            if (request.IsCancelled)
            {
                return;
            }

            if (request.Op == OpCode.Auth)
            {
                // Auth replies bypass the in-order queue: the server answers them from its network thread.
                lock (_pending)
                {
                    _authWaiters.Enqueue(request);
                }

                ZooKeeperRequests.WriteFrame(writer, Xids.Auth, OpCode.Auth, request.Body);
                return;
            }

            request.Xid = _client.NextXid();
            lock (_pending)
            {
                _pending.Enqueue(request);
            }

            ZooKeeperRequests.WriteFrame(writer, request.Xid, request.Op, request.Body);
        }

        private async Task FlushAsync(JuteWriter writer, CancellationToken token)
        {
            if (writer.Length == 0)
            {
                return;
            }

            var bytes = writer.ToArray();
            writer.Clear();
            var sent = 0;
            while (sent < bytes.Length)
            {
                sent += await _socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None, token).ConfigureAwait(false);
            }

            Volatile.Write(ref _lastSendTimestamp, Time.GetTimestamp());
        }

        // ------------------------------------------------------------ receiving

        private async Task ReceiveLoopAsync()
        {
            var token = _stop.Token;
            var buffer = new byte[64 * 1024];
            int start = 0, end = 0;
            while (true)
            {
                if (end == buffer.Length)
                {
                    // Make room: slide the partial frame to the front, or grow for a frame larger than the buffer.
                    var partial = end - start;
                    if (start == 0)
                    {
                        Array.Resize(ref buffer, Math.Min(buffer.Length * 2, ProtocolLimits.MaxFrameLength + 4));
                    }
                    else
                    {
                        Buffer.BlockCopy(buffer, start, buffer, 0, partial);
                        start = 0;
                        end = partial;
                    }
                }

                var read = await _socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None, token).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new IOException($"{Server} closed the connection");
                }

                end += read;
                var received = Time.GetTimestamp();
                Volatile.Write(ref _lastReceiveTimestamp, received);
                Volatile.Write(ref _client._lastHeardTimestamp, received);
                while (end - start >= 4)
                {
                    var length = BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(start));
                    if (length < 16 || length > ProtocolLimits.MaxFrameLength)
                    {
                        throw new ZooKeeperProtocolException($"{Server} sent a frame length of {length}; expected 16..{ProtocolLimits.MaxFrameLength}");
                    }

                    if (end - start - 4 < length)
                    {
                        if (start + 4 + length > buffer.Length && start == 0)
                        {
                            Array.Resize(ref buffer, 4 + length);
                        }

                        break;
                    }

                    HandleFrame(buffer.AsSpan(start + 4, length));
                    start += 4 + length;
                }

                if (start == end)
                {
                    start = end = 0;
                }
            }
        }

        private void HandleFrame(ReadOnlySpan<byte> frame)
        {
            var reader = new JuteReader(frame);
            var xid = reader.ReadInt();
            var zxid = reader.ReadLong();
            var error = (ZooKeeperErrorCode)reader.ReadInt();
            if (zxid > 0)
            {
                _client.ObserveZxid(zxid);
            }

            switch (xid)
            {
                case Xids.Notification:
                    HandleNotification(ref reader);
                    return;
                case Xids.Ping:
                    return;
                case Xids.Auth:
                    PendingRequest? waiter;
                    lock (_pending)
                    {
                        _authWaiters.TryDequeue(out waiter);
                    }

                    if (error != ZooKeeperErrorCode.Ok)
                    {
                        waiter?.Fail(error);
                        _authFailed = true;
                        ZooKeeperLog.AuthFailed(_client._logger, "digest");
                        throw new ZooKeeperException(error, null, "The server rejected the credentials.");
                    }

                    waiter?.Completion.TrySetResult(new Reply(zxid, error, []));
                    return;
            }

            PendingRequest request;
            lock (_pending)
            {
                if (!_pending.TryPeek(out var head) || head.Xid != xid)
                {
                    throw new ZooKeeperProtocolException(head is null
                        ? $"{Server} answered xid {xid} with nothing pending"
                        : $"{Server} answered xid {xid} while xid {head.Xid} was next; replies must come in order");
                }

                request = _pending.Dequeue();
            }

            // Recorded here, on the I/O loop, so a notification that follows this reply always finds its watcher.
            if (request.Watch is { } watch && watch.KindFor(error) is { } kind)
            {
                _client._watches.Add(kind, watch.ServerPath, watch.Watcher);
            }

            var body = error == ZooKeeperErrorCode.Ok ? frame[reader.Position..].ToArray() : [];
            request.Completion.TrySetResult(new Reply(zxid, error, body));
        }

        private void HandleNotification(ref JuteReader reader)
        {
            var type = (WatchedEventType)reader.ReadInt();
            reader.ReadInt(); // keeper state: always SyncConnected on the wire
            var serverPath = reader.ReadString() ?? throw new ZooKeeperProtocolException("A notification without a path.");
            reader.EnsureConsumed("notification");
            if (type is not (WatchedEventType.NodeCreated or WatchedEventType.NodeDeleted or WatchedEventType.NodeDataChanged or WatchedEventType.NodeChildrenChanged))
            {
                throw new ZooKeeperProtocolException($"Unknown notification type {(int)type}.");
            }

            var watchedEvent = new WatchedEvent(type, ZooKeeperState.Connected, _client.ToClientPath(serverPath));
            foreach (var watcher in _client._watches.Materialize(type, serverPath))
            {
                _client.Post(() => watcher(watchedEvent));
            }
        }

        // ------------------------------------------------------------ liveness

        private TimeSpan ReadTimeout => TimeSpan.FromMilliseconds(Response.TimeoutMs * 2.0 / 3);

        private TimeSpan PingInterval => ReadTimeout / 2;

        /// <summary>Declares the connection dead after two thirds of the session timeout without hearing anything (pings included).</summary>
        private async Task MonitorAsync()
        {
            var readTimeout = ReadTimeout;
            var period = TimeSpan.FromMilliseconds(Math.Clamp(readTimeout.TotalMilliseconds / 8, 10, 250));
            while (true)
            {
                await Task.Delay(period, Time, _stop.Token).ConfigureAwait(false);
                var silence = Time.GetElapsedTime(Volatile.Read(ref _lastReceiveTimestamp));
                if (silence > readTimeout)
                {
                    throw new TimeoutException($"{Server} sent nothing for {silence.TotalMilliseconds:0} ms (read timeout {readTimeout.TotalMilliseconds:0} ms)");
                }
            }
        }

        private async Task ReceiveExactlyAsync(byte[] buffer, CancellationToken token)
        {
            var received = 0;
            while (received < buffer.Length)
            {
                var read = await _socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, token).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new IOException($"{Server} closed the connection during the session handshake (it may be behind this client's last zxid, read-only, or refusing connections)");
                }

                received += read;
            }
        }
    }
}
