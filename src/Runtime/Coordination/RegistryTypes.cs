namespace ShardedJobs.Coordination;

/// <summary>How a registry node lives.</summary>
public enum NodeKind
{
    Persistent,
    /// <summary>Removed when the session that created it ends.</summary>
    Ephemeral,
    /// <summary>The name gets the parent's 10-digit creation counter appended.</summary>
    PersistentSequential,
    EphemeralSequential,
}

/// <summary>A node's metadata: enough for versioned writes and ownership checks.</summary>
/// <param name="Version">Number of data changes; the version to pass to a conditional write.</param>
/// <param name="EphemeralOwner">The owning session for an ephemeral node; 0 otherwise.</param>
/// <param name="NumChildren">How many children the node has.</param>
/// <param name="ModifiedAt">When the data last changed, by the registry's clock.</param>
public sealed record NodeStat(int Version, long EphemeralOwner, int NumChildren, DateTimeOffset ModifiedAt);

/// <summary>A node's data and metadata.</summary>
public sealed record RegistryNode(byte[] Data, NodeStat Stat);

public enum RegistryEventType
{
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
    /// <summary>The session that armed the watch ended (expired or closed): the watch will never fire; re-read and re-watch on the new session.</summary>
    SessionEnded,
}

/// <summary>A one-shot watch notification.</summary>
public sealed record RegistryWatchEvent(RegistryEventType Type, string Path);

public enum RegistryState
{
    Connected,
    /// <summary>The connection is lost; the session (and this instance's ephemerals) may still live. Work that needs the registry must wait or stop.</summary>
    Suspended,
    /// <summary>The registry is closed.</summary>
    Closed,
}

public enum RegistrySessionEventKind
{
    /// <summary>Connected again after <see cref="Suspended"/>, with the same session: ephemerals and watches are intact.</summary>
    Reconnected,
    /// <summary>The connection was lost; the session may still live.</summary>
    Suspended,
    /// <summary>The session ended (expired): its ephemerals are gone and its watches got <see cref="RegistryEventType.SessionEnded"/>.</summary>
    SessionLost,
    /// <summary>A new session replaces a lost one; kept ephemerals were re-created before this event. Re-arm watches and re-register.</summary>
    NewSession,
}

/// <summary>A change of the registry session, delivered in order on the registry's event loop.</summary>
public sealed record RegistrySessionEvent(RegistrySessionEventKind Kind, long SessionId);

public enum RegistryErrorCode
{
    NoNode,
    NodeExists,
    BadVersion,
    NotEmpty,
    NoChildrenForEphemerals,
    /// <summary>Transient: the connection failed; a write may or may not have been applied.</summary>
    ConnectionLoss,
    /// <summary>The session ended during the call.</summary>
    SessionExpired,
    NoAuth,
    /// <summary>Anything else the backing store reported; see the message.</summary>
    Other,
}

/// <summary>A registry operation failed with <see cref="Code"/> on <see cref="Path"/>.</summary>
public class RegistryException(RegistryErrorCode code, string? path, string? message = null, Exception? innerException = null)
    : Exception(message ?? (path is null ? $"Registry {code}." : $"Registry {code} for '{path}'."), innerException)
{
    public RegistryErrorCode Code { get; } = code;

    public string? Path { get; } = path;

    /// <summary>Retrying may succeed (the connection failed, not the request).</summary>
    public bool IsTransient => Code is RegistryErrorCode.ConnectionLoss or RegistryErrorCode.SessionExpired;
}

/// <summary>An atomic multi failed; nothing was applied. Code and Path are the first failing operation's.</summary>
public sealed class RegistryMultiException(RegistryErrorCode code, string? path, int failedIndex, IReadOnlyList<RegistryOpResult> results)
    : RegistryException(code, path, $"Registry multi failed at operation {failedIndex} ({code}{(path is null ? "" : $" for '{path}'")}); nothing was applied.")
{
    public int FailedIndex { get; } = failedIndex;

    public IReadOnlyList<RegistryOpResult> Results { get; } = results;
}

/// <summary>One operation of <see cref="IRegistry.MultiAsync"/>.</summary>
public abstract record RegistryOp(string Path)
{
    public sealed record Create(string Path, ReadOnlyMemory<byte> Data, NodeKind Kind = NodeKind.Persistent) : RegistryOp(Path);

    public sealed record Delete(string Path, int Version = -1) : RegistryOp(Path);

    public sealed record SetData(string Path, ReadOnlyMemory<byte> Data, int Version = -1) : RegistryOp(Path);

    /// <summary>Fails the multi unless the node exists with <paramref name="Version"/> (-1: any version).</summary>
    public sealed record Check(string Path, int Version = -1) : RegistryOp(Path);
}

/// <summary>The result of one operation of a multi.</summary>
public abstract record RegistryOpResult
{
    public sealed record Created(string Path) : RegistryOpResult;

    public sealed record Deleted : RegistryOpResult;

    public sealed record DataSet(int Version) : RegistryOpResult;

    public sealed record Checked : RegistryOpResult;

    /// <summary>In a failed multi: null for the operations that would have succeeded, the code of the failing one, and
    /// <see cref="RegistryErrorCode.Other"/> for those after it (not attempted).</summary>
    public sealed record Failed(RegistryErrorCode? Code) : RegistryOpResult;
}
