using ShardedJobs.Coordination;

namespace ShardedJobs.TestSupport.History;

/// <summary>What the registry holds after a run, for rule (v).</summary>
public sealed record RegistryAuditReport(int NodeCount, IReadOnlyList<Violation> Violations)
{
    public bool Ok => Violations.Count == 0;
}

/// <summary>
/// Rule (v) of the history checker: once the faults stop and the cluster settles (no item running), the registry holds no
/// running marker, failover flag, claim, misfire flag, progress, trigger, registration or server record of an instance that is
/// gone, and no node beyond the jobs' items — so the number of nodes does not grow with the number of faults. Reads through
/// any <see cref="IRegistry"/> (the embedded one, or a ZooKeeper session).
/// </summary>
public static class RegistryAudit
{
    /// <param name="live">The instances that are running now.</param>
    /// <param name="liveServers">The server IPs of those instances.</param>
    public static async Task<RegistryAuditReport> CheckAsync(IRegistry registry, IEnumerable<JobUnderTest> jobs, IReadOnlySet<string> live, IReadOnlySet<string> liveServers,
        CancellationToken cancellationToken = default)
    {
        var violations = new List<Violation>();
        var count = 0;
        foreach (var job in jobs)
        {
            var nodes = new JobNodes(job.Job);
            count += await CountAsync(registry, nodes.Root, cancellationToken).ConfigureAwait(false);

            async Task<IReadOnlyList<string>> Children(string path) => await registry.GetChildrenAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false) ?? [];

            void Leftover(string what, string path) => violations.Add(new Violation("registry-leftover", $"{what}: {path}"));

            foreach (var instance in (await Children(nodes.Instances).ConfigureAwait(false)).Where(i => !live.Contains(i)))
            {
                Leftover("registration of an instance that is gone", nodes.Instance(instance));
            }

            foreach (var instance in (await Children(nodes.ProgressRoot).ConfigureAwait(false)).Where(i => !live.Contains(i)))
            {
                Leftover("progress record of an instance that is gone", nodes.Progress(instance));
            }

            foreach (var instance in (await Children(nodes.TriggerRoot).ConfigureAwait(false)).Where(i => !live.Contains(i)))
            {
                Leftover("trigger request for an instance that is gone", nodes.Trigger(instance));
            }

            foreach (var server in await Children(nodes.Servers).ConfigureAwait(false))
            {
                var status = await registry.GetStringAsync(nodes.Server(server), cancellationToken).ConfigureAwait(false);
                if (!liveServers.Contains(server) && status != "DISABLED")
                {
                    Leftover("server record of an IP no instance uses", nodes.Server(server));
                }
            }

            foreach (var flag in await Children(nodes.FailoverItems).ConfigureAwait(false))
            {
                Leftover("failover flag nobody compensated", nodes.FailoverItems + "/" + flag);
            }

            foreach (var name in await Children(nodes.Sharding).ConfigureAwait(false))
            {
                if (!JobNodes.TryParseItem(name, out var item) || item >= job.Shards)
                {
                    Leftover($"item node beyond the job's {job.Shards} item(s)", nodes.Sharding + "/" + name);
                    continue;
                }

                foreach (var (path, what) in new[] { (nodes.ItemRunning(item), "running marker"), (nodes.ItemFailover(item), "failover claim"), (nodes.ItemMisfire(item), "misfire flag") })
                {
                    if (await registry.ExistsAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false) is not null)
                    {
                        var data = await registry.GetStringAsync(path, cancellationToken).ConfigureAwait(false);
                        Leftover($"{what} while nothing runs ({data})", path);
                    }
                }
            }
        }

        return new RegistryAuditReport(count, violations);
    }

    private static async Task<int> CountAsync(IRegistry registry, string path, CancellationToken cancellationToken)
    {
        var children = await registry.GetChildrenAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (children is null)
        {
            return 0;
        }

        var total = 1;
        foreach (var child in children)
        {
            total += await CountAsync(registry, path + "/" + child, cancellationToken).ConfigureAwait(false);
        }

        return total;
    }
}
