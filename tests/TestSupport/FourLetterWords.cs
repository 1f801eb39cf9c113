using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ShardedJobs.TestSupport;

/// <summary>ZooKeeper's four-letter admin words (<c>ruok</c>, <c>srvr</c>, <c>isro</c>, ...) over a plain TCP connection.</summary>
public static class FourLetterWords
{
    /// <summary>Sends <paramref name="word"/> and returns the whole answer, or null when the port does not answer.</summary>
    public static async Task<string?> SendAsync(int port, string word, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
            await socket.SendAsync(Encoding.ASCII.GetBytes(word), SocketFlags.None, cts.Token);
            var answer = new StringBuilder();
            var buffer = new byte[4096];
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0)
            {
                answer.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }

            return answer.ToString();
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>True when the server at <paramref name="port"/> answers <c>ruok</c> with <c>imok</c>.</summary>
    public static async Task<bool> IsOkAsync(int port, CancellationToken cancellationToken = default) =>
        await SendAsync(port, "ruok", TimeSpan.FromSeconds(2), cancellationToken) == "imok";

    /// <summary>The <c>Mode:</c> line of <c>srvr</c> (standalone, leader, follower), or null when the server is not serving.</summary>
    public static async Task<string?> ModeAsync(int port, CancellationToken cancellationToken = default)
    {
        var srvr = await SendAsync(port, "srvr", TimeSpan.FromSeconds(2), cancellationToken);
        if (srvr is null)
        {
            return null;
        }

        foreach (var line in srvr.Split('\n'))
        {
            if (line.StartsWith("Mode: ", StringComparison.Ordinal))
            {
                return line["Mode: ".Length..].Trim();
            }
        }

        return null;
    }
}
