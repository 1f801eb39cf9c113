using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using ShardedJobs.Cluster;
using ShardedJobs.Coordination;
using ShardedJobs.Diagnostics;
using ShardedJobs.Scheduling;

namespace ShardedJobs.Execution;

// Registration, configuration and registry changes; reconcile.
internal sealed partial class JobRuntime
{
    // ----- registration and registry changes -----

    /// <summary>The root node names the job's class, as ElasticJob's does: a different class under the same name is a conflict.</summary>
    private async Task ClaimJobRootAsync(CancellationToken token)
    {
        var data = Encoding.UTF8.GetBytes(_definition.JobTypeName);
        try
        {
            await _registry.CreateWithParentsAsync(_nodes.Root, data, cancellationToken: token).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
            var existing = await _registry.GetStringAsync(_nodes.Root, token).ConfigureAwait(false);
            if (string.IsNullOrWhiteSpace(existing))
            {
                await _registry.SetAsync(_nodes.Root, data, cancellationToken: token).ConfigureAwait(false);
            }
            else if (existing != _definition.JobTypeName)
            {
                throw new InvalidOperationException(
                    $"Job '{Name}' conflicts with another job of the same name in namespace '{_context.Options.Namespace}': the registry says it is class " +
                    $"'{existing}', this one is '{_definition.JobTypeName}'. Give one of them another Name, or delete the node '/{_context.Options.Namespace}/{Name}' if the old job is gone.");
            }
        }
    }

    /// <summary>Writes the config when absent (or with Overwrite); otherwise the registry's copy is the cluster's truth.</summary>
    private async Task PublishConfigAsync(CancellationToken token)
    {
        var local = _settings.Config;
        var data = JobNodeData.Encode(local);
        if (_settings.Overwrite)
        {
            try
            {
                await _registry.SetAsync(_nodes.Config, data, cancellationToken: token).ConfigureAwait(false);
                JobLog.ConfigWritten(_logger, Name, "overwritten (Overwrite = true)");
                return;
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
            {
            }
        }

        try
        {
            await _registry.CreateAsync(_nodes.Config, data, cancellationToken: token).ConfigureAwait(false);
            JobLog.ConfigWritten(_logger, Name, "created");
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
            // Adopted in ApplyRegistryConfig once the view has read it.
        }
    }

    private async Task EnsureNodeAsync(string path, byte[] data, CancellationToken token)
    {
        try
        {
            await _registry.CreateWithParentsAsync(path, data, cancellationToken: token).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
            // Keep what is there: an operator's DISABLED survives restarts; a progress record keeps its evidence.
        }
    }

    /// <summary>Adopts the registry's config when it is valid; otherwise keeps the current one and says why, once per problem.</summary>
    private void ApplyRegistryConfig()
    {
        var previous = _resolved;
        string? problem = null;
        var registryConfig = _view.Config;
        if (registryConfig is null)
        {
            problem = _view.ConfigError is { } error ? $"its config node is unreadable: {error}" : null;
        }
        else if (registryConfig != previous.Config)
        {
            var resolved = ResolvedJobConfig.TryResolve(registryConfig, _context.Strategies, out var problems);
            if (resolved is null)
            {
                problem = $"the registry's config is invalid: {string.Join("; ", problems)}";
            }
            else
            {
                _resolved = resolved;
                if (registryConfig != _settings.Config && previous.Config == _settings.Config)
                {
                    JobLog.ConfigAdopted(_logger, Name);
                }

                if (resolved.Config.Cron != previous.Config.Cron || resolved.Config.TimeZone != previous.Config.TimeZone)
                {
                    JobLog.Rescheduled(_logger, Name, resolved.Config.Cron, resolved.Config.TimeZone ?? "local");
                    _trigger.Reschedule();
                }
            }
        }

        if (problem is not null && problem != _lastConfigProblem)
        {
            JobLog.RegistryConfigRejected(_logger, Name, _nodes.Config, problem, previous.Config.Cron);
        }

        _lastConfigProblem = problem;
    }

    private void OnViewChanged(ViewParts changed)
    {
        if (_stopped == 1)
        {
            return;
        }

        if (changed.HasFlag(ViewParts.Config))
        {
            ApplyRegistryConfig();
        }

        _sharding.OnViewChanged(changed);
        if ((changed & (ViewParts.Sharding | ViewParts.ReshardingFlag)) != 0 && !_view.ReshardingNecessary && HasCatchUpsToRun())
        {
            Track(RunCatchUpsAsync()); // a skipped fire waited for the leader's sharding
        }

        if ((changed & (ViewParts.Instances | ViewParts.Servers)) != 0)
        {
            Track(UpdateElectionAsync());
            var instances = _view.Instances.Keys.ToHashSet(StringComparer.Ordinal);
            var departed = _knownInstances.Except(instances).ToList();
            _knownInstances = instances;
            if (departed.Count > 0 && FailoverActive)
            {
                departed.Where(d => d != _instanceId).ToList().ForEach(d => Track(HandleDepartureAsync(d)));
            }

            if (departed.Count > 0 && _election.IsLeader)
            {
                // Also with failover (whose departure handling keeps the markers and progress records, its evidence): the
                // server records and trigger requests of the departed go now. Left to the periodic reconcile, one that met a
                // registry outage kept them for another interval, after the faults had stopped.
                if (!FailoverActive)
                {
                    JobLog.InstancesLeft(_logger, Name, string.Join(", ", departed)); // with failover, each departure's handling says it
                }

                Track(ClearLeftoversAsync());
            }

            if (_registered && !_view.Servers.ContainsKey(_context.ServerIp) && _registry.State == RegistryState.Connected)
            {
                // The leader removed our server record between our start's write and our registration (it looked unused).
                Track(RestoreServerAsync());
            }

            // Only once registered: before that, the registration under our id is a predecessor's, and restoring it when its
            // session ends (or rewriting it) would hide that departure (nobody would flag what the predecessor left).
            if (_registered && !_view.Instances.ContainsKey(_instanceId) && _registry.State == RegistryState.Connected)
            {
                Track(RestoreRegistrationAsync());
            }
            else if (_registered && _view.Instances.TryGetValue(_instanceId, out var mine) && mine.Disabled != IsDisabledLocally())
            {
                Track(KeepRegistrationAsync(mine));
            }
        }

        if (changed.HasFlag(ViewParts.Trigger) && _view.TriggerRequested)
        {
            Track(HandleTriggerRequestAsync());
        }

        if ((changed & (ViewParts.FailoverFlags | ViewParts.Instances | ViewParts.Servers | ViewParts.Config)) != 0)
        {
            Track(ClaimAndCompensateAsync()); // notification: items wait, or this instance may claim again
        }
    }

    private bool IsDisabledLocally() => Volatile.Read(ref _disabledLocally);

    /// <summary>An operator changed this instance's registration (its <c>disabled</c> line): keep the new data for future sessions.</summary>
    private async Task KeepRegistrationAsync(InstanceRegistration current)
    {
        Volatile.Write(ref _disabledLocally, current.Disabled);
        try
        {
            if (await _registry.ExistsAsync(_nodes.Instance(_instanceId), cancellationToken: _stopping.Token).ConfigureAwait(false) is { } stat
                && stat.EphemeralOwner == _registry.SessionId)
            {
                await _registry.SetAsync(_nodes.Instance(_instanceId), JobNodeData.Encode(current), stat.Version, _stopping.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            JobLog.RegistryCallFailed(_logger, Name, "keeping this instance's registration", e.Message);
        }
    }

    /// <summary>
    /// This instance's registration: <c>instances/{id}</c>, ephemeral. Deliberately not a kept ephemeral (which the registry
    /// re-creates on a new session before anyone is told): on a new session it must come back in one multi with the progress
    /// record (<see cref="ReclaimProgressAsync"/>). Registered without a progress record — the old session's departure handled,
    /// the new record not yet written — an instance that dies would leave a departure that looks handled already, and the fires
    /// it owned while registered would be lost.
    /// </summary>
    private async Task RegisterAsync(CancellationToken token)
    {
        await KeptEphemerals.CreateOrAdoptAsync(_registry, _nodes.Instance(_instanceId), RegistrationData(), token).ConfigureAwait(false);
        Interlocked.Exchange(ref _registrationSession, _registry.SessionId);
    }

    /// <summary>
    /// The start's registration, in one multi with the progress record (created, or — a predecessor's kept as evidence — its
    /// version bumped): an instance is never seen with a progress record and no registration while it starts, which a fire of
    /// the others would take for a departure to handle (FlagUnrunAsync), deleting the record this instance has just written.
    /// </summary>
    private async Task RegisterWithProgressAsync(CancellationToken token)
    {
        var progressPath = _nodes.Progress(_instanceId);
        var path = _nodes.Instance(_instanceId);
        for (var attempt = 1; ; attempt++)
        {
            var node = await _registry.GetAsync(progressPath, cancellationToken: token).ConfigureAwait(false);
            RegistryOp progress = node is null
                ? new RegistryOp.Create(progressPath, JobNodeData.Encode(InstanceProgress.Registered(_time.GetUtcNow())))
                : new RegistryOp.SetData(progressPath, node.Data, node.Stat.Version);
            try
            {
                await _registry.MultiAsync([progress, new RegistryOp.Create(path, RegistrationData(), NodeKind.Ephemeral)], token).ConfigureAwait(false);
                Interlocked.Exchange(ref _registrationSession, _registry.SessionId);
                return;
            }
            catch (RegistryMultiException e) when (e.Path == path && e.Code == RegistryErrorCode.NodeExists)
            {
                var stat = await _registry.ExistsAsync(path, cancellationToken: token).ConfigureAwait(false);
                if (stat is null || stat.EphemeralOwner != _registry.SessionId)
                {
                    throw new RegistryException(RegistryErrorCode.NodeExists, path,
                        $"The ephemeral node '{path}' is owned by another session (0x{stat?.EphemeralOwner ?? 0:x}); is another process using the same instance id?");
                }

                Interlocked.Exchange(ref _registrationSession, _registry.SessionId); // an earlier try was applied, its reply lost
                return;
            }
            catch (RegistryMultiException e) when (e.Path == progressPath && attempt < 5)
            {
                // the progress record changed between the read and the multi: read it again
            }
        }
    }

    private byte[] RegistrationData() => JobNodeData.Encode(new InstanceRegistration(_instanceId, _context.ServerIp, IsDisabledLocally(), _firesAfter));

    /// <summary>Our ephemeral node vanished while our session lives (someone deleted it): put it back rather than stop.</summary>
    private async Task RestoreRegistrationAsync()
    {
        try
        {
            if (_registry.SessionId != Interlocked.Read(ref _registrationSession))
            {
                return; // a new session: its recovery registers again, together with the progress record (ReclaimProgressAsync)
            }

            // The view can lag behind our own registration (its child watch has not fired yet): only a node that is really
            // gone is put back.
            if (await _registry.ExistsAsync(_nodes.Instance(_instanceId), cancellationToken: _stopping.Token).ConfigureAwait(false) is { } stat
                && stat.EphemeralOwner == _registry.SessionId)
            {
                return;
            }

            await RegisterAsync(_stopping.Token).ConfigureAwait(false);
            JobLog.RegistrationRestored(_logger, Name, _instanceId);
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            // A lost session's recovery registers again; anything else is retried at the next change.
        }
    }

    /// <summary>Contend for leadership only while this instance may run items (ElasticJob: a disabled server abdicates).</summary>
    private async Task UpdateElectionAsync()
    {
        try
        {
            await _electionGate.WaitAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }

        try
        {
            var shouldLead = _stopped == 0 && _registered && _view.IsAvailable(_instanceId); // not on a predecessor's registration
            if (shouldLead && !_participating)
            {
                _participating = true;
                await _election.StartAsync(_stopping.Token).ConfigureAwait(false);
            }
            else if (!shouldLead && _participating)
            {
                _participating = false;
                await _election.ResignAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            // LeaderElection retries on its own at the next watch or session event.
        }
        finally
        {
            _electionGate.Release();
        }
    }

    private async Task HandleTriggerRequestAsync()
    {
        try
        {
            await _registry.DeleteAsync(_nodes.Trigger(_instanceId), cancellationToken: _stopping.Token).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
        {
            return; // handled already
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            return; // the node stays; the next view change retries
        }

        JobLog.ManualTrigger(_logger, Name, _instanceId);
        await TriggerNowAsync().ConfigureAwait(false);
    }

    // ----- reconcile -----

    /// <summary>
    /// The leader's periodic self-check: an item whose owner is not live (or missing) flags re-sharding; running markers and
    /// progress records of instances that are gone are removed (without failover nobody compensates them; they must not look
    /// like running work). Everything repaired is logged.
    /// </summary>
    internal async Task ReconcileAsync()
    {
        if (!_election.IsLeader || _stopped == 1)
        {
            return;
        }

        var token = _stopping.Token;
        try
        {
            var config = _resolved.Config;
            var owners = await _view.ReadOwnersAsync(token).ConfigureAwait(false);
            var live = await _registry.GetChildrenAsync(_nodes.Instances, cancellationToken: token).ConfigureAwait(false) ?? [];
            var orphans = Enumerable.Range(0, config.Shards).Where(i => !owners.TryGetValue(i, out var owner) || !live.Contains(owner)).ToList();
            if (orphans.Count > 0 && await _registry.ExistsAsync(_nodes.ShardingNecessary, cancellationToken: token).ConfigureAwait(false) is null)
            {
                await _sharding.FlagAsync($"reconcile found item(s) {string.Join(",", orphans)} without a live owner", token).ConfigureAwait(false);
                JobLog.Reconciled(_logger, Name, $"item(s) {string.Join(",", orphans)} had no live owner; re-sharding flagged");
            }

            if (FailoverActive)
            {
                await _failover.ReconcileAsync(token).ConfigureAwait(false);
            }
            else if (!config.Failover)
            {
                await _failover.DropPendingAsync(token).ConfigureAwait(false);
            }

            await ClearLeftoversOfDeadInstancesAsync(live, config, token).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code != RegistryErrorCode.NodeExists)
        {
            JobLog.RegistryCallFailed(_logger, Name, "reconciling", e.Message);
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
        }
    }

    /// <summary>The leader, when instances leave (and when it becomes the leader: departures seen while it was not, or while
    /// nobody led): what they left behind goes at once (see <see cref="ClearLeftoversOfDeadInstancesAsync"/>).</summary>
    private async Task ClearLeftoversAsync()
    {
        try
        {
            var live = await _registry.GetChildrenAsync(_nodes.Instances, cancellationToken: _stopping.Token).ConfigureAwait(false) ?? [];
            await ClearLeftoversOfDeadInstancesAsync(live, _resolved.Config, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            // Reconcile and the next fire (which takes stale markers over) cover it.
        }
    }

    /// <summary>
    /// What instances that are gone leave behind and nobody else removes: server records of IPs no live instance uses (container
    /// IPs churn; an operator's DISABLED is kept), trigger requests for them, and — when failover is not active, so no
    /// departure handling deletes them — their running markers and progress records. The registry must not grow with every
    /// restart.
    /// </summary>
    private async Task ClearLeftoversOfDeadInstancesAsync(IReadOnlyList<string> live, JobConfig config, CancellationToken token)
    {
        var usedIps = _view.Instances.Values.Where(i => live.Contains(i.InstanceId)).Select(i => i.ServerIp).Append(_context.ServerIp).ToHashSet(StringComparer.Ordinal);
        foreach (var ip in await _registry.GetChildrenAsync(_nodes.Servers, cancellationToken: token).ConfigureAwait(false) ?? [])
        {
            if (usedIps.Contains(ip) || await _registry.GetAsync(_nodes.Server(ip), cancellationToken: token).ConfigureAwait(false) is not { } server
                || !ServerStatus.IsEnabled(server.Data))
            {
                continue;
            }

            await DeleteIfUnchangedAsync(_nodes.Server(ip), server.Stat.Version, token).ConfigureAwait(false);
        }

        foreach (var instance in (await _registry.GetChildrenAsync(_nodes.TriggerRoot, cancellationToken: token).ConfigureAwait(false) ?? []).Where(i => !live.Contains(i)))
        {
            await DeleteIfUnchangedAsync(_nodes.Trigger(instance), -1, token).ConfigureAwait(false);
        }

        if (FailoverActive)
        {
            return; // markers and progress records are the failover protocol's evidence
        }

        var markers = await Task.WhenAll(Enumerable.Range(0, config.Shards).Select(async item =>
            (item, node: await _registry.GetAsync(_nodes.ItemRunning(item), cancellationToken: token).ConfigureAwait(false)))).ConfigureAwait(false);
        foreach (var (item, node) in markers)
        {
            if (node is null)
            {
                continue;
            }

            var path = _nodes.ItemRunning(item);
            var owner = JobNodeData.TryDecodeItemMarker(path, node.Data, out var marker, out _) ? marker!.Instance : null;
            if (owner is null || !live.Contains(owner))
            {
                try
                {
                    await _registry.DeleteAsync(path, node.Stat.Version, token).ConfigureAwait(false);
                    JobLog.Reconciled(_logger, Name, $"removed the running marker of item {item} left by {owner ?? "(unreadable)"}, which is no longer live");
                }
                catch (RegistryException e) when (e.Code is RegistryErrorCode.NoNode or RegistryErrorCode.BadVersion)
                {
                }
            }
        }

        var progress = await _registry.GetChildrenAsync(_nodes.ProgressRoot, cancellationToken: token).ConfigureAwait(false) ?? [];
        foreach (var instance in progress.Where(p => !live.Contains(p)))
        {
            await DeleteIfUnchangedAsync(_nodes.Progress(instance), -1, token).ConfigureAwait(false);
        }
    }

    private async Task DeleteIfUnchangedAsync(string path, int version, CancellationToken token)
    {
        try
        {
            await _registry.DeleteAsync(path, version, token).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code is RegistryErrorCode.NoNode or RegistryErrorCode.BadVersion or RegistryErrorCode.NotEmpty)
        {
        }
    }

    private async Task RestoreServerAsync()
    {
        try
        {
            await EnsureNodeAsync(_nodes.Server(_context.ServerIp), ServerStatus.Encode(enabled: true), _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RegistryException or OperationCanceledException)
        {
            // retried at the next change of the servers
        }
    }
}
