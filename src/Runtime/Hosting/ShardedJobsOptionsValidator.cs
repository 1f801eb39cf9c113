using Microsoft.Extensions.Options;
using ShardedJobs.Cluster;
using ShardedJobs.ZooKeeper;

namespace ShardedJobs.Hosting;

/// <summary>
/// Validates the options and every job's effective settings when the host starts (ValidateOnStart): a bad cron, shards &lt; 1,
/// malformed item parameters, an unknown time zone or strategy, a bad connection string — each a message naming the job and
/// the key, all reported together.
/// </summary>
internal sealed class ShardedJobsOptionsValidator(ShardedJobCatalog catalog, IEnumerable<IShardingStrategy> customStrategies) : IValidateOptions<ShardedJobsOptions>
{
    public ValidateOptionsResult Validate(string? name, ShardedJobsOptions options)
    {
        var errors = new List<string>();
        ShardingStrategyResolver? strategies = null;
        try
        {
            strategies = new ShardingStrategyResolver(customStrategies);
        }
        catch (ArgumentException e)
        {
            errors.Add($"Custom sharding strategies: {e.Message}");
        }

        if (options.ZooKeeper is { ConnectionString: { Length: > 0 } connectionString } zooKeeper)
        {
            try
            {
                ZooKeeperConnectionString.Parse(connectionString);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                errors.Add($"{ShardedJobsOptions.SectionName}:ZooKeeper:ConnectionString is invalid: {e.Message}");
            }

            if (zooKeeper.SessionTimeout <= TimeSpan.Zero)
            {
                errors.Add($"{ShardedJobsOptions.SectionName}:ZooKeeper:SessionTimeout {zooKeeper.SessionTimeout} must be positive (e.g. 00:00:10).");
            }

            if (zooKeeper.ConnectionTimeout <= TimeSpan.Zero)
            {
                errors.Add($"{ShardedJobsOptions.SectionName}:ZooKeeper:ConnectionTimeout {zooKeeper.ConnectionTimeout} must be positive (e.g. 00:00:05).");
            }

            if (zooKeeper.Digest is { } digest && !digest.Contains(':', StringComparison.Ordinal))
            {
                errors.Add($"{ShardedJobsOptions.SectionName}:ZooKeeper:Digest must be 'user:password'.");
            }
        }

        if (string.IsNullOrWhiteSpace(options.Namespace) || options.Namespace.Contains('/', StringComparison.Ordinal))
        {
            errors.Add($"{ShardedJobsOptions.SectionName}:Namespace '{options.Namespace}' must be one non-empty node name without '/', e.g. 'shardedjobs'.");
        }

        if (options.InstanceId is { } instanceId && (instanceId.Length == 0 || instanceId.Contains('/', StringComparison.Ordinal)))
        {
            errors.Add($"{ShardedJobsOptions.SectionName}:InstanceId '{instanceId}' must be non-empty and contain no '/'; leave it unset for the default {{ip}}@-@{{pid}}.");
        }

        if (options.ServerIp is { } serverIp && (serverIp.Length == 0 || serverIp.Contains('/', StringComparison.Ordinal)))
        {
            errors.Add($"{ShardedJobsOptions.SectionName}:ServerIp '{serverIp}' must be non-empty and contain no '/'.");
        }

        if (options.ShutdownTimeout < TimeSpan.Zero)
        {
            errors.Add($"{ShardedJobsOptions.SectionName}:ShutdownTimeout {options.ShutdownTimeout} must not be negative.");
        }

        if (options.SelfFencingFraction is <= 0 or >= 1 || double.IsNaN(options.SelfFencingFraction))
        {
            errors.Add($"{ShardedJobsOptions.SectionName}:SelfFencingFraction {options.SelfFencingFraction} must be between 0 and 1 (exclusive), e.g. 0.5: running items are cancelled after that fraction of the session timeout without a connection.");
        }

        if (options.ShardingWaitTimeout <= TimeSpan.Zero)
        {
            errors.Add($"{ShardedJobsOptions.SectionName}:ShardingWaitTimeout {options.ShardingWaitTimeout} must be positive.");
        }

        var known = catalog.Definitions.Select(d => d.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var unknown in options.Jobs.Keys.Where(k => !known.Contains(k)).Order(StringComparer.Ordinal))
        {
            errors.Add($"{ShardedJobsOptions.SectionName}:Jobs:{unknown} configures a job that does not exist; known jobs: {(known.Count == 0 ? "(none)" : string.Join(", ", known.Order(StringComparer.Ordinal)))}. Fix the name (job names are case-sensitive).");
        }

        if (strategies is not null)
        {
            foreach (var definition in catalog.Definitions.OrderBy(d => d.Name, StringComparer.Ordinal))
            {
                errors.AddRange(JobSettings.Validate(definition, options.Jobs.GetValueOrDefault(definition.Name), strategies));
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
