namespace ShardedJobs.Coordination;

/// <summary>
/// The small, ZooKeeper-shaped store the cluster logic coordinates through: a tree of versioned nodes, ephemeral nodes tied
/// to this registry's session, one-shot watches, atomic multi, and session events. <see cref="InMemoryRegistry"/> (embedded)
/// and <see cref="ZooKeeperRegistry"/> implement it with the same semantics, proven by one contract test suite.
/// <para>
/// Semantics shared by both: paths are absolute (<c>/a/b</c>) below the registry's namespace; a missing parent is
/// <see cref="RegistryErrorCode.NoNode"/>; versions are compared for equality (-1 = any); children come back sorted ordinally;
/// watches fire at most once, asynchronously, in the order of the changes, never on the caller's thread; a watch set by
/// <see cref="ExistsAsync"/> on a missing node fires on creation, while <see cref="GetAsync"/> and <see cref="GetChildrenAsync"/>
/// on a missing node return null and leave no watch.
/// </para>
/// </summary>
public interface IRegistry : IAsyncDisposable
{
    /// <summary>The current session's id (changes after <see cref="RegistrySessionEventKind.NewSession"/>).</summary>
    long SessionId { get; }

    RegistryState State { get; }

    /// <summary>The session timeout in force (ZooKeeper's negotiated one): a session silent this long ends, and so do its ephemerals.</summary>
    TimeSpan SessionTimeout { get; }

    /// <summary>How long since this registry last heard from its server. A connection is declared lost only after a silence
    /// (ZooKeeper: two thirds of the session timeout), so this, not the time of the <see cref="RegistrySessionEventKind.Suspended"/>
    /// event, tells how close the session is to expiring.</summary>
    TimeSpan SinceLastHeard { get; }

    /// <summary>Session changes, delivered in order on the registry's event loop.</summary>
    event Action<RegistrySessionEvent>? SessionChanged;

    /// <summary>Creates a node and returns its path (with the suffix for sequential kinds).</summary>
    Task<string> CreateAsync(string path, ReadOnlyMemory<byte> data, NodeKind kind = NodeKind.Persistent, CancellationToken cancellationToken = default);

    /// <summary>Deletes a node if its version matches (-1: any).</summary>
    Task DeleteAsync(string path, int version = -1, CancellationToken cancellationToken = default);

    /// <summary>The node's Stat or null; a <paramref name="watcher"/> fires once on creation, data change or deletion.</summary>
    Task<NodeStat?> ExistsAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default);

    /// <summary>The node or null; a <paramref name="watcher"/> (only armed when the node exists) fires once on data change or deletion.</summary>
    Task<RegistryNode?> GetAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default);

    /// <summary>Replaces the node's data if its version matches (-1: any) and returns the new Stat.</summary>
    Task<NodeStat> SetAsync(string path, ReadOnlyMemory<byte> data, int version = -1, CancellationToken cancellationToken = default);

    /// <summary>The children's names (sorted ordinally) or null; a <paramref name="watcher"/> (only armed when the node exists) fires once when a child is added or removed or the node is deleted.</summary>
    Task<IReadOnlyList<string>?> GetChildrenAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default);

    /// <summary>Applies every operation or none.</summary>
    /// <exception cref="RegistryMultiException">Nothing was applied.</exception>
    Task<IReadOnlyList<RegistryOpResult>> MultiAsync(IReadOnlyList<RegistryOp> operations, CancellationToken cancellationToken = default);

    /// <summary>
    /// Creates an ephemeral node (or takes over the data of one this session already owns) and keeps it: after a session is
    /// lost, the node is re-created on the new session before <see cref="RegistrySessionEventKind.NewSession"/> is raised.
    /// Deleting it with <see cref="DeleteAsync"/> stops keeping it.
    /// </summary>
    Task KeepEphemeralAsync(string path, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);
}
