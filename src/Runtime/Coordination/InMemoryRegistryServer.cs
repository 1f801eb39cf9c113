using System.Globalization;
using ShardedJobs.ZooKeeper;

namespace ShardedJobs.Coordination;

/// <summary>
/// The in-process stand-in for a ZooKeeper ensemble: one tree of nodes shared by every <see cref="InMemoryRegistry"/> session
/// connected to it, with ZooKeeper's rules — versions, sequential counters per parent, ephemerals owned by sessions, one-shot
/// watches fanned out per session, all-or-nothing multi. Several cluster instances in one process (or one test) each get their
/// own session through <see cref="Connect"/>, and then behave towards each other as they would on ZooKeeper.
/// </summary>
public sealed class InMemoryRegistryServer
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Node> _nodes = new(StringComparer.Ordinal) { ["/"] = new Node([], 0, DateTimeOffset.MinValue) };
    private readonly Dictionary<string, List<Watch>> _dataWatches = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Watch>> _existWatches = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Watch>> _childWatches = new(StringComparer.Ordinal);
    private readonly HashSet<long> _liveSessions = [];
    private long _lastSessionId = 0x1000;

    public InMemoryRegistryServer(TimeProvider? timeProvider = null, TimeSpan? sessionTimeout = null)
    {
        TimeProvider = timeProvider ?? TimeProvider.System;
        SessionTimeout = sessionTimeout ?? TimeSpan.FromSeconds(10);
    }

    public TimeProvider TimeProvider { get; }

    /// <summary>How long a session survives a dropped connection before it expires (ZooKeeper's session timeout).</summary>
    public TimeSpan SessionTimeout { get; }

    /// <summary>Opens a new session on this tree.</summary>
    public InMemoryRegistry Connect() => new(this);

    /// <summary>Every node path, sorted (for diagnostics and tests).</summary>
    public IReadOnlyList<string> Dump()
    {
        lock (_gate)
        {
            return [.. _nodes.Keys.Order(StringComparer.Ordinal)];
        }
    }

    internal long OpenSession()
    {
        lock (_gate)
        {
            var id = ++_lastSessionId;
            _liveSessions.Add(id);
            return id;
        }
    }

    internal bool IsLive(long sessionId)
    {
        lock (_gate)
        {
            return _liveSessions.Contains(sessionId);
        }
    }

    /// <summary>Ends a session as ZooKeeper does on close or expiry: its ephemerals are deleted (others are notified) and its watches dropped.</summary>
    internal void EndSession(long sessionId, InMemoryRegistry owner)
    {
        List<Change> changes = [];
        lock (_gate)
        {
            if (!_liveSessions.Remove(sessionId))
            {
                return;
            }

            foreach (var path in _nodes.Where(n => n.Value.EphemeralOwner == sessionId).Select(n => n.Key).OrderByDescending(p => p.Length).ToList())
            {
                RemoveNode(path, changes);
            }

            var ended = new List<(Action<RegistryWatchEvent>, string)>();
            foreach (var table in new[] { _dataWatches, _existWatches, _childWatches })
            {
                foreach (var (path, watches) in table)
                {
                    foreach (var watch in watches.Where(w => w.SessionId == sessionId))
                    {
                        if (!ended.Any(e => e.Item1 == watch.Watcher))
                        {
                            ended.Add((watch.Watcher, path));
                        }
                    }

                    watches.RemoveAll(w => w.SessionId == sessionId);
                }
            }

            Publish(changes);
            foreach (var (watcher, path) in ended)
            {
                owner.EnqueueWatchEvent(watcher, new RegistryWatchEvent(RegistryEventType.SessionEnded, path));
            }
        }

    }

    // ------------------------------------------------------------ operations (sessionId = the caller's live session)

    internal string Create(InMemoryRegistry session, long sessionId, string path, ReadOnlyMemory<byte> data, NodeKind kind)
    {
        List<Change> changes = [];
        string created;
        lock (_gate)
        {
            RequireLive(sessionId, path);
            created = CreateCore(session, sessionId, path, data, kind, changes, undo: null);

            Publish(changes);
        }

        return created;
    }

    internal void Delete(InMemoryRegistry session, long sessionId, string path, int version)
    {
        List<Change> changes = [];
        lock (_gate)
        {
            RequireLive(sessionId, path);
            DeleteCore(path, version, changes, undo: null);

            Publish(changes);
        }

    }

    internal NodeStat Set(InMemoryRegistry session, long sessionId, string path, ReadOnlyMemory<byte> data, int version)
    {
        List<Change> changes = [];
        NodeStat stat;
        lock (_gate)
        {
            RequireLive(sessionId, path);
            stat = SetCore(path, data, version, changes, undo: null);

            Publish(changes);
        }

        return stat;
    }

    internal NodeStat? Exists(InMemoryRegistry session, long sessionId, string path, Action<RegistryWatchEvent>? watcher)
    {
        lock (_gate)
        {
            RequireLive(sessionId, path);
            var exists = _nodes.TryGetValue(path, out var node);
            if (watcher is not null)
            {
                // exists leaves a watch even on a missing node (it fires on creation), as on ZooKeeper.
                AddWatch(exists ? _dataWatches : _existWatches, path, new Watch(sessionId, session, watcher));
            }

            return exists ? Stat(node!) : null;
        }
    }

    internal RegistryNode? Get(InMemoryRegistry session, long sessionId, string path, Action<RegistryWatchEvent>? watcher)
    {
        lock (_gate)
        {
            RequireLive(sessionId, path);
            if (!_nodes.TryGetValue(path, out var node))
            {
                return null;
            }

            if (watcher is not null)
            {
                AddWatch(_dataWatches, path, new Watch(sessionId, session, watcher));
            }

            return new RegistryNode([.. node.Data], Stat(node));
        }
    }

    internal IReadOnlyList<string>? GetChildren(InMemoryRegistry session, long sessionId, string path, Action<RegistryWatchEvent>? watcher)
    {
        lock (_gate)
        {
            RequireLive(sessionId, path);
            if (!_nodes.TryGetValue(path, out var node))
            {
                return null;
            }

            if (watcher is not null)
            {
                AddWatch(_childWatches, path, new Watch(sessionId, session, watcher));
            }

            return [.. node.Children];
        }
    }

    internal IReadOnlyList<RegistryOpResult> Multi(InMemoryRegistry session, long sessionId, IReadOnlyList<RegistryOp> operations)
    {
        List<Change> changes = [];
        var results = new List<RegistryOpResult>(operations.Count);
        lock (_gate)
        {
            RequireLive(sessionId, null);
            var undo = new Stack<Action>();
            for (var i = 0; i < operations.Count; i++)
            {
                var op = operations[i];
                try
                {
                    results.Add(op switch
                    {
                        RegistryOp.Create create => new RegistryOpResult.Created(CreateCore(session, sessionId, create.Path, create.Data, create.Kind, changes, undo)),
                        RegistryOp.Delete delete => DeleteResult(DeleteCore(delete.Path, delete.Version, changes, undo)),
                        RegistryOp.SetData set => new RegistryOpResult.DataSet(SetCore(set.Path, set.Data, set.Version, changes, undo).Version),
                        RegistryOp.Check check => CheckCore(check.Path, check.Version),
                        _ => throw new ArgumentException($"Unknown registry operation {op.GetType().Name}.", nameof(operations)),
                    });
                }
                catch (RegistryException failure)
                {
                    // All or nothing: roll back what was applied, notify nobody, report like ZooKeeper does.
                    while (undo.TryPop(out var revert))
                    {
                        revert();
                    }

                    var reported = new List<RegistryOpResult>(operations.Count);
                    for (var j = 0; j < operations.Count; j++)
                    {
                        reported.Add(new RegistryOpResult.Failed(j < i ? null : j == i ? failure.Code : RegistryErrorCode.Other));
                    }

                    throw new RegistryMultiException(failure.Code, op.Path, i, reported);
                }
            }

            Publish(changes);
        }

        return results;

        static RegistryOpResult DeleteResult(bool _) => new RegistryOpResult.Deleted();
    }

    // ------------------------------------------------------------ core mutations (under _gate)

    private string CreateCore(InMemoryRegistry session, long sessionId, string path, ReadOnlyMemory<byte> data, NodeKind kind, List<Change> changes, Stack<Action>? undo)
    {
        var sequential = kind is NodeKind.PersistentSequential or NodeKind.EphemeralSequential;
        ZooKeeperPaths.Validate(path, sequential: sequential);
        if (path == "/")
        {
            throw new RegistryException(RegistryErrorCode.NodeExists, path);
        }

        var parentPath = ZooKeeperPaths.Parent(path);
        if (!_nodes.TryGetValue(parentPath, out var parent))
        {
            throw new RegistryException(RegistryErrorCode.NoNode, path, $"Registry NoNode for '{path}': its parent '{parentPath}' does not exist.");
        }

        if (parent.EphemeralOwner != 0)
        {
            throw new RegistryException(RegistryErrorCode.NoChildrenForEphemerals, path);
        }

        var actual = sequential ? path + parent.ChildCreations.ToString("D10", CultureInfo.InvariantCulture) : path;
        if (_nodes.ContainsKey(actual))
        {
            throw new RegistryException(RegistryErrorCode.NodeExists, actual);
        }

        var owner = kind is NodeKind.Ephemeral or NodeKind.EphemeralSequential ? sessionId : 0;
        var node = new Node(data.ToArray(), owner, TimeProvider.GetUtcNow());
        _nodes[actual] = node;
        var name = actual[(actual.LastIndexOf('/') + 1)..];
        parent.Children.Add(name);
        parent.ChildCreations++;
        undo?.Push(() =>
        {
            _nodes.Remove(actual);
            parent.Children.Remove(name);
            parent.ChildCreations--;
        });
        changes.Add(new Change(RegistryEventType.NodeCreated, actual));
        changes.Add(new Change(RegistryEventType.NodeChildrenChanged, parentPath));
        return actual;
    }

    private bool DeleteCore(string path, int version, List<Change> changes, Stack<Action>? undo)
    {
        if (path == "/")
        {
            throw new RegistryException(RegistryErrorCode.NoNode, path);
        }

        var node = RequireNode(path, version);
        if (node.Children.Count > 0)
        {
            throw new RegistryException(RegistryErrorCode.NotEmpty, path);
        }

        var parentPath = ZooKeeperPaths.Parent(path);
        var parent = _nodes[parentPath];
        var name = path[(path.LastIndexOf('/') + 1)..];
        RemoveNode(path, changes);
        undo?.Push(() =>
        {
            _nodes[path] = node;
            parent.Children.Add(name);
        });
        return true;
    }

    private NodeStat SetCore(string path, ReadOnlyMemory<byte> data, int version, List<Change> changes, Stack<Action>? undo)
    {
        var node = RequireNode(path, version);
        var (oldData, oldVersion, oldModified) = (node.Data, node.Version, node.ModifiedAt);
        node.Data = data.ToArray();
        node.Version++;
        node.ModifiedAt = TimeProvider.GetUtcNow();
        undo?.Push(() => (node.Data, node.Version, node.ModifiedAt) = (oldData, oldVersion, oldModified));
        changes.Add(new Change(RegistryEventType.NodeDataChanged, path));
        return Stat(node);
    }

    private RegistryOpResult CheckCore(string path, int version)
    {
        RequireNode(path, version);
        return new RegistryOpResult.Checked();
    }

    /// <summary>The node at <paramref name="path"/>, which must exist with <paramref name="version"/> (-1: any): the precondition of delete, set and check.</summary>
    private Node RequireNode(string path, int version)
    {
        ZooKeeperPaths.Validate(path);
        if (!_nodes.TryGetValue(path, out var node))
        {
            throw new RegistryException(RegistryErrorCode.NoNode, path);
        }

        if (version != -1 && version != node.Version)
        {
            throw new RegistryException(RegistryErrorCode.BadVersion, path, $"Registry BadVersion for '{path}': expected version {version}, the node has {node.Version}.");
        }

        return node;
    }

    private void RemoveNode(string path, List<Change> changes)
    {
        _nodes.Remove(path);
        var parentPath = ZooKeeperPaths.Parent(path);
        if (_nodes.TryGetValue(parentPath, out var parent))
        {
            parent.Children.Remove(path[(path.LastIndexOf('/') + 1)..]);
        }

        changes.Add(new Change(RegistryEventType.NodeDeleted, path));
        changes.Add(new Change(RegistryEventType.NodeChildrenChanged, parentPath));
    }

    /// <summary>Fires and forgets the watches an event touches, with ZooKeeper's rules for which tables each event type reaches.</summary>
    private void Trigger(RegistryEventType type, string path, List<Delivery> deliveries)
    {
        var tables = type switch
        {
            RegistryEventType.NodeCreated or RegistryEventType.NodeDataChanged => new[] { _dataWatches, _existWatches },
            RegistryEventType.NodeChildrenChanged => [_childWatches],
            _ => [_dataWatches, _existWatches, _childWatches],
        };
        var fired = new List<Watch>();
        foreach (var table in tables)
        {
            if (table.Remove(path, out var watches))
            {
                foreach (var watch in watches)
                {
                    // One registration, one event, even when it sat in two tables (exists + get on one path).
                    if (!fired.Any(f => f.SessionId == watch.SessionId && f.Watcher == watch.Watcher))
                    {
                        fired.Add(watch);
                    }
                }
            }
        }

        foreach (var watch in fired)
        {
            deliveries.Add(new Delivery(watch.Session, watch.Watcher, new RegistryWatchEvent(type, path)));
        }
    }

    private static void AddWatch(Dictionary<string, List<Watch>> table, string path, Watch watch)
    {
        if (!table.TryGetValue(path, out var watches))
        {
            table[path] = watches = [];
        }

        if (!watches.Any(w => w.SessionId == watch.SessionId && w.Watcher == watch.Watcher))
        {
            watches.Add(watch);
        }
    }

    private void RequireLive(long sessionId, string? path)
    {
        if (!_liveSessions.Contains(sessionId))
        {
            throw new RegistryException(RegistryErrorCode.SessionExpired, path);
        }
    }

    /// <summary>
    /// Fires the watches that committed changes touch. Called with the server lock held, so every session queues events in
    /// the order the changes were made; staged changes of a failed multi never get here, so they consume no watch.
    /// </summary>
    private void Publish(List<Change> changes)
    {
        var deliveries = new List<Delivery>();
        foreach (var change in changes)
        {
            Trigger(change.Type, change.Path, deliveries);
        }

        foreach (var delivery in deliveries)
        {
            delivery.Session.EnqueueWatchEvent(delivery.Watcher, delivery.Event);
        }
    }

    private static NodeStat Stat(Node node) => new(node.Version, node.EphemeralOwner, node.Children.Count, node.ModifiedAt);

    private sealed class Node(byte[] data, long ephemeralOwner, DateTimeOffset modifiedAt)
    {
        public byte[] Data { get; set; } = data;

        public int Version { get; set; }

        public long EphemeralOwner { get; } = ephemeralOwner;

        public DateTimeOffset ModifiedAt { get; set; } = modifiedAt;

        /// <summary>Counts child creations (not deletions): the source of sequential suffixes.</summary>
        public int ChildCreations { get; set; }

        public SortedSet<string> Children { get; } = new(StringComparer.Ordinal);
    }

    private sealed record Watch(long SessionId, InMemoryRegistry Session, Action<RegistryWatchEvent> Watcher);

    private sealed record Change(RegistryEventType Type, string Path);

    private sealed record Delivery(InMemoryRegistry Session, Action<RegistryWatchEvent> Watcher, RegistryWatchEvent Event);
}
