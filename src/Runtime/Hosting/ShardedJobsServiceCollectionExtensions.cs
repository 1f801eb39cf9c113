using System.ComponentModel;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using ShardedJobs.Cluster;

namespace ShardedJobs.Hosting;

/// <summary>
/// The runtime half of <c>AddShardedJobs()</c>: the generated half registers the job classes and passes their definitions here.
/// Call it yourself only for hand-written <see cref="ShardedJobDefinition"/>s.
/// </summary>
public static class ShardedJobsServiceCollectionExtensions
{
    /// <summary>
    /// Registers the jobs and the runtime: options bound from the <c>ShardedJobs</c> configuration section (then
    /// <paramref name="configure"/>) and validated when the host starts, the registry (ZooKeeper, or the embedded one without a
    /// connection string), the hosted service that runs the jobs, <see cref="IJobOperator"/> and <see cref="TimeProvider"/>.
    /// Calling it again adds more definitions (jobs of another assembly); a job name may appear once.
    /// </summary>
    [EditorBrowsable(EditorBrowsableState.Advanced)]
    public static IServiceCollection AddShardedJobsRuntime(this IServiceCollection services, IEnumerable<ShardedJobDefinition> definitions,
        Action<ShardedJobsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(definitions);

        var catalog = services.FirstOrDefault(d => d.ServiceType == typeof(ShardedJobCatalog))?.ImplementationInstance as ShardedJobCatalog;
        if (catalog is null)
        {
            catalog = new ShardedJobCatalog();
            services.AddSingleton(catalog);
            services.AddOptions<ShardedJobsOptions>()
                .Configure<IServiceProvider>((options, provider) => provider.GetService<IConfiguration>()?.GetSection(ShardedJobsOptions.SectionName).Bind(options))
                .ValidateOnStart();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ShardedJobsOptions>, ShardedJobsOptionsValidator>());
            services.TryAddSingleton(TimeProvider.System);
            services.TryAddSingleton<ShardedJobsHost>();
            services.AddSingleton<IHostedService>(provider => provider.GetRequiredService<ShardedJobsHost>());
            services.TryAddSingleton<IJobOperator, JobOperator>();
        }

        catalog.Add(definitions);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        return services;
    }

    /// <summary>Adds a health check of the registry connection: healthy when connected, degraded while the connection is
    /// suspended (the session may still live), unhealthy before start, after stop, or when closed.</summary>
    public static IHealthChecksBuilder AddShardedJobsRegistryCheck(this IHealthChecksBuilder builder, string name = "shardedjobs-registry",
        HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Add(new HealthCheckRegistration(name, provider => new RegistryHealthCheck(provider.GetRequiredService<ShardedJobsHost>()), failureStatus, tags));
    }
}

/// <summary>Every job definition added to the service collection, by name.</summary>
internal sealed class ShardedJobCatalog
{
    private readonly List<ShardedJobDefinition> _definitions = [];

    public IReadOnlyList<ShardedJobDefinition> Definitions => _definitions;

    public void Add(IEnumerable<ShardedJobDefinition> definitions)
    {
        foreach (var definition in definitions)
        {
            ArgumentNullException.ThrowIfNull(definition);
            if (_definitions.Any(d => d.Name == definition.Name))
            {
                var other = _definitions.First(d => d.Name == definition.Name);
                throw new ArgumentException(
                    $"Two jobs are named '{definition.Name}' ({other.JobTypeName} and {definition.JobTypeName}); job names must be unique. Set a distinct Name in one [ShardedJob] attribute.",
                    nameof(definitions));
            }

            _definitions.Add(definition);
        }
    }
}
