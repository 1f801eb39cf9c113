using System.Text;

namespace ShardedJobs.Coordination;

/// <summary>
/// Leader election on one ephemeral node (ElasticJob's <c>leader/election/instance</c>): whoever creates it leads, and holds
/// the lead for as long as its session lives. Every contender watches the node; when it disappears (the leader resigned, shut
/// down, or its session ended) each live contender tries again and exactly one wins, because creating a node is atomic.
/// No latch node is needed.
/// </summary>
public sealed class LeaderElection : IAsyncDisposable
{
    private readonly IRegistry _registry;
    private readonly string _path;
    private readonly string _candidateId;
    private readonly byte[] _candidateData;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _attempt = new(1, 1);
    private volatile string? _leader;
    private volatile bool _participating;
    private int _disposed;

    public LeaderElection(IRegistry registry, string path, string candidateId)
    {
        _registry = registry;
        _path = path;
        _candidateId = candidateId;
        _candidateData = Encoding.UTF8.GetBytes(candidateId);
        _registry.SessionChanged += OnSessionChanged;
    }

    /// <summary>Raised (on the registry's event loop) whenever the known leader changes; null while there is none.</summary>
    public event Action<string?>? LeaderChanged;

    /// <summary>The leader as last seen, or null.</summary>
    public string? Leader => _leader;

    public bool IsLeader => _leader == _candidateId;

    /// <summary>Joins the election (tries to lead now, and again whenever the leader node disappears) and returns the leader.</summary>
    public async Task<string?> StartAsync(CancellationToken cancellationToken = default)
    {
        _participating = true;
        await TryLeadAsync(cancellationToken).ConfigureAwait(false);
        return _leader;
    }

    /// <summary>Leaves the election; if leading, deletes the leader node so another contender takes over at once.</summary>
    public async Task ResignAsync(CancellationToken cancellationToken = default)
    {
        _participating = false;
        if (!IsLeader)
        {
            return;
        }

        try
        {
            var stat = await _registry.ExistsAsync(_path, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (stat is not null && stat.EphemeralOwner == _registry.SessionId)
            {
                await _registry.DeleteAsync(_path, stat.Version, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (RegistryException e) when (e.Code is RegistryErrorCode.NoNode or RegistryErrorCode.BadVersion)
        {
            // already gone or replaced
        }

        SetLeader(null);
    }

    public async ValueTask DisposeAsync()
    {
        _registry.SessionChanged -= OnSessionChanged;
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // The token source is not disposed: a watch or session event may still read its token after this.
            await _stop.CancelAsync().ConfigureAwait(false);
        }
    }

    private async Task TryLeadAsync(CancellationToken cancellationToken)
    {
        await _attempt.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                if (_participating)
                {
                    try
                    {
                        await _registry.CreateWithParentsAsync(_path, _candidateData, NodeKind.Ephemeral, cancellationToken).ConfigureAwait(false);
                    }
                    catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
                    {
                        // someone leads; find out who, below
                    }
                }

                // Read and watch in one call: if the node vanished in between, GetAsync says so and we try again.
                var node = await _registry.GetAsync(_path, OnLeaderNodeChanged, cancellationToken).ConfigureAwait(false);
                if (node is null)
                {
                    if (!_participating)
                    {
                        // Not contending: still learn about the next leader.
                        await _registry.ExistsAsync(_path, OnLeaderNodeChanged, cancellationToken).ConfigureAwait(false);
                        SetLeader(null);
                        return;
                    }

                    continue;
                }

                SetLeader(Encoding.UTF8.GetString(node.Data));
                return;
            }
        }
        finally
        {
            _attempt.Release();
        }
    }

    private void OnLeaderNodeChanged(RegistryWatchEvent change)
    {
        if (change.Type == RegistryEventType.SessionEnded || _stop.IsCancellationRequested)
        {
            return; // the new session re-arms through OnSessionChanged
        }

        _ = RetryAsync();
    }

    private void OnSessionChanged(RegistrySessionEvent change)
    {
        switch (change.Kind)
        {
            case RegistrySessionEventKind.SessionLost:
                SetLeader(null); // our ephemeral, if we led, is gone
                break;
            case RegistrySessionEventKind.NewSession:
            case RegistrySessionEventKind.Reconnected:
                _ = RetryAsync();
                break;
        }
    }

    private async Task RetryAsync()
    {
        try
        {
            await TryLeadAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException or ObjectDisposedException)
        {
            // Transient: the next session event or watch retries; leadership is never claimed without the node.
        }
    }

    private void SetLeader(string? leader)
    {
        if (_leader == leader)
        {
            return;
        }

        _leader = leader;
        LeaderChanged?.Invoke(leader);
    }
}
