using ShardedJobs.Coordination;

namespace ShardedJobs.TestSupport.Simulation;

/// <summary>What a request does, as far as the fault simulator aims at it: the coordination moments that matter.</summary>
public enum RequestKind
{
    /// <summary>Anything else (a read, a registration, a flag write of a misfire).</summary>
    Other,

    /// <summary>A fire's (or a compensation's) running markers, with the progress record.</summary>
    Markers,

    /// <summary>Markers removed as items end.</summary>
    Release,

    /// <summary>A departed instance's unfinished items flagged for failover.</summary>
    Flag,

    /// <summary>A flagged item claimed for compensation.</summary>
    Claim,

    /// <summary>A claim deleted, handed back or moved on (a single delete or set of <c>sharding/{item}/failover</c>).</summary>
    ClaimRelease,

    /// <summary>The leader's assignment.</summary>
    Sharding,
}

/// <summary>How a request goes wrong.</summary>
public enum RequestFaultKind
{
    /// <summary>It fails with ConnectionLoss without reaching the registry.</summary>
    NotSent,

    /// <summary>The registry applies it, and its reply is lost: the caller sees ConnectionLoss.</summary>
    ReplyLost,

    /// <summary>The registry applies it at once, the reply arrives <see cref="RequestFault.Delay"/> later.</summary>
    Late,

    /// <summary>The registry applies it, and the instance crashes before the reply arrives.</summary>
    CrashAfter,

    /// <summary>The instance crashes just before sending it.</summary>
    CrashBefore,
}

/// <summary>A fault armed for the next request of <see cref="Target"/> kind on one instance.</summary>
public sealed record RequestFault(RequestKind Target, RequestFaultKind Kind, TimeSpan Delay = default)
{
    public override string ToString() => Kind == RequestFaultKind.Late ? $"{Kind} {Delay.TotalMilliseconds:0} ms on next {Target}" : $"{Kind} on next {Target}";
}

/// <summary>
/// The fault simulator's registry decorator: forwards every request to the instance's own session and applies the faults the
/// schedule armed (<see cref="Arm"/>), each on the next request of its kind. A crash it causes is reported through
/// <see cref="Crashed"/>; the driver finishes it (the host is abandoned, as a dead process's).
/// </summary>
public sealed class FaultyRegistry(IRegistry inner, TimeProvider time) : IRegistry
{
    private readonly Lock _gate = new();
    private readonly List<RequestFault> _armed = [];

    public IRegistry Inner => inner;

    /// <summary>Raised (once per crash) on the requesting thread when an armed fault crashed the instance; the registry
    /// connection is already cut.</summary>
    public event Action? Crashed;

    /// <summary>Faults applied so far, by kind and target, for the report.</summary>
    public List<string> Applied { get; } = [];

    /// <summary>Cuts the connection as a crash does (set by the driver: suspends the embedded session).</summary>
    public Action? CutConnection { get; set; }

    public void Arm(RequestFault fault)
    {
        lock (_gate)
        {
            _armed.Add(fault);
        }
    }

    /// <summary>Faults armed and not yet applied (disarmed when the instance goes away).</summary>
    public void Disarm()
    {
        lock (_gate)
        {
            _armed.Clear();
        }
    }

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
        Forward(RequestKind.Other, path, () => inner.CreateAsync(path, data, kind, cancellationToken));

    public Task DeleteAsync(string path, int version = -1, CancellationToken cancellationToken = default) =>
        Forward(path.EndsWith("/failover", StringComparison.Ordinal) ? RequestKind.ClaimRelease : path.EndsWith("/running", StringComparison.Ordinal) ? RequestKind.Release : RequestKind.Other,
            path, async () => { await inner.DeleteAsync(path, version, cancellationToken).ConfigureAwait(false); return true; });

    public Task<NodeStat?> ExistsAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Forward(RequestKind.Other, path, () => inner.ExistsAsync(path, watcher, cancellationToken));

    public Task<RegistryNode?> GetAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Forward(RequestKind.Other, path, () => inner.GetAsync(path, watcher, cancellationToken));

    public Task<NodeStat> SetAsync(string path, ReadOnlyMemory<byte> data, int version = -1, CancellationToken cancellationToken = default) =>
        Forward(path.EndsWith("/failover", StringComparison.Ordinal) ? RequestKind.ClaimRelease : RequestKind.Other, path, () => inner.SetAsync(path, data, version, cancellationToken));

    public Task<IReadOnlyList<string>?> GetChildrenAsync(string path, Action<RegistryWatchEvent>? watcher = null, CancellationToken cancellationToken = default) =>
        Forward(RequestKind.Other, path, () => inner.GetChildrenAsync(path, watcher, cancellationToken));

    public Task<IReadOnlyList<RegistryOpResult>> MultiAsync(IReadOnlyList<RegistryOp> operations, CancellationToken cancellationToken = default) =>
        Forward(Classify(operations), operations.Count > 0 ? operations[^1].Path : "/", () => inner.MultiAsync(operations, cancellationToken));

    public Task KeepEphemeralAsync(string path, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        inner.KeepEphemeralAsync(path, data, cancellationToken); // its requests are the inner registry's own (not aimed at)

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    /// <summary>What a multi is for, from its operations (the runtime's multis each have one recognisable shape).</summary>
    public static RequestKind Classify(IReadOnlyList<RegistryOp> operations)
    {
        static bool Ends(RegistryOp op, string suffix) => op.Path.EndsWith(suffix, StringComparison.Ordinal);
        if (operations.Any(o => o is RegistryOp.Create && Ends(o, "/running")))
        {
            return RequestKind.Markers;
        }

        if (operations.Any(o => o is RegistryOp.SetData && Ends(o, "/instance")))
        {
            return RequestKind.Sharding;
        }

        if (operations.Any(o => o is RegistryOp.Create or RegistryOp.SetData && Ends(o, "/failover")) && operations.Any(o => o is RegistryOp.Delete && o.Path.Contains("/leader/failover/items/", StringComparison.Ordinal)))
        {
            return RequestKind.Claim;
        }

        if (operations.Any(o => o is RegistryOp.Create && o.Path.Contains("/leader/failover/items/", StringComparison.Ordinal)))
        {
            return RequestKind.Flag;
        }

        if (operations.Count > 0 && operations.All(o => o is RegistryOp.Delete && Ends(o, "/running")))
        {
            return RequestKind.Release;
        }

        return RequestKind.Other;
    }

    private RequestFault? Take(RequestKind kind)
    {
        lock (_gate)
        {
            var index = _armed.FindIndex(f => f.Target == kind);
            if (index < 0)
            {
                return null;
            }

            var fault = _armed[index];
            _armed.RemoveAt(index);
            Applied.Add($"{time.GetUtcNow():HH:mm:ss.fff} {fault}");
            return fault;
        }
    }

    private Task<T> Forward<T>(RequestKind kind, string path, Func<Task<T>> call)
    {
        if (inner.State != RegistryState.Connected || Take(kind) is not { } fault)
        {
            return call();
        }

        switch (fault.Kind)
        {
            case RequestFaultKind.NotSent:
                return Task.FromException<T>(Lost(path, fault));
            case RequestFaultKind.CrashBefore:
                Crash();
                return Task.FromException<T>(Lost(path, fault));
            case RequestFaultKind.ReplyLost:
                return ThenAsync(call(), () => throw Lost(path, fault));
            case RequestFaultKind.CrashAfter:
                return ThenAsync(call(), () =>
                {
                    Crash();
                    throw Lost(path, fault);
                });
            default:
                return LateAsync(call(), fault.Delay);
        }
    }

    private void Crash()
    {
        CutConnection?.Invoke();
        Crashed?.Invoke();
    }

    private static async Task<T> ThenAsync<T>(Task<T> applied, Action after)
    {
        try
        {
            await applied.ConfigureAwait(false);
        }
        catch (RegistryException)
        {
            // Failed at the registry: the fault lost a failure's reply instead, which looks the same to the caller.
        }

        after();
        throw new InvalidOperationException("unreachable");
    }

    private async Task<T> LateAsync<T>(Task<T> applied, TimeSpan delay)
    {
        // The request was applied at once; its reply (or its failure) arrives late.
        try
        {
            var result = await applied.ConfigureAwait(false);
            await Task.Delay(delay, time).ConfigureAwait(false);
            return result;
        }
        catch (RegistryException)
        {
            await Task.Delay(delay, time).ConfigureAwait(false);
            throw;
        }
    }

    private static RegistryException Lost(string path, RequestFault fault) =>
        new(RegistryErrorCode.ConnectionLoss, path, $"Registry ConnectionLoss for '{path}' (simulated: {fault}).");
}
