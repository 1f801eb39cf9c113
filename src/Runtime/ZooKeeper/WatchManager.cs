namespace ShardedJobs.ZooKeeper;

internal enum WatchKind
{
    /// <summary>Set by getData, or by exists on an existing node.</summary>
    Data,
    /// <summary>Set by exists on a missing node: fires on creation.</summary>
    Exist,
    Child,
}

/// <summary>A watch to record once its request's reply is known (exists on a missing node still leaves a watch).</summary>
internal sealed record WatchRegistration(WatchKind Kind, string ServerPath, Action<WatchedEvent> Watcher)
{
    /// <summary>
    /// The table the watch belongs in, given the reply: exists on an existing node is a data watch (re-armed as such by
    /// setWatches; filed as an exist watch, a reconnect would make the server fire a false NodeCreated), exists on a missing
    /// node an exist watch, and failed getData/getChildren leave none.
    /// </summary>
    public WatchKind? KindFor(ZooKeeperErrorCode reply) => (Kind, reply) switch
    {
        (WatchKind.Exist, ZooKeeperErrorCode.Ok) => WatchKind.Data,
        (_, ZooKeeperErrorCode.Ok) => Kind,
        (WatchKind.Exist, ZooKeeperErrorCode.NoNode) => WatchKind.Exist,
        _ => null,
    };
}

/// <summary>
/// The client-side half of ZooKeeper's one-shot watches: who is waiting for which (server-side) path.
/// The server sends one event per connection and path; this fans it out to the registered watchers and forgets them.
/// </summary>
internal sealed class WatchManager
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, HashSet<Action<WatchedEvent>>> _data = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Action<WatchedEvent>>> _exist = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Action<WatchedEvent>>> _child = new(StringComparer.Ordinal);

    public void Add(WatchKind kind, string serverPath, Action<WatchedEvent> watcher)
    {
        lock (_lock)
        {
            var table = Table(kind);
            if (!table.TryGetValue(serverPath, out var watchers))
            {
                table[serverPath] = watchers = [];
            }

            watchers.Add(watcher);
        }
    }

    /// <summary>Removes and returns the watchers an event of <paramref name="type"/> on <paramref name="serverPath"/> fires (Java's rules).</summary>
    public List<Action<WatchedEvent>> Materialize(WatchedEventType type, string serverPath)
    {
        var result = new List<Action<WatchedEvent>>();
        lock (_lock)
        {
            switch (type)
            {
                case WatchedEventType.NodeCreated:
                case WatchedEventType.NodeDataChanged:
                    Take(_data, serverPath, result);
                    Take(_exist, serverPath, result);
                    break;
                case WatchedEventType.NodeChildrenChanged:
                    Take(_child, serverPath, result);
                    break;
                case WatchedEventType.NodeDeleted:
                    Take(_data, serverPath, result);
                    Take(_exist, serverPath, result);
                    Take(_child, serverPath, result);
                    break;
            }
        }

        return result;
    }

    /// <summary>The paths to re-arm with setWatches on a new connection of the same session.</summary>
    public (List<string> Data, List<string> Exist, List<string> Child) Snapshot()
    {
        lock (_lock)
        {
            return ([.. _data.Keys], [.. _exist.Keys], [.. _child.Keys]);
        }
    }

    /// <summary>Every watcher with one of its paths, all forgotten: the session is over.</summary>
    public List<(Action<WatchedEvent> Watcher, string ServerPath)> RemoveAll()
    {
        lock (_lock)
        {
            var seen = new HashSet<Action<WatchedEvent>>();
            var result = new List<(Action<WatchedEvent>, string)>();
            foreach (var table in new[] { _data, _exist, _child })
            {
                foreach (var (path, watchers) in table)
                {
                    foreach (var watcher in watchers)
                    {
                        if (seen.Add(watcher))
                        {
                            result.Add((watcher, path));
                        }
                    }
                }

                table.Clear();
            }

            return result;
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _data.Values.Sum(w => w.Count) + _exist.Values.Sum(w => w.Count) + _child.Values.Sum(w => w.Count);
            }
        }
    }

    private Dictionary<string, HashSet<Action<WatchedEvent>>> Table(WatchKind kind) => kind switch
    {
        WatchKind.Data => _data,
        WatchKind.Exist => _exist,
        _ => _child,
    };

    private static void Take(Dictionary<string, HashSet<Action<WatchedEvent>>> table, string path, List<Action<WatchedEvent>> into)
    {
        if (table.Remove(path, out var watchers))
        {
            foreach (var watcher in watchers)
            {
                if (!into.Contains(watcher))
                {
                    into.Add(watcher);
                }
            }
        }
    }
}
