using Microsoft.Extensions.Diagnostics.HealthChecks;
using ShardedJobs.Coordination;

namespace ShardedJobs.Hosting;

/// <summary>The registry connection as a health check (see <see cref="ShardedJobsServiceCollectionExtensions.AddShardedJobsRegistryCheck"/>).</summary>
internal sealed class RegistryHealthCheck(ShardedJobsHost host) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object> { ["instance"] = host.InstanceId ?? "", ["namespace"] = host.Namespace };
        var result = host.Registry switch
        {
            null => new HealthCheckResult(context.Registration.FailureStatus, "ShardedJobs is not running (not started, or stopped).", data: data),
            { State: RegistryState.Connected } registry => HealthCheckResult.Healthy($"Registry connected (session 0x{registry.SessionId:x}).", data),
            { State: RegistryState.Suspended } => HealthCheckResult.Degraded("Registry connection suspended: fires are skipped until it is back; the session may still live.", data: data),
            _ => new HealthCheckResult(context.Registration.FailureStatus, "Registry closed.", data: data),
        };
        return Task.FromResult(result);
    }
}
