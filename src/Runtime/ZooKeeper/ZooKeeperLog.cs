using Microsoft.Extensions.Logging;

namespace ShardedJobs.ZooKeeper;

internal static partial class ZooKeeperLog
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "ZooKeeper session 0x{SessionId:x} {How} on {Server} (negotiated timeout {TimeoutMs} ms)")]
    public static partial void Connected(ILogger logger, long sessionId, string how, string server, int timeoutMs);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "ZooKeeper connection to {Server} lost (session 0x{SessionId:x}): {Reason}")]
    public static partial void ConnectionLost(ILogger logger, string server, long sessionId, string reason, Exception? exception);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Debug, Message = "ZooKeeper connection attempt to {Server} failed: {Reason}")]
    public static partial void ConnectAttemptFailed(ILogger logger, string server, string reason);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "ZooKeeper session 0x{SessionId:x} has expired; its ephemeral nodes are gone")]
    public static partial void SessionExpired(ILogger logger, long sessionId);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Error, Message = "ZooKeeper rejected the credentials for scheme '{Scheme}'; the client is closed")]
    public static partial void AuthFailed(ILogger logger, string scheme);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Error, Message = "A ZooKeeper watcher or state handler threw; the event loop goes on")]
    public static partial void HandlerThrew(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "ZooKeeper setWatches failed with {Code}; watches may have been lost")]
    public static partial void SetWatchesFailed(ILogger logger, ZooKeeperErrorCode code);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Information, Message = "ZooKeeper session 0x{SessionId:x} closed")]
    public static partial void Closed(ILogger logger, long sessionId);
}
