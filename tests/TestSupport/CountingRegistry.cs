using ShardedJobs.Coordination;

namespace ShardedJobs.TestSupport;

/// <summary>An <see cref="IRegistry"/> that counts the requests it forwards (each one is one round trip to ZooKeeper).</summary>
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
        Count(inner.CreateAsync(path, data, kind, cancellationToken), "create", path);

    public Task DeleteAsync(string path, int version = -1, CancellationToken cancellationToken = default) => Count(inner.DeleteAsync(path, version, cancellationToken), "delete", path);

    public Task<NodeStat?> ExistsAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Count(inner.ExistsAsync(path, watcher, cancellationToken), "exists", path);

    public Task<RegistryNode?> GetAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Count(inner.GetAsync(path, watcher, cancellationToken), "get", path);

    public Task<NodeStat> SetAsync(string path, ReadOnlyMemory<byte> data, int version = -1, CancellationToken cancellationToken = default) =>
        Count(inner.SetAsync(path, data, version, cancellationToken), "set", path);

    public Task<IReadOnlyList<string>?> GetChildrenAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Count(inner.GetChildrenAsync(path, watcher, cancellationToken), "children", path);

    public Task<IReadOnlyList<RegistryOpResult>> MultiAsync(IReadOnlyList<RegistryOp> operations, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _multis);
        return Count(inner.MultiAsync(operations, cancellationToken), "multi", operations.Count > 0 ? operations[^1].Path : "/");
    }

    public Task KeepEphemeralAsync(string path, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        Count(inner.KeepEphemeralAsync(path, data, cancellationToken), "keep", path);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private T Count<T>(T task, string operation, string path)
    {
        Interlocked.Increment(ref _requests);
        var name = path[(path.LastIndexOf('/') + 1)..];
        _byOperation.AddOrUpdate($"{operation} {(int.TryParse(name, out _) ? "#" : name)}", 1, (_, n) => n + 1);
        return task;
    }
}
