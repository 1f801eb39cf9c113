using ShardedJobs.Coordination;
using ShardedJobs.Scheduling;

namespace ShardedJobs.Cluster;

/// <summary>
/// One job's settings on this instance: the cluster-wide <see cref="JobConfig"/> built from the attribute and the
/// <c>ShardedJobs:Jobs</c> configuration, and the settings that stay local. Validation lives here, once, for start-up
/// (options validation) and for configs read back from the registry.
/// </summary>
internal sealed record JobSettings(JobConfig Config, bool Overwrite, int MaxConcurrency, JobErrorPolicy ErrorPolicy)
{
    /// <summary>The default per-job concurrency: ElasticJob's CPU pool size.</summary>
    public static int DefaultMaxConcurrency => Environment.ProcessorCount * 2;

    /// <summary>The attribute's values with the configuration's overrides on top.</summary>
    public static JobSettings Create(ShardedJobDefinition definition, JobOptions? overrides)
    {
        var config = new JobConfig
        {
            JobName = definition.Name,
            Cron = overrides?.Cron ?? definition.Cron,
            Shards = overrides?.Shards ?? definition.Shards,
            ItemParameters = overrides?.ItemParameters ?? definition.ItemParameters,
            JobParameter = overrides?.JobParameter ?? definition.JobParameter,
            Failover = overrides?.Failover ?? definition.Failover,
            MonitorExecution = overrides?.MonitorExecution ?? definition.MonitorExecution,
            Misfire = overrides?.Misfire ?? definition.Misfire,
            Disabled = overrides?.Disabled ?? definition.Disabled,
            TimeZone = overrides?.TimeZone ?? definition.TimeZone,
            ShardingStrategy = overrides?.ShardingStrategy ?? definition.ShardingStrategy,
            Description = overrides?.Description ?? definition.Description,
            MaxTimeDiffSeconds = overrides?.MaxTimeDiffSeconds ?? definition.MaxTimeDiffSeconds,
            ReconcileIntervalMinutes = overrides?.ReconcileIntervalMinutes ?? definition.ReconcileIntervalMinutes,
        };
        return new JobSettings(config, overrides?.Overwrite ?? definition.Overwrite, overrides?.MaxConcurrency ?? DefaultMaxConcurrency,
            overrides?.ErrorPolicy ?? JobErrorPolicy.Log);
    }

    /// <summary>Every problem of a definition with its overrides, each naming the job, the setting, where it came from and the fix.</summary>
    public static IReadOnlyList<string> Validate(ShardedJobDefinition definition, JobOptions? overrides, ShardingStrategyResolver strategies)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(definition.Name) || definition.Name.Contains('/', StringComparison.Ordinal))
        {
            errors.Add($"Job name '{definition.Name}' (class {definition.JobTypeName}) is not a valid registry node name: use a non-empty name without '/'.");
            return errors;
        }

        var settings = Create(definition, overrides);
        string Source(string key, bool overridden) => overridden
            ? $"configuration key {ShardedJobsOptions.SectionName}:Jobs:{definition.Name}:{key}"
            : $"the [ShardedJob] attribute of {definition.JobTypeName}";

        foreach (var (key, overridden, problem) in Problems(settings.Config, strategies, overrides))
        {
            errors.Add($"Job '{definition.Name}': {problem} (from {Source(key, overridden)}).");
        }

        if (settings.MaxConcurrency < 1)
        {
            errors.Add($"Job '{definition.Name}': MaxConcurrency {settings.MaxConcurrency} must be at least 1 (from {Source("MaxConcurrency", true)}).");
        }

        return errors;
    }

    /// <summary>Problems of a config as read from the registry (an operator may have edited it), without sources.</summary>
    public static IReadOnlyList<string> Validate(JobConfig config, ShardingStrategyResolver strategies) =>
        [.. Problems(config, strategies, null).Select(p => $"{p.Key}: {p.Problem}")];

    private static IEnumerable<(string Key, bool Overridden, string Problem)> Problems(JobConfig config, ShardingStrategyResolver strategies, JobOptions? overrides)
    {
        if (string.IsNullOrWhiteSpace(config.Cron))
        {
            yield return ("Cron", overrides?.Cron is not null, "the cron expression is empty; give a Quartz cron such as '0 0/5 * * * ?'");
        }
        else if (CronSchedule.Validate(config.Cron) is { } cronError)
        {
            yield return ("Cron", overrides?.Cron is not null, cronError);
        }

        if (config.Shards < 1)
        {
            yield return ("Shards", overrides?.Shards is not null, $"shards is {config.Shards}; a job needs at least 1 item");
        }
        else if (!ItemParameters.TryParse(config.ItemParameters, config.Shards, out _, out var parameterError))
        {
            yield return ("ItemParameters", overrides?.ItemParameters is not null, parameterError!);
        }

        if (!TimeZones.TryFind(config.TimeZone, out _, out var zoneError))
        {
            yield return ("TimeZone", overrides?.TimeZone is not null, zoneError!);
        }

        if (!strategies.TryResolve(config.ShardingStrategy, out _, out var strategyError))
        {
            yield return ("ShardingStrategy", overrides?.ShardingStrategy is not null, strategyError);
        }

        if (config.MaxTimeDiffSeconds < -1)
        {
            yield return ("MaxTimeDiffSeconds", overrides?.MaxTimeDiffSeconds is not null, $"MaxTimeDiffSeconds is {config.MaxTimeDiffSeconds}; use -1 (off) or a number of seconds >= 0");
        }
    }
}

/// <summary>A <see cref="JobConfig"/> with everything parsed once: cron in its time zone, item parameters, strategy.</summary>
internal sealed record ResolvedJobConfig(JobConfig Config, CronSchedule Schedule, ItemParameters Parameters, IShardingStrategy Strategy)
{
    /// <summary>Parses a config that <see cref="JobSettings.Validate(JobConfig, ShardingStrategyResolver)"/> accepted; null with the problems otherwise.</summary>
    public static ResolvedJobConfig? TryResolve(JobConfig config, ShardingStrategyResolver strategies, out IReadOnlyList<string> problems)
    {
        problems = JobSettings.Validate(config, strategies);
        if (problems.Count > 0)
        {
            return null;
        }

        return new ResolvedJobConfig(config, CronSchedule.Parse(config.Cron, TimeZones.Find(config.TimeZone)),
            ItemParameters.Parse(config.ItemParameters, config.Shards), strategies.Resolve(config.ShardingStrategy));
    }
}
