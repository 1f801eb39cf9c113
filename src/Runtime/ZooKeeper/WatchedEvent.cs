namespace ShardedJobs.ZooKeeper;

/// <summary>What happened to a watched node (<see cref="None"/> for session events delivered to watchers).</summary>
public enum WatchedEventType
{
    None = -1,
    NodeCreated = 1,
    NodeDeleted = 2,
    NodeDataChanged = 3,
    NodeChildrenChanged = 4,
}

/// <summary>The state of a client's session and connection.</summary>
public enum ZooKeeperState
{
    /// <summary>Establishing the first session.</summary>
    Connecting,
    /// <summary>Connected to a server; the session is live.</summary>
    Connected,
    /// <summary>The connection was lost; the client is reconnecting and the session may still live (its ephemerals too, until it expires).</summary>
    Disconnected,
    /// <summary>The server says the session is gone: its ephemeral nodes are deleted and watches dropped. Terminal for this client.</summary>
    Expired,
    /// <summary>The server rejected the client's credentials. Terminal.</summary>
    AuthFailed,
    /// <summary>The client was closed. Terminal.</summary>
    Closed,
}

/// <summary>
/// A watch notification. One-shot node watches get exactly one event with a node type; when the session ends
/// (<see cref="ZooKeeperState.Expired"/>, <see cref="ZooKeeperState.AuthFailed"/>, <see cref="ZooKeeperState.Closed"/>) every
/// watch still armed gets one event of type <see cref="WatchedEventType.None"/> carrying that state instead, so no watcher waits forever.
/// </summary>
public sealed record WatchedEvent(WatchedEventType Type, ZooKeeperState State, string? Path);

/// <summary>A change of <see cref="ZooKeeperClient.State"/>; <paramref name="NewSession"/> is true on the first connection of a session.</summary>
public sealed record ZooKeeperStateChange(ZooKeeperState State, long SessionId, bool NewSession);
