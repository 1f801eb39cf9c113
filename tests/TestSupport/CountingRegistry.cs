using ShardedJobs.Coordination;

namespace ShardedJobs.TestSupport;

/// <summary>What goes wrong with one request (<see cref="CountingRegistry.Faults"/>).</summary>
public enum RegistryFault
{
    None,

    /// <summary>It fails with ConnectionLoss without reaching the registry.</summary>
    NotSent,

    /// <summary>The registry applies it, and then its reply is lost: the caller sees ConnectionLoss.</summary>
    ReplyLost,
}

/// <summary>An <see cref="IRegistry"/> that counts the requests it forwards (each one is one round trip to ZooKeeper), and can
/// make chosen requests fail as a lost connection does (<see cref="Faults"/>).</summary>
public sealed class CountingRegistry(IRegistry inner) : IRegistry
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _byOperation = new(StringComparer.Ordinal);
    private long _requests;
    private long _multis;

    public IRegistry Inner => inner;

    /// <summary>Requests forwarded so far (a multi counts once).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    public long Multis => Interlocked.Read(ref _multis);

    /// <summary>Requests by operation and node name (the last path segment, items collapsed to '#'), for finding where round trips go.</summary>
    public IReadOnlyDictionary<string, long> ByOperation => _byOperation;

    /// <summary>Decides, per request (operation and path, as in <see cref="ByOperation"/>'s keys but with the whole path), what
    /// goes wrong with it; null or <see cref="RegistryFault.None"/> forwards it untouched.</summary>
    public Func<string, string, RegistryFault>? Faults { get; set; }

    public long SessionId => inner.SessionId;

    public RegistryState State => inner.State;

    public TimeSpan SessionTimeout => inner.SessionTimeout;

    public TimeSpan SinceLastHeard => inner.SinceLastHeard;

    public event Action<RegistrySessionEvent>? SessionChanged
    {
        add => inner.SessionChanged += value;
        remove => inner.SessionChanged -= value;
    }

    public Task<string> CreateAsync(string path, ReadOnlyMemory<byte> data, NodeKind kind = NodeKind.Persistent, CancellationToken cancellationToken = default) =>
        Forward(() => inner.CreateAsync(path, data, kind, cancellationToken), "create", path);

    public Task DeleteAsync(string path, int version = -1, CancellationToken cancellationToken = default) =>
        Forward(async () => { await inner.DeleteAsync(path, version, cancellationToken).ConfigureAwait(false); return true; }, "delete", path);

    public Task<NodeStat?> ExistsAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Forward(() => inner.ExistsAsync(path, watcher, cancellationToken), "exists", path);

    public Task<RegistryNode?> GetAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Forward(() => inner.GetAsync(path, watcher, cancellationToken), "get", path);

    public Task<NodeStat> SetAsync(string path, ReadOnlyMemory<byte> data, int version = -1, CancellationToken cancellationToken = default) =>
        Forward(() => inner.SetAsync(path, data, version, cancellationToken), "set", path);

    public Task<IReadOnlyList<string>?> GetChildrenAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Forward(() => inner.GetChildrenAsync(path, watcher, cancellationToken), "children", path);

    public Task<IReadOnlyList<RegistryOpResult>> MultiAsync(IReadOnlyList<RegistryOp> operations, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _multis);
        return Forward(() => inner.MultiAsync(operations, cancellationToken), "multi", operations.Count > 0 ? operations[^1].Path : "/");
    }

    public Task KeepEphemeralAsync(string path, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        Forward(async () => { await inner.KeepEphemeralAsync(path, data, cancellationToken).ConfigureAwait(false); return true; }, "keep", path);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private Task<T> Forward<T>(Func<Task<T>> call, string operation, string path)
    {
        Interlocked.Increment(ref _requests);
        var name = path[(path.LastIndexOf('/') + 1)..];
        _byOperation.AddOrUpdate($"{operation} {(int.TryParse(name, out _) ? "#" : name)}", 1, (_, n) => n + 1);
        return (Faults?.Invoke(operation, path) ?? RegistryFault.None) switch
        {
            RegistryFault.NotSent => Task.FromException<T>(Lost(path)),
            RegistryFault.ReplyLost => LoseReplyAsync(call(), path),
            _ => call(),
        };
    }

    private static async Task<T> LoseReplyAsync<T>(Task<T> applied, string path)
    {
        await applied.ConfigureAwait(false);
        throw Lost(path);
    }

    private static RegistryException Lost(string path) =>
        new(RegistryErrorCode.ConnectionLoss, path, $"Registry ConnectionLoss for '{path}' (injected by the test).");
}
