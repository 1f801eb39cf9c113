namespace ShardedJobs.ZooKeeper;

/// <summary>
/// A ZooKeeper operation failed with <see cref="Code"/>. Catch the subclasses for the codes callers usually handle
/// (<see cref="NoNodeException"/>, <see cref="NodeExistsException"/>, <see cref="BadVersionException"/>, ...) or filter on
/// <see cref="Code"/>.
/// </summary>
public class ZooKeeperException : Exception
{
    public ZooKeeperException(ZooKeeperErrorCode code, string? path, string? message = null, Exception? innerException = null)
        : base(message ?? DescribeFailure(code, path), innerException)
    {
        Code = code;
        Path = path;
    }

    /// <summary>The ZooKeeper result code.</summary>
    public ZooKeeperErrorCode Code { get; }

    /// <summary>The node path the operation named (client view, without chroot), when it named one.</summary>
    public string? Path { get; }

    /// <summary>True for failures after which retrying the same call may succeed (the connection, not the request, failed).</summary>
    public bool IsTransient => Code is ZooKeeperErrorCode.ConnectionLoss or ZooKeeperErrorCode.OperationTimeout or ZooKeeperErrorCode.RequestTimeout or ZooKeeperErrorCode.ThrottledOp;

    /// <summary>Creates the most specific exception type for <paramref name="code"/>.</summary>
    public static ZooKeeperException Create(ZooKeeperErrorCode code, string? path, string? message = null, Exception? innerException = null) => code switch
    {
        ZooKeeperErrorCode.NoNode => new NoNodeException(path, message),
        ZooKeeperErrorCode.NodeExists => new NodeExistsException(path, message),
        ZooKeeperErrorCode.BadVersion => new BadVersionException(path, message),
        ZooKeeperErrorCode.NotEmpty => new NotEmptyException(path, message),
        ZooKeeperErrorCode.NoAuth => new NoAuthException(path, message),
        ZooKeeperErrorCode.ConnectionLoss => new ConnectionLossException(path, message, innerException),
        ZooKeeperErrorCode.SessionExpired => new SessionExpiredException(path, message),
        _ => new ZooKeeperException(code, path, message, innerException),
    };

    private static string DescribeFailure(ZooKeeperErrorCode code, string? path)
    {
        var what = code switch
        {
            ZooKeeperErrorCode.NoNode => "the node (or its parent) does not exist",
            ZooKeeperErrorCode.NodeExists => "the node already exists",
            ZooKeeperErrorCode.BadVersion => "the node's version does not match the expected version",
            ZooKeeperErrorCode.NotEmpty => "the node has children",
            ZooKeeperErrorCode.NoAuth => "the node's ACL does not allow this client; add the right digest credentials",
            ZooKeeperErrorCode.ConnectionLoss => "the connection to ZooKeeper was lost before the reply arrived; a write may or may not have been applied",
            ZooKeeperErrorCode.SessionExpired => "the ZooKeeper session has expired: its ephemeral nodes and watches are gone; create a new client",
            ZooKeeperErrorCode.NoChildrenForEphemerals => "ephemeral nodes cannot have children",
            ZooKeeperErrorCode.InvalidAcl => "the ACL is invalid (empty, malformed, or 'auth' without credentials)",
            ZooKeeperErrorCode.BadArguments => "the server rejected the arguments (invalid path or flags)",
            ZooKeeperErrorCode.AuthFailed => "authentication failed",
            ZooKeeperErrorCode.MarshallingError => "the server could not decode the request",
            ZooKeeperErrorCode.Unimplemented => "the server does not implement this operation",
            _ => "the operation failed",
        };
        return path is null ? $"ZooKeeper {code}: {what}." : $"ZooKeeper {code} for '{path}': {what}.";
    }
}

public sealed class NoNodeException(string? path, string? message = null) : ZooKeeperException(ZooKeeperErrorCode.NoNode, path, message);

public sealed class NodeExistsException(string? path, string? message = null) : ZooKeeperException(ZooKeeperErrorCode.NodeExists, path, message);

public sealed class BadVersionException(string? path, string? message = null) : ZooKeeperException(ZooKeeperErrorCode.BadVersion, path, message);

public sealed class NotEmptyException(string? path, string? message = null) : ZooKeeperException(ZooKeeperErrorCode.NotEmpty, path, message);

public sealed class NoAuthException(string? path, string? message = null) : ZooKeeperException(ZooKeeperErrorCode.NoAuth, path, message);

public sealed class ConnectionLossException(string? path, string? message = null, Exception? innerException = null)
    : ZooKeeperException(ZooKeeperErrorCode.ConnectionLoss, path, message, innerException);

public sealed class SessionExpiredException(string? path, string? message = null) : ZooKeeperException(ZooKeeperErrorCode.SessionExpired, path, message);

/// <summary>
/// A multi failed as a whole (nothing was applied). <see cref="ZooKeeperException.Code"/> and <see cref="ZooKeeperException.Path"/>
/// are those of the first failing operation, at <see cref="FailedIndex"/>; <see cref="Results"/> holds every operation's result.
/// </summary>
public sealed class MultiOperationException(ZooKeeperErrorCode code, string? path, int failedIndex, IReadOnlyList<OpResult> results)
    : ZooKeeperException(code, path, $"ZooKeeper multi failed at operation {failedIndex} ({code}{(path is null ? "" : $" for '{path}'")}); nothing was applied.")
{
    public int FailedIndex { get; } = failedIndex;

    public IReadOnlyList<OpResult> Results { get; } = results;
}

/// <summary>The bytes from the server broke the protocol (bad length, truncated record, unexpected xid); the connection is dropped.</summary>
internal sealed class ZooKeeperProtocolException(string message) : Exception(message);
