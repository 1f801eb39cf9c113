using System.Net;
using System.Net.Sockets;

namespace ShardedJobs.TestSupport;

/// <summary>Loopback ports that were free a moment ago. Callers retry on a bind race (see <see cref="ZooKeeperServer"/>).</summary>
public static class FreePorts
{
    public static int[] Take(int count)
    {
        // Hold every listener until all are chosen, so one call never returns the same port twice.
        var listeners = new List<TcpListener>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
            }

            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
            }
        }
    }
}
