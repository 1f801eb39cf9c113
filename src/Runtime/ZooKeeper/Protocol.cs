namespace ShardedJobs.ZooKeeper;

/// <summary>Operation codes of the requests this client sends.</summary>
internal enum OpCode
{
    CloseSession = -11,
    Create = 1,
    Delete = 2,
    Exists = 3,
    GetData = 4,
    SetData = 5,
    GetAcl = 6,
    GetChildren = 8,
    Sync = 9,
    Ping = 11,
    GetChildren2 = 12,
    /// <summary>Only ever inside a multi: sent alone, ZooKeeper 3.8.0 never answers and corrupts its data directory.</summary>
    Check = 13,
    Multi = 14,
    Create2 = 15,
    CreateContainer = 19,
    Auth = 100,
    SetWatches = 101,
}

/// <summary>Reserved xids: replies that are not matched against the in-order queue of pending requests.</summary>
internal static class Xids
{
    public const int Notification = -1;
    public const int Ping = -2;
    public const int Auth = -4;
}

internal static class ProtocolLimits
{
    /// <summary>ZooKeeper's default <c>jute.maxbuffer</c> (1 MiB - 1); the server closes connections that exceed it, and so do we.</summary>
    public const int MaxFrameLength = 0xfffff + 1024;

    /// <summary>Bytes of path text per setWatches request before it is split, as the Java client does.</summary>
    public const int SetWatchesBatchBytes = 128 * 1024;

    public const int ConnectResponseMinLength = 36;
}

/// <summary>How a node is created.</summary>
public enum CreateMode
{
    Persistent = 0,
    /// <summary>Deleted when the session that created it ends (close or expiry). Cannot have children.</summary>
    Ephemeral = 1,
    /// <summary>A persistent node whose name gets the parent's 10-digit creation counter appended.</summary>
    PersistentSequential = 2,
    EphemeralSequential = 3,
    /// <summary>Deleted by the server once it has had children and is empty again.</summary>
    Container = 4,
}

/// <summary>Node permissions.</summary>
[Flags]
public enum ZooKeeperPermissions
{
    None = 0,
    Read = 1,
    Write = 2,
    Create = 4,
    Delete = 8,
    Admin = 16,
    All = Read | Write | Create | Delete | Admin,
}

/// <summary>A node's metadata.</summary>
public sealed record ZooKeeperStat(
    long Czxid,
    long Mzxid,
    long Ctime,
    long Mtime,
    int Version,
    int Cversion,
    int Aversion,
    long EphemeralOwner,
    int DataLength,
    int NumChildren,
    long Pzxid);

/// <summary>Data of a node and its metadata.</summary>
public sealed record NodeData(byte[] Data, ZooKeeperStat Stat);

/// <summary>Children of a node (bare names, sorted ordinally) and the node's metadata.</summary>
public sealed record ChildrenWithStat(IReadOnlyList<string> Children, ZooKeeperStat Stat);

/// <summary>A node created by <see cref="ZooKeeperClient.CreateWithStatAsync"/>: its actual path (with any sequence suffix) and Stat.</summary>
public sealed record CreatedNode(string Path, ZooKeeperStat Stat);
