using System.Net;
using System.Net.Sockets;

namespace ShardedJobs.TestSupport;

/// <summary>
/// A loopback TCP proxy in front of a server, to inject network faults between a client and ZooKeeper:
/// silence (a partition that keeps sockets open), dropped connections, and refused new connections.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(TcpClient Client, TcpClient Server)> _links = [];
    private readonly Task _acceptLoop;
    private volatile bool _silent;
    private volatile bool _refuse;

    public TcpProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>Bytes are no longer forwarded in either direction and new connections are held silent: a partition.</summary>
    public void Partition() => _silent = true;

    /// <summary>Forwarding resumes for connections made from now on (held ones are closed, as after a real partition).</summary>
    public void Heal()
    {
        DropConnections();
        _silent = false;
        _refuse = false;
    }

    /// <summary>New connections are accepted and closed at once (a server that is down).</summary>
    public void RefuseConnections() => _refuse = true;

    /// <summary>Closes every open connection (the client sees EOF); new ones are still accepted.</summary>
    public void DropConnections()
    {
        lock (_links)
        {
            foreach (var (client, server) in _links)
            {
                client.Dispose();
                server.Dispose();
            }

            _links.Clear();
        }
    }

    public int OpenConnections
    {
        get
        {
            lock (_links)
            {
                return _links.Count;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        DropConnections();
        try
        {
            await _acceptLoop;
        }
        catch (Exception)
        {
            // stopping
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            if (_refuse)
            {
                client.Dispose();
                continue;
            }

            var server = new TcpClient();
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            }
            catch (Exception)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }

            lock (_links)
            {
                _links.Add((client, server));
            }

            _ = PumpAsync(client, server);
            _ = PumpAsync(server, client);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            var input = from.GetStream();
            var output = to.GetStream();
            while (true)
            {
                var read = await input.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    break;
                }

                // While partitioned, bytes are swallowed: both ends see silence, not a closed socket.
                if (!_silent)
                {
                    await output.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                }
            }
        }
        catch (Exception)
        {
            // either side went away
        }
        finally
        {
            from.Dispose();
            to.Dispose();
            lock (_links)
            {
                _links.RemoveAll(l => l.Client == from || l.Server == from);
            }
        }
    }
}
