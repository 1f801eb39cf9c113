using Microsoft.Extensions.Logging;

namespace ShardedJobs.ZooKeeper;

/// <summary>Settings of a <see cref="ZooKeeperClient"/>.</summary>
public sealed record ZooKeeperClientOptions
{
    /// <summary><c>host:port[,host:port...][/chroot]</c>.</summary>
    public required string ConnectionString { get; init; }

    /// <summary>The session timeout to ask for; the server clamps it to [2, 20] × its tickTime. Timers use the negotiated value.</summary>
    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long <see cref="ZooKeeperClient.ConnectAsync(ZooKeeperClientOptions, CancellationToken)"/> waits for the first session.</summary>
    public TimeSpan ConnectionTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Digest credentials (<c>user:password</c>) sent right after every (re)connection, before anything else.</summary>
    public string? Digest { get; init; }

    /// <summary>Upper bound of the randomised pause between reconnection attempts.</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Seed for the server order and reconnect jitter (tests); null = random.</summary>
    public int? RandomSeed { get; init; }

    public ILoggerFactory? LoggerFactory { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Attach to an existing session instead of creating one (tests use it to end a session on demand).</summary>
    internal (long Id, byte[] Password)? ExistingSession { get; init; }
}
