using System.Text;
using ShardedJobs.Cluster;
using ShardedJobs.Coordination;

namespace ShardedJobs.Hosting;

/// <summary><see cref="IJobOperator"/> over the registry of this host: every cluster-wide change is a registry write the other
/// instances see through their watches.</summary>
internal sealed class JobOperator(ShardedJobsHost host) : IJobOperator
{
    public IReadOnlyList<string> JobNames => host.JobNames;

    public async Task TriggerAsync(string jobName, CancellationToken cancellationToken = default)
    {
        var (job, registry) = Resolve(jobName);
        var live = await registry.GetChildrenAsync(job.Nodes.Instances, cancellationToken: cancellationToken).ConfigureAwait(false) ?? [];
        foreach (var instance in live)
        {
            try
            {
                await registry.CreateWithParentsAsync(job.Nodes.Trigger(instance), ReadOnlyMemory<byte>.Empty, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
            {
                // already asked; one request is one fire
            }
        }
    }

    public Task DisableJobAsync(string jobName, CancellationToken cancellationToken = default) => SetJobDisabledAsync(jobName, true, cancellationToken);

    public Task EnableJobAsync(string jobName, CancellationToken cancellationToken = default) => SetJobDisabledAsync(jobName, false, cancellationToken);

    public Task DisableServerAsync(string jobName, string serverIp, CancellationToken cancellationToken = default) => SetServerAsync(jobName, serverIp, false, cancellationToken);

    public Task EnableServerAsync(string jobName, string serverIp, CancellationToken cancellationToken = default) => SetServerAsync(jobName, serverIp, true, cancellationToken);

    public Task DisableInstanceAsync(string jobName, string instanceId, CancellationToken cancellationToken = default) => SetInstanceAsync(jobName, instanceId, true, cancellationToken);

    public Task EnableInstanceAsync(string jobName, string instanceId, CancellationToken cancellationToken = default) => SetInstanceAsync(jobName, instanceId, false, cancellationToken);

    public async Task DisableItemAsync(string jobName, int item, CancellationToken cancellationToken = default)
    {
        var (job, registry) = Resolve(jobName);
        CheckItem(job, item);
        try
        {
            await registry.CreateWithParentsAsync(job.Nodes.ItemDisabled(item), ReadOnlyMemory<byte>.Empty, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
        }
    }

    public async Task EnableItemAsync(string jobName, int item, CancellationToken cancellationToken = default)
    {
        var (job, registry) = Resolve(jobName);
        CheckItem(job, item);
        try
        {
            await registry.DeleteAsync(job.Nodes.ItemDisabled(item), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
        {
        }
    }

    public Task ShutdownAsync(string jobName, CancellationToken cancellationToken = default) => Resolve(jobName).Job.StopAsync(cancellationToken);

    public async Task<JobStatus> GetStatusAsync(string jobName, CancellationToken cancellationToken = default)
    {
        var (job, registry) = Resolve(jobName);
        var nodes = job.Nodes;
        var configNode = await registry.GetAsync(nodes.Config, cancellationToken: cancellationToken).ConfigureAwait(false);
        var config = configNode is not null && JobNodeData.TryDecodeConfig(nodes.Config, configNode.Data, out var read, out _) ? read! : job.Config;
        var leader = await registry.GetStringAsync(nodes.LeaderInstance, cancellationToken).ConfigureAwait(false);

        var servers = await Task.WhenAll((await registry.GetChildrenAsync(nodes.Servers, cancellationToken: cancellationToken).ConfigureAwait(false) ?? [])
            .Select(async ip => new ServerState(ip, await registry.GetAsync(nodes.Server(ip), cancellationToken: cancellationToken).ConfigureAwait(false) is { } node && ServerStatus.IsEnabled(node.Data))))
            .ConfigureAwait(false);

        var instances = (await Task.WhenAll((await registry.GetChildrenAsync(nodes.Instances, cancellationToken: cancellationToken).ConfigureAwait(false) ?? [])
            .Select(async id =>
            {
                var node = await registry.GetAsync(nodes.Instance(id), cancellationToken: cancellationToken).ConfigureAwait(false);
                if (node is null)
                {
                    return null;
                }

                var registration = JobNodeData.TryDecodeRegistration(nodes.Instance(id), node.Data, out var r, out _) ? r! : new InstanceRegistration(id, "?", true);
                return new InstanceState(id, registration.ServerIp, registration.Disabled, id == leader, id == host.InstanceId);
            })).ConfigureAwait(false)).OfType<InstanceState>().ToList();

        var parameters = ItemParameters.TryParse(config.ItemParameters, Math.Max(1, config.Shards), out var parsed, out _) ? parsed : null;
        var items = await Task.WhenAll(Enumerable.Range(0, config.Shards).Select(async item =>
        {
            var children = await registry.GetChildrenAsync(nodes.Item(item), cancellationToken: cancellationToken).ConfigureAwait(false) ?? [];
            var owner = children.Contains("instance") ? await registry.GetStringAsync(nodes.ItemInstance(item), cancellationToken).ConfigureAwait(false) : null;
            var running = children.Contains("running") ? await ReadAsync<ItemMarker>(registry, nodes.ItemRunning(item), JobNodeData.TryDecodeItemMarker, cancellationToken).ConfigureAwait(false) : null;
            var claim = children.Contains("failover") ? await ReadAsync<ItemMarker>(registry, nodes.ItemFailover(item), JobNodeData.TryDecodeItemMarker, cancellationToken).ConfigureAwait(false) : null;
            var pending = await ReadAsync<FailoverFlag>(registry, nodes.FailoverItem(item), JobNodeData.TryDecodeFailoverFlag, cancellationToken).ConfigureAwait(false);
            return new ItemState(item, owner, parameters?[item], children.Contains("disabled"), running, children.Contains("misfire"), claim, pending);
        })).ConfigureAwait(false);

        var necessary = await registry.ExistsAsync(nodes.ShardingNecessary, cancellationToken: cancellationToken).ConfigureAwait(false) is not null;
        return new JobStatus(jobName, config.Cron, config.Shards, config.Disabled, leader, necessary,
            [.. servers.OrderBy(s => s.ServerIp, StringComparer.Ordinal)], [.. instances.OrderBy(i => i.InstanceId, StringComparer.Ordinal)], items,
            job.NextFireTime, job.IsShutDown);
    }

    private delegate bool TryDecode<T>(string path, byte[] data, out T? value, out RegistryDataException? error);

    private static async Task<T?> ReadAsync<T>(IRegistry registry, string path, TryDecode<T> decode, CancellationToken cancellationToken)
        where T : class =>
        await registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false) is { } node && decode(path, node.Data, out var value, out _) ? value : null;

    private async Task SetJobDisabledAsync(string jobName, bool disabled, CancellationToken cancellationToken)
    {
        var (job, registry) = Resolve(jobName);
        var path = job.Nodes.Config;
        await UpdateAsync(registry, path, data => JobNodeData.DecodeConfig(path, data), config => config.Disabled == disabled ? null : config with { Disabled = disabled },
            JobNodeData.Encode, () => new InvalidOperationException($"Job '{jobName}' has no config node '{path}' in the registry."), cancellationToken).ConfigureAwait(false);
    }

    private async Task SetServerAsync(string jobName, string serverIp, bool enabled, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serverIp);
        var (job, registry) = Resolve(jobName);
        try
        {
            await registry.SetAsync(job.Nodes.Server(serverIp), ServerStatus.Encode(enabled), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
        {
            throw new ArgumentException($"Job '{jobName}' has never run on server '{serverIp}' (no node '{job.Nodes.Server(serverIp)}').", nameof(serverIp), e);
        }
    }

    private async Task SetInstanceAsync(string jobName, string instanceId, bool disabled, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(instanceId);
        var (job, registry) = Resolve(jobName);
        var path = job.Nodes.Instance(instanceId);
        await UpdateAsync(registry, path, data => JobNodeData.DecodeRegistration(path, data),
            registration => registration.Disabled == disabled ? null : registration with { Disabled = disabled }, JobNodeData.Encode,
            () => new ArgumentException($"Instance '{instanceId}' is not live for job '{jobName}' (no node '{path}').", nameof(instanceId)), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Read, change, write at the read version; again when someone else wrote meanwhile. A null change means nothing to do.</summary>
    private static async Task UpdateAsync<T>(IRegistry registry, string path, Func<byte[], T> decode, Func<T, T?> change, Func<T, byte[]> encode,
        Func<Exception> missing, CancellationToken cancellationToken)
        where T : class
    {
        while (true)
        {
            var node = await registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false) ?? throw missing();
            if (change(decode(node.Data)) is not { } changed)
            {
                return;
            }

            try
            {
                await registry.SetAsync(path, encode(changed), node.Stat.Version, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.BadVersion)
            {
                // changed meanwhile: apply ours to the new version
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
            {
                throw missing();
            }
        }
    }

    private static void CheckItem(Execution.JobRuntime job, int item)
    {
        if (item < 0 || item >= job.Config.Shards)
        {
            throw new ArgumentOutOfRangeException(nameof(item), item, $"Job '{job.Name}' has items 0..{job.Config.Shards - 1}.");
        }
    }

    private (Execution.JobRuntime Job, IRegistry Registry) Resolve(string jobName)
    {
        var job = host.GetJob(jobName);
        return (job, host.Registry ?? throw new InvalidOperationException("ShardedJobs has stopped."));
    }
}
