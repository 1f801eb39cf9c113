using System.Text;
using ShardedJobs.ZooKeeper;

namespace ShardedJobs.Coordination;

/// <summary>Recipes the cluster logic builds on, written once over <see cref="IRegistry"/> so they behave alike on every registry.</summary>
public static class RecipeExtensions
{
    /// <summary>Creates <paramref name="path"/>, first creating any missing parents as empty persistent nodes.</summary>
    /// <exception cref="RegistryException"><see cref="RegistryErrorCode.NodeExists"/> when the node itself exists.</exception>
    public static async Task<string> CreateWithParentsAsync(this IRegistry registry, string path, ReadOnlyMemory<byte> data,
        NodeKind kind = NodeKind.Persistent, CancellationToken cancellationToken = default)
    {
        try
        {
            return await registry.CreateAsync(path, data, kind, cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
        {
            await EnsurePathAsync(registry, ZooKeeperPaths.Parent(path), cancellationToken).ConfigureAwait(false);
            return await registry.CreateAsync(path, data, kind, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Makes sure <paramref name="path"/> and its parents exist (creating empty persistent nodes); concurrent creators are fine.</summary>
    public static async Task EnsurePathAsync(this IRegistry registry, string path, CancellationToken cancellationToken = default)
    {
        if (path == "/" || await registry.ExistsAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false) is not null)
        {
            return;
        }

        var current = "";
        foreach (var segment in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            current += "/" + segment;
            try
            {
                await registry.CreateAsync(current, ReadOnlyMemory<byte>.Empty, NodeKind.Persistent, cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NodeExists)
            {
                // someone else made it; go on down
            }
        }
    }

    /// <summary>Deletes <paramref name="path"/> and everything below it; a missing node (or one deleted meanwhile) is fine.</summary>
    public static async Task DeleteRecursiveAsync(this IRegistry registry, string path, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var children = await registry.GetChildrenAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (children is null)
            {
                return;
            }

            foreach (var child in children)
            {
                await DeleteRecursiveAsync(registry, ZooKeeperPaths.Combine(path, child), cancellationToken).ConfigureAwait(false);
            }

            try
            {
                if (path != "/")
                {
                    await registry.DeleteAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
                }

                return;
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NoNode)
            {
                return;
            }
            catch (RegistryException e) when (e.Code == RegistryErrorCode.NotEmpty)
            {
                // A child appeared meanwhile: go round again.
            }
        }
    }

    /// <summary>The node's data as UTF-8 text, or null when it does not exist.</summary>
    public static async Task<string?> GetStringAsync(this IRegistry registry, string path, CancellationToken cancellationToken = default) =>
        await registry.GetAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false) is { } node ? Encoding.UTF8.GetString(node.Data) : null;
}
