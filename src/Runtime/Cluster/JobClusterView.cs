using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text;
using Microsoft.Extensions.Logging;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;

namespace ShardedJobs.Cluster;

/// <summary>The parts of a job's registry state that <see cref="JobClusterView"/> keeps current.</summary>
[Flags]
internal enum ViewParts
{
    None = 0,
    Config = 1,
    Instances = 2,
    Servers = 4,
    ReshardingFlag = 8,
    Sharding = 16,
    DisabledItems = 32,
    Trigger = 64,
    FailoverFlags = 128,
    All = Config | Instances | Servers | ReshardingFlag | Sharding | DisabledItems | Trigger | FailoverFlags,
}

/// <summary>The assignment of the last sharding, read consistently (all items of one generation).</summary>
/// <param name="Generation">The version of the <c>sharding</c> node; -1 before the first sharding.</param>
/// <param name="Stamp">What it was computed from, or null before the first sharding.</param>
/// <param name="Owners">Item → owning instance (items without an owner node are absent).</param>
internal sealed record ShardingSnapshot(int Generation, ShardingStamp? Stamp, ImmutableDictionary<int, string> Owners)
{
    public static readonly ShardingSnapshot None = new(-1, null, ImmutableDictionary<int, string>.Empty);

    public IReadOnlyList<int> ItemsOf(string instanceId) => [.. Owners.Where(o => o.Value == instanceId).Select(o => o.Key).Order()];
}

/// <summary>
/// One instance's view of one job in the registry, kept current with one-shot watches (ElasticJob reads the same things
/// from a Curator tree cache), so that a fire on a stable cluster reads nothing: config, live instances, server states, the
/// re-sharding flag, the assignment, disabled items and this instance's trigger node.
/// <para>
/// Watches only mark parts dirty; one loop re-reads dirty parts (re-arming the watches) and then raises <see cref="Changed"/>,
/// so refreshes never race each other. A refresh that fails on a lost connection is retried after a pause and at the next
/// session event; a new session re-reads everything. The view can lag the registry by one watch delivery: the cluster logic
/// uses it for decisions whose mistakes are caught by a registry check (a fire's multi checks the sharding generation).
/// </para>
/// </summary>
internal sealed class JobClusterView : IAsyncDisposable
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(500);

    private readonly IRegistry _registry;
    private readonly JobNodes _nodes;
    private readonly string _instanceId;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Action<RegistryWatchEvent>> _watchers = new(StringComparer.Ordinal);
    private readonly BackgroundLoop _loop = new();
    private readonly SemaphoreSlim _dirtySignal = new(0);
    private readonly ConcurrentQueue<TaskCompletionSource> _refreshWaiters = new();
    private readonly int _localShards;
    private int _dirty;
    private volatile bool _refreshing;
    private volatile State _state = new(null, null, ImmutableDictionary<string, InstanceRegistration>.Empty,
        ImmutableDictionary<string, bool>.Empty, false, ShardingSnapshot.None, ImmutableHashSet<int>.Empty, false, ImmutableSortedSet<int>.Empty);

    public JobClusterView(IRegistry registry, JobNodes nodes, string instanceId, int localShards, ILogger logger, TimeProvider time)
    {
        _localShards = localShards;
        _registry = registry;
        _nodes = nodes;
        _instanceId = instanceId;
        _logger = logger;
        _time = time;
        _registry.SessionChanged += OnSessionChanged;
    }

    /// <summary>Raised on the view's loop after dirty parts were re-read, with the parts whose content changed.</summary>
    public event Action<ViewParts>? Changed;

    /// <summary>Nothing is waiting to be re-read and no refresh is running.</summary>
    internal bool IsIdle => !_refreshing && Volatile.Read(ref _dirty) == 0;

    /// <summary>The registry's config, or null when it is absent or unreadable (see <see cref="ConfigError"/>).</summary>
    public JobConfig? Config => _state.Config;

    /// <summary>Why the registry's config could not be used, or null.</summary>
    public string? ConfigError => _state.ConfigError;

    /// <summary>Live instances (their ephemeral nodes) by id.</summary>
    public ImmutableDictionary<string, InstanceRegistration> Instances => _state.Instances;

    /// <summary>Server IP → enabled (<c>ENABLED</c>); anything else reads as disabled, as in ElasticJob.</summary>
    public ImmutableDictionary<string, bool> Servers => _state.Servers;

    public bool ReshardingNecessary => _state.ReshardingNecessary;

    public ShardingSnapshot Sharding => _state.Sharding;

    public ImmutableHashSet<int> DisabledItems => _state.DisabledItems;

    /// <summary>Items waiting to be compensated (<c>leader/failover/items</c>), in item order.</summary>
    public ImmutableSortedSet<int> PendingFailovers => _state.PendingFailovers;

    /// <summary>An operator asked this instance to fire (its <c>trigger/{id}</c> node exists).</summary>
    public bool TriggerRequested => _state.TriggerRequested;

    /// <summary>The instances that may run items: live, not disabled, on an enabled server; in ElasticJob's strategy input
    /// order (descending ordinal order of the id).</summary>
    public IReadOnlyList<string> AvailableInstances() => Available(_state.Instances, _state.Servers);

    public bool IsAvailable(string instanceId) =>
        _state.Instances.TryGetValue(instanceId, out var registration) && !registration.Disabled
        && _state.Servers.TryGetValue(registration.ServerIp, out var enabled) && enabled;

    public static IReadOnlyList<string> Available(IReadOnlyDictionary<string, InstanceRegistration> instances, IReadOnlyDictionary<string, bool> servers) =>
        [.. instances.Values
            .Where(i => !i.Disabled && servers.TryGetValue(i.ServerIp, out var enabled) && enabled)
            .Select(i => i.InstanceId)
            .OrderDescending(StringComparer.Ordinal)];

    /// <summary>Reads everything once (failing on registry errors), then starts the refresh loop.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var state = _state;
        foreach (var part in new[] { ViewParts.Config, ViewParts.Instances, ViewParts.Servers, ViewParts.ReshardingFlag, ViewParts.Sharding, ViewParts.DisabledItems, ViewParts.Trigger, ViewParts.FailoverFlags })
        {
            state = await ReadAsync(part, state, cancellationToken).ConfigureAwait(false);
        }

        _state = state;
        _loop.Start(RunAsync);
    }

    /// <summary>Re-reads the given parts (on the loop) and completes once a refresh that started after this call succeeded.</summary>
    public Task RefreshAsync(ViewParts parts)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Dirty first, then the waiter: the loop takes waiters before it takes the dirty parts, so a waiter it takes always
        // sees its parts read in the same pass. The second signal wakes the loop for a waiter that missed the first one.
        MarkDirty(parts);
        _refreshWaiters.Enqueue(done);
        _dirtySignal.Release();
        return done.Task;
    }

    /// <summary>Waits until <paramref name="condition"/> holds on the view, or the token fires (then false).</summary>
    public async Task<bool> WaitUntilAsync(Func<JobClusterView, bool> condition, CancellationToken cancellationToken)
    {
        while (true)
        {
            var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnChanged(ViewParts _) => changed.TrySetResult();
            Changed += OnChanged;
            try
            {
                if (condition(this))
                {
                    return true;
                }

                await changed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return condition(this);
            }
            finally
            {
                Changed -= OnChanged;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _registry.SessionChanged -= OnSessionChanged;
        await _loop.DisposeAsync().ConfigureAwait(false);
        while (_refreshWaiters.TryDequeue(out var waiter))
        {
            waiter.TrySetCanceled();
        }
    }

    private void OnSessionChanged(RegistrySessionEvent change)
    {
        if (change.Kind == RegistrySessionEventKind.NewSession)
        {
            MarkDirty(ViewParts.All); // watches of the old session are gone
        }
        else if (change.Kind == RegistrySessionEventKind.Reconnected && Volatile.Read(ref _dirty) != 0)
        {
            _dirtySignal.Release(); // retry what failed while suspended
        }
    }

    private void MarkDirty(ViewParts parts)
    {
        int current, next;
        do
        {
            current = Volatile.Read(ref _dirty);
            next = current | (int)parts;
        }
        while (Interlocked.CompareExchange(ref _dirty, next, current) != current);
        _dirtySignal.Release();
    }

    private Action<RegistryWatchEvent> WatcherFor(string path, ViewParts part) =>
        _watchers.GetOrAdd(path, _ => change =>
        {
            if (change.Type != RegistryEventType.SessionEnded)
            {
                MarkDirty(part);
            }
        });

    private async Task RunAsync(CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            await _dirtySignal.WaitAsync(token).ConfigureAwait(false);
            var waiters = new List<TaskCompletionSource>();
            while (_refreshWaiters.TryDequeue(out var waiter))
            {
                waiters.Add(waiter);
            }

            _refreshing = true;
            var dirty = (ViewParts)Interlocked.Exchange(ref _dirty, 0);
            if (dirty == ViewParts.None)
            {
                waiters.ForEach(w => w.TrySetResult());
                _refreshing = false;
                continue;
            }

            var before = _state;
            var state = before;
            var failed = ViewParts.None;
            foreach (var part in Enum.GetValues<ViewParts>().Where(p => p is not ViewParts.None and not ViewParts.All && dirty.HasFlag(p)))
            {
                try
                {
                    state = await ReadAsync(part, state, token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is RegistryException && !token.IsCancellationRequested)
                {
                    failed |= part;
                    JobLog.ViewRefreshFailed(_logger, _nodes.JobName, part.ToString(), e.Message);
                }
            }

            _state = state;
            var changed = Diff(before, state);
            if (changed != ViewParts.None)
            {
                try
                {
                    Changed?.Invoke(changed);
                }
                catch (Exception e)
                {
                    JobLog.UnexpectedError(_logger, _nodes.JobName, "handling a registry change", e);
                }
            }

            if (failed != ViewParts.None)
            {
                waiters.ForEach(_refreshWaiters.Enqueue);
                _ = RetryLaterAsync(failed, token);
            }
            else
            {
                waiters.ForEach(w => w.TrySetResult());
            }

            _refreshing = false;
        }
    }

    private async Task RetryLaterAsync(ViewParts parts, CancellationToken token)
    {
        try
        {
            await Task.Delay(RetryDelay, _time, token).ConfigureAwait(false);
            MarkDirty(parts);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static ViewParts Diff(State a, State b)
    {
        var changed = ViewParts.None;
        if (!Equals(a.Config, b.Config) || a.ConfigError != b.ConfigError)
        {
            changed |= ViewParts.Config;
        }

        if (!SameDictionary(a.Instances, b.Instances))
        {
            changed |= ViewParts.Instances;
        }

        if (!SameDictionary(a.Servers, b.Servers))
        {
            changed |= ViewParts.Servers;
        }

        if (a.ReshardingNecessary != b.ReshardingNecessary)
        {
            changed |= ViewParts.ReshardingFlag;
        }

        if (a.Sharding.Generation != b.Sharding.Generation || !SameDictionary(a.Sharding.Owners, b.Sharding.Owners))
        {
            changed |= ViewParts.Sharding;
        }

        if (!a.DisabledItems.SetEquals(b.DisabledItems))
        {
            changed |= ViewParts.DisabledItems;
        }

        if (a.TriggerRequested != b.TriggerRequested)
        {
            changed |= ViewParts.Trigger;
        }

        if (!a.PendingFailovers.SetEquals(b.PendingFailovers))
        {
            changed |= ViewParts.FailoverFlags;
        }

        return changed;
    }

    private static bool SameDictionary<TKey, TValue>(IReadOnlyDictionary<TKey, TValue> a, IReadOnlyDictionary<TKey, TValue> b)
        where TKey : notnull =>
        a.Count == b.Count && a.All(pair => b.TryGetValue(pair.Key, out var other) && EqualityComparer<TValue>.Default.Equals(pair.Value, other));

    private async Task<State> ReadAsync(ViewParts part, State state, CancellationToken token) => part switch
    {
        ViewParts.Config => await ReadConfigAsync(state, token).ConfigureAwait(false),
        ViewParts.Instances => state with { Instances = await ReadInstancesAsync(token).ConfigureAwait(false) },
        ViewParts.Servers => state with { Servers = await ReadServersAsync(token).ConfigureAwait(false) },
        ViewParts.ReshardingFlag => state with { ReshardingNecessary = await ExistsAsync(_nodes.ShardingNecessary, ViewParts.ReshardingFlag, token).ConfigureAwait(false) },
        ViewParts.Sharding => state with { Sharding = await ReadShardingAsync(token).ConfigureAwait(false) },
        ViewParts.DisabledItems => state with { DisabledItems = await ReadDisabledItemsAsync(state.Config, token).ConfigureAwait(false) },
        ViewParts.Trigger => state with { TriggerRequested = await ExistsAsync(_nodes.Trigger(_instanceId), ViewParts.Trigger, token).ConfigureAwait(false) },
        ViewParts.FailoverFlags => state with { PendingFailovers = await ReadFailoverFlagsAsync(token).ConfigureAwait(false) },
        _ => state,
    };

    private async Task<bool> ExistsAsync(string path, ViewParts part, CancellationToken token) =>
        await _registry.ExistsAsync(path, WatcherFor(path, part), token).ConfigureAwait(false) is not null;

    private async Task<State> ReadConfigAsync(State state, CancellationToken token)
    {
        var path = _nodes.Config;
        var node = await ReadWatchedAsync(path, ViewParts.Config, token).ConfigureAwait(false);
        if (node is null)
        {
            return state with { Config = null, ConfigError = null };
        }

        if (!JobNodeData.TryDecodeConfig(path, node.Data, out var config, out var error))
        {
            return state with { Config = null, ConfigError = error!.Message };
        }

        var next = state with { Config = config, ConfigError = null };
        if (config!.Shards != state.Config?.Shards)
        {
            next = next with { DisabledItems = await ReadDisabledItemsAsync(config, token).ConfigureAwait(false) };
        }

        return next;
    }

    /// <summary>Reads a node and watches it whether or not it exists (get on a missing node leaves no watch; exists does).</summary>
    private async Task<RegistryNode?> ReadWatchedAsync(string path, ViewParts part, CancellationToken token)
    {
        var watcher = WatcherFor(path, part);
        while (true)
        {
            var node = await _registry.GetAsync(path, watcher, token).ConfigureAwait(false);
            if (node is not null || await _registry.ExistsAsync(path, watcher, token).ConfigureAwait(false) is null)
            {
                return node;
            }

            // created between the two calls: read it again
        }
    }

    private async Task<IReadOnlyList<string>> ChildrenWatchedAsync(string path, ViewParts part, CancellationToken token)
    {
        var watcher = WatcherFor(path, part);
        while (true)
        {
            var children = await _registry.GetChildrenAsync(path, watcher, token).ConfigureAwait(false);
            if (children is not null)
            {
                return children;
            }

            if (await _registry.ExistsAsync(path, watcher, token).ConfigureAwait(false) is null)
            {
                return [];
            }
        }
    }

    private async Task<ImmutableDictionary<string, InstanceRegistration>> ReadInstancesAsync(CancellationToken token)
    {
        var ids = await ChildrenWatchedAsync(_nodes.Instances, ViewParts.Instances, token).ConfigureAwait(false);
        var reads = ids.Select(async id =>
        {
            var path = _nodes.Instance(id);
            var node = await _registry.GetAsync(path, WatcherFor(path, ViewParts.Instances), token).ConfigureAwait(false);
            if (node is null)
            {
                return null; // gone meanwhile; the child watch brings us back
            }

            if (JobNodeData.TryDecodeRegistration(path, node.Data, out var registration, out var error) && registration!.InstanceId == id)
            {
                return registration;
            }

            // Unreadable registration: the instance is live but its server is unknown, so it counts as unavailable.
            JobLog.CorruptNode(_logger, _nodes.JobName, path, error?.Message ?? $"it names instance '{registration?.InstanceId}', not '{id}'");
            return new InstanceRegistration(id, "", Disabled: true);
        });
        var registrations = await Task.WhenAll(reads).ConfigureAwait(false);
        return registrations.OfType<InstanceRegistration>().ToImmutableDictionary(r => r.InstanceId, StringComparer.Ordinal);
    }

    private async Task<ImmutableDictionary<string, bool>> ReadServersAsync(CancellationToken token)
    {
        var ips = await ChildrenWatchedAsync(_nodes.Servers, ViewParts.Servers, token).ConfigureAwait(false);
        var reads = ips.Select(async ip =>
        {
            var path = _nodes.Server(ip);
            var node = await _registry.GetAsync(path, WatcherFor(path, ViewParts.Servers), token).ConfigureAwait(false);
            return (ip, enabled: node is not null && ServerStatus.IsEnabled(node.Data));
        });
        var servers = await Task.WhenAll(reads).ConfigureAwait(false);
        return servers.ToImmutableDictionary(s => s.ip, s => s.enabled, StringComparer.Ordinal);
    }

    /// <summary>Reads the stamp and every item's owner; re-reads when the generation moved meanwhile, so the result is one sharding's.</summary>
    private async Task<ShardingSnapshot> ReadShardingAsync(CancellationToken token)
    {
        var path = _nodes.Sharding;
        while (true)
        {
            var node = await ReadWatchedAsync(path, ViewParts.Sharding, token).ConfigureAwait(false);
            if (node is null)
            {
                return ShardingSnapshot.None;
            }

            if (!JobNodeData.TryDecodeStamp(path, node.Data, out var stamp, out var error))
            {
                JobLog.CorruptNode(_logger, _nodes.JobName, path, error!.Message);
            }

            var owners = await ReadOwnersAsync(token).ConfigureAwait(false);
            var check = await _registry.ExistsAsync(path, cancellationToken: token).ConfigureAwait(false);
            if (check?.Version == node.Stat.Version)
            {
                return new ShardingSnapshot(node.Stat.Version, stamp, owners);
            }
        }
    }

    /// <summary>Every item's owner, read directly (used by the view and by the leader and reconcile).</summary>
    public async Task<ImmutableDictionary<int, string>> ReadOwnersAsync(CancellationToken token)
    {
        var children = await _registry.GetChildrenAsync(_nodes.Sharding, cancellationToken: token).ConfigureAwait(false) ?? [];
        var reads = children
            .Select(name => JobNodes.TryParseItem(name, out var item) ? item : -1)
            .Where(item => item >= 0)
            .Select(async item => (item, node: await _registry.GetAsync(_nodes.ItemInstance(item), cancellationToken: token).ConfigureAwait(false)));
        var owners = await Task.WhenAll(reads).ConfigureAwait(false);
        return owners
            .Where(o => o.node is { Data.Length: > 0 })
            .ToImmutableDictionary(o => o.item, o => Encoding.UTF8.GetString(o.node!.Data));
    }

    private async Task<ImmutableSortedSet<int>> ReadFailoverFlagsAsync(CancellationToken token)
    {
        var names = await ChildrenWatchedAsync(_nodes.FailoverItems, ViewParts.FailoverFlags, token).ConfigureAwait(false);
        return [.. names.Select(name => JobNodes.TryParseItem(name, out var item) ? item : -1).Where(item => item >= 0)];
    }

    private async Task<ImmutableHashSet<int>> ReadDisabledItemsAsync(JobConfig? config, CancellationToken token)
    {
        var count = config?.Shards ?? _localShards; // the local config stands in while the registry's is unreadable
        var reads = Enumerable.Range(0, count).Select(async item => (item, disabled: await ExistsAsync(_nodes.ItemDisabled(item), ViewParts.DisabledItems, token).ConfigureAwait(false)));
        var items = await Task.WhenAll(reads).ConfigureAwait(false);
        return items.Where(i => i.disabled).Select(i => i.item).ToImmutableHashSet();
    }

    private sealed record State(
        JobConfig? Config,
        string? ConfigError,
        ImmutableDictionary<string, InstanceRegistration> Instances,
        ImmutableDictionary<string, bool> Servers,
        bool ReshardingNecessary,
        ShardingSnapshot Sharding,
        ImmutableHashSet<int> DisabledItems,
        bool TriggerRequested,
        ImmutableSortedSet<int> PendingFailovers);
}

/// <summary>The data of <c>servers/{ip}</c>: exactly <c>ENABLED</c> or <c>DISABLED</c>, as ElasticJob writes it.</summary>
internal static class ServerStatus
{
    public const string Enabled = "ENABLED";
    public const string Disabled = "DISABLED";

    public static byte[] Encode(bool enabled) => Encoding.UTF8.GetBytes(enabled ? Enabled : Disabled);

    public static bool IsEnabled(byte[] data) => Encoding.UTF8.GetString(data).Trim() == Enabled;
}
