using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Xunit;

namespace ShardedJobs.ZooKeeper.Tests;

/// <summary>
/// A server that completes the handshake and then misbehaves. Whatever it sends, the client must not crash the process or
/// hang a caller: the connection is dropped and calls fail with <see cref="ConnectionLossException"/> (or succeed, if the
/// bytes happened to form a valid reply).
/// </summary>
public sealed class FakeServerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>What the fake server does after the handshake, given the bytes of the client's first request.</summary>
    private delegate Task Behaviour(Socket socket, byte[] firstRequest);

    [Fact]
    public Task Garbage_after_the_handshake_is_a_connection_loss() =>
        AssertConnectionLossAsync((socket, _) => SendAsync(socket, [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]));

    [Fact]
    public Task Negative_frame_length_is_a_connection_loss() =>
        AssertConnectionLossAsync((socket, _) => SendAsync(socket, Int(-5)));

    [Fact]
    public Task Oversized_frame_length_is_a_connection_loss_without_allocating_it() =>
        AssertConnectionLossAsync((socket, _) => SendAsync(socket, Int(int.MaxValue)));

    [Fact]
    public Task Truncated_frame_then_close_is_a_connection_loss() =>
        AssertConnectionLossAsync(async (socket, _) =>
        {
            await SendAsync(socket, [.. Int(100), .. new byte[10]]);
            socket.Shutdown(SocketShutdown.Both);
        });

    [Fact]
    public Task Reply_to_an_unknown_xid_is_a_connection_loss() =>
        AssertConnectionLossAsync((socket, _) => SendAsync(socket, ReplyFrame(xid: 999, error: 0, body: [])));

    [Fact]
    public Task Truncated_reply_body_is_a_connection_loss_not_a_parsing_error() =>
        // The right xid and err 0, but the exists reply's 68-byte Stat is cut to 10 bytes.
        AssertConnectionLossAsync((socket, request) => SendAsync(socket, ReplyFrame(xid: XidOf(request), error: 0, body: new byte[10])));

    [Fact]
    public Task Unknown_notification_type_is_a_connection_loss() =>
        AssertConnectionLossAsync((socket, _) =>
        {
            var body = new JuteWriter();
            body.WriteInt(42);
            body.WriteInt(3);
            body.WriteString("/x");
            return SendAsync(socket, ReplyFrame(xid: -1, error: 0, body: body.ToArray(), zxid: -1));
        });

    [Fact]
    public Task A_server_that_stops_answering_is_detected_by_the_read_timeout() =>
        AssertConnectionLossAsync((_, _) => Task.Delay(Timeout.Infinite, Ct));

    [Fact]
    public Task A_server_that_closes_without_a_handshake_reply_is_skipped_and_connect_times_out()
    {
        return RunAsync(async listener =>
        {
            var options = Options(listener) with { ConnectionTimeout = TimeSpan.FromSeconds(1) };
            var error = await Assert.ThrowsAsync<ConnectionLossException>(() => ZooKeeperClient.ConnectAsync(options, Ct));
            Assert.Contains("closed the connection during the session handshake", error.Message, StringComparison.Ordinal);
        }, handshake: false, behaviour: (_, _) => Task.CompletedTask);
    }

    [Fact]
    public async Task Random_bytes_never_crash_or_hang_the_client()
    {
        // Bounded fuzz: 150 connections, each fed up to 2 KB of random bytes (some shaped like frames) after the handshake.
        var seed = Environment.GetEnvironmentVariable("ZK_FUZZ_SEED") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : 20261124;
        var random = new Random(seed);
        var unobserved = 0;
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, _) => Interlocked.Increment(ref unobserved);
        TaskScheduler.UnobservedTaskException += onUnobserved;
        try
        {
            for (var round = 0; round < 150; round++)
            {
                var payload = RandomPayload(random);
                await RunAsync(async listener =>
                {
                    await using var zk = await ZooKeeperClient.ConnectAsync(Options(listener), Ct);
                    var calls = new Task[]
                    {
                        zk.ExistsAsync("/a", _ => { }, Ct),
                        zk.GetDataAsync("/b", cancellationToken: Ct),
                        zk.GetChildrenAsync("/", cancellationToken: Ct),
                    };
                    foreach (var call in calls)
                    {
                        try
                        {
                            await call.WaitAsync(TimeSpan.FromSeconds(10), Ct);
                        }
                        catch (ZooKeeperException)
                        {
                            // a connection loss, or an error code the bytes happened to spell: both are fine
                        }
                    }
                }, behaviour: (socket, _) => SendAsync(socket, payload));
            }
        }
        finally
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            TaskScheduler.UnobservedTaskException -= onUnobserved;
        }

        Assert.Equal(0, unobserved);
    }

    private static byte[] RandomPayload(Random random)
    {
        var bytes = new byte[random.Next(1, 2048)];
        random.NextBytes(bytes);
        if (random.Next(2) == 0 && bytes.Length >= 20)
        {
            // Frame-shaped: a plausible length and a small xid, so the decoder gets past the header sometimes.
            BinaryPrimitives.WriteInt32BigEndian(bytes, Math.Min(bytes.Length - 4, random.Next(16, 120)));
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), random.Next(-4, 3));
        }

        return bytes;
    }

    private static async Task AssertConnectionLossAsync(Behaviour behaviour) =>
        await RunAsync(async listener =>
        {
            await using var zk = await ZooKeeperClient.ConnectAsync(Options(listener), Ct);
            var call = zk.ExistsAsync("/x", cancellationToken: Ct);

            var error = await Assert.ThrowsAsync<ConnectionLossException>(() => call.WaitAsync(TimeSpan.FromSeconds(10), Ct));

            Assert.Equal(ZooKeeperErrorCode.ConnectionLoss, error.Code);
        }, behaviour: behaviour);

    private static ZooKeeperClientOptions Options(TcpListener listener) => new()
    {
        ConnectionString = $"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}",
        SessionTimeout = TimeSpan.FromMilliseconds(900),
        ConnectionTimeout = TimeSpan.FromSeconds(5),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(50),
    };

    private static async Task RunAsync(Func<TcpListener, Task> test, Behaviour behaviour, bool handshake = true)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var stop = new CancellationTokenSource();
        var sessions = new List<Task>();
        var accept = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await listener.AcceptSocketAsync(stop.Token);
                }
                catch (Exception)
                {
                    return;
                }

                lock (sessions)
                {
                    sessions.Add(ServeAsync(socket));
                }
            }
        });

        async Task ServeAsync(Socket socket)
        {
            using (socket)
            {
                try
                {
                    await ReceiveExactlyAsync(socket, 49, stop.Token); // ConnectRequest
                    if (!handshake)
                    {
                        return;
                    }

                    await SendAsync(socket, HandshakeReply());
                    var request = await ReceiveFrameAsync(socket, stop.Token);
                    await behaviour(socket, request).WaitAsync(stop.Token);
                    await Task.Delay(Timeout.Infinite, stop.Token); // keep the socket open; the client decides
                }
                catch (Exception)
                {
                    // the client dropped the connection, or the test ended
                }
            }
        }

        try
        {
            await test(listener);
        }
        finally
        {
            await stop.CancelAsync();
            listener.Stop();
            await accept;
            Task[] all;
            lock (sessions)
            {
                all = [.. sessions];
            }

            await Task.WhenAll(all);
        }
    }

    private static byte[] HandshakeReply()
    {
        var writer = new JuteWriter();
        writer.WriteInt(37);
        writer.WriteInt(0);
        writer.WriteInt(900);
        writer.WriteLong(0x1234);
        writer.WriteBuffer(new byte[16]);
        writer.WriteBool(false);
        return writer.ToArray();
    }

    private static byte[] ReplyFrame(int xid, int error, byte[] body, long zxid = 5)
    {
        var writer = new JuteWriter();
        writer.WriteInt(16 + body.Length);
        writer.WriteInt(xid);
        writer.WriteLong(zxid);
        writer.WriteInt(error);
        writer.WriteRaw(body);
        return writer.ToArray();
    }

    private static int XidOf(byte[] requestFrame) => BinaryPrimitives.ReadInt32BigEndian(requestFrame.AsSpan(4));

    private static byte[] Int(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        return bytes;
    }

    private static async Task SendAsync(Socket socket, byte[] bytes) => await socket.SendAsync(bytes, SocketFlags.None);

    private static async Task<byte[]> ReceiveFrameAsync(Socket socket, CancellationToken token)
    {
        var header = await ReceiveExactlyAsync(socket, 4, token);
        var body = await ReceiveExactlyAsync(socket, BinaryPrimitives.ReadInt32BigEndian(header), token);
        return [.. header, .. body];
    }

    private static async Task<byte[]> ReceiveExactlyAsync(Socket socket, int count, CancellationToken token)
    {
        var buffer = new byte[count];
        var received = 0;
        while (received < count)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, token);
            if (read == 0)
            {
                throw new IOException("client closed");
            }

            received += read;
        }

        return buffer;
    }
}
