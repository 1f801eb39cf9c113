namespace ShardedJobs.Coordination;

/// <summary>
/// The ephemeral nodes a registry re-creates after its session is lost (an instance's registration, say). Shared by both
/// registries so that "re-register after expiry" means the same thing on each.
/// </summary>
internal sealed class KeptEphemerals
{
    private readonly Dictionary<string, byte[]> _nodes = new(StringComparer.Ordinal);

    public void Keep(string path, ReadOnlyMemory<byte> data)
    {
        lock (_nodes)
        {
            _nodes[path] = data.ToArray();
        }
    }

    public void Forget(string path)
    {
        lock (_nodes)
        {
            _nodes.Remove(path);
        }
    }

    public List<KeyValuePair<string, byte[]>> Snapshot()
    {
        lock (_nodes)
        {
            return [.. _nodes.OrderBy(n => n.Key, StringComparer.Ordinal)];
        }
    }

    /// <summary>Creates (or adopts, if this session already owns it) an ephemeral node and keeps it.</summary>
    public async Task KeepAsync(IRegistry registry, string path, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await CreateOrAdoptAsync(registry, path, data, cancellationToken).ConfigureAwait(false);
        Keep(path, data);
    }

    /// <summary>
    /// Creates an ephemeral node, or adopts it (with <paramref name="data"/>) when this session already owns it — a retry whose
    /// first create was applied without its reply. Owned by another session, it fails with <see cref="RegistryErrorCode.NodeExists"/>.
    /// </summary>
    public static async Task CreateOrAdoptAsync(IRegistry registry, string path, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        try
        {
            await registry.CreateAsync(path, data, NodeKind.Ephemeral, cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
        {
            var existing = await registry.ExistsAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (existing is null || existing.EphemeralOwner != registry.SessionId)
            {
                throw new RegistryException(RegistryErrorCode.NodeExists, path,
                    $"The ephemeral node '{path}' is owned by another session (0x{existing?.EphemeralOwner ?? 0:x}); is another process using the same instance id?");
            }

            await registry.SetAsync(path, data, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Re-creates every kept node on a new session. A node still owned by the dead session (not yet reaped) is replaced.</summary>
    public async Task RestoreAsync(IRegistry registry, Action<string, Exception> onFailure, CancellationToken cancellationToken)
    {
        foreach (var (path, data) in Snapshot())
        {
            try
            {
                await RecipeExtensions.CreateWithParentsAsync(registry, path, data, NodeKind.Ephemeral, cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
            {
                try
                {
                    var stat = await registry.ExistsAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
                    if (stat is not null && stat.EphemeralOwner != registry.SessionId)
                    {
                        await registry.DeleteAsync(path, stat.Version, cancellationToken).ConfigureAwait(false);
                        await registry.CreateAsync(path, data, NodeKind.Ephemeral, cancellationToken).ConfigureAwait(false);
                    }
                }
                catch (RegistryException inner)
                {
                    onFailure(path, inner);
                }
            }
            catch (RegistryException e)
            {
                onFailure(path, e);
            }
        }
    }
}
