using ShardedJobs.Coordination;

namespace ShardedJobs.TestSupport;

/// <summary>An <see cref="IRegistry"/> that counts the requests it forwards (each one is one round trip to ZooKeeper).</summary>
public sealed class CountingRegistry(IRegistry inner) : IRegistry
{
    private long _requests;
    private long _multis;

    public IRegistry Inner => inner;

    /// <summary>Requests forwarded so far (a multi counts once).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    public long Multis => Interlocked.Read(ref _multis);

    public long SessionId => inner.SessionId;

    public RegistryState State => inner.State;

    public event Action<RegistrySessionEvent>? SessionChanged
    {
        add => inner.SessionChanged += value;
        remove => inner.SessionChanged -= value;
    }

    public Task<string> CreateAsync(string path, ReadOnlyMemory<byte> data, NodeKind kind = NodeKind.Persistent, CancellationToken cancellationToken = default) =>
        Count(inner.CreateAsync(path, data, kind, cancellationToken));

    public Task DeleteAsync(string path, int version = -1, CancellationToken cancellationToken = default) => Count(inner.DeleteAsync(path, version, cancellationToken));

    public Task<NodeStat?> ExistsAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Count(inner.ExistsAsync(path, watcher, cancellationToken));

    public Task<RegistryNode?> GetAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Count(inner.GetAsync(path, watcher, cancellationToken));

    public Task<NodeStat> SetAsync(string path, ReadOnlyMemory<byte> data, int version = -1, CancellationToken cancellationToken = default) =>
        Count(inner.SetAsync(path, data, version, cancellationToken));

    public Task<IReadOnlyList<string>?> GetChildrenAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Count(inner.GetChildrenAsync(path, watcher, cancellationToken));

    public Task<IReadOnlyList<RegistryOpResult>> MultiAsync(IReadOnlyList<RegistryOp> operations, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _multis);
        return Count(inner.MultiAsync(operations, cancellationToken));
    }

    public Task KeepEphemeralAsync(string path, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        Count(inner.KeepEphemeralAsync(path, data, cancellationToken));

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private T Count<T>(T task)
    {
        Interlocked.Increment(ref _requests);
        return task;
    }
}
