using Microsoft.Extensions.DependencyInjection;
using ShardedJobs.TestSupport.Runtime;

namespace ShardedJobs.TestSupport.Simulation;

/// <summary>Whether the process an instance runs in is alive: a dead one runs no more code of its own, so its jobs write nothing
/// more (a run it left open is closed by its death in the checker).</summary>
public sealed class ProcessLife
{
    private volatile bool _dead;

    public bool Dead => _dead;

    public void Die() => _dead = true;
}

/// <summary>How the simulated jobs behave: deterministic per seed, job, item and fire, so a seed replays the same work.</summary>
public sealed class SimulatedWork(int seed, IReadOnlyList<SimulatedJobSpec> jobs, TimeProvider time)
{
    private readonly Dictionary<string, SimulatedJobSpec> _jobs = jobs.ToDictionary(j => j.Name, StringComparer.Ordinal);

    public TimeProvider Time { get; } = time;

    public SimulatedJobSpec Spec(string job) => _jobs[job];

    public TimeSpan Duration(ShardContext shard)
    {
        var spec = _jobs[shard.JobName];
        var hash = HashCode.Combine(seed, shard.JobName, shard.Item, shard.FireTime.UtcTicks, shard.IsFailover);
        var fraction = (uint)hash / (double)uint.MaxValue;
        return spec.MinDuration + (spec.MaxDuration - spec.MinDuration) * fraction;
    }
}

/// <summary>Records when each execution begins (before its items wait for the job's slots), unless its process is dead.</summary>
public sealed class LaunchRecorder(ExecutionLog log, ProcessLife life, SimulatedWork work) : IJobListener
{
    public Task BeforeExecuteAsync(JobExecution execution, CancellationToken cancellationToken)
    {
        if (!life.Dead)
        {
            log.Launched(execution, work.Time.GetUtcNow());
        }

        return Task.CompletedTask;
    }
}

/// <summary>The simulator's job: records its start and end in the execution log, works for its scripted time, honours or
/// ignores cancellation as its job says, and falls silent when its process dies.</summary>
public sealed class SimulatedJob(ExecutionLog log, ProcessLife life, SimulatedWork work) : IShardedJob
{
    public async Task ExecuteAsync(ShardContext shard, CancellationToken cancellationToken)
    {
        if (life.Dead)
        {
            throw new OperationCanceledException("the process is dead");
        }

        var run = log.Start(shard, work.Time.GetUtcNow());
        try
        {
            var spec = work.Spec(shard.JobName);
            await Task.Delay(work.Duration(shard), work.Time, spec.IgnoresCancellation ? CancellationToken.None : cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (!life.Dead)
            {
                log.End(run, work.Time.GetUtcNow(), "cancelled");
            }

            throw;
        }

        if (life.Dead)
        {
            throw new OperationCanceledException("the process is dead"); // a dead process records nothing: the run stays open
        }

        log.End(run, work.Time.GetUtcNow(), "ok");
    }

    public static ShardedJobDefinition Define(SimulatedJobSpec spec) => new()
    {
        Name = spec.Name,
        JobTypeName = typeof(SimulatedJob).FullName!,
        Cron = spec.Cron,
        Shards = spec.Shards,
        TimeZone = "UTC",
        Failover = spec.Failover,
        MonitorExecution = true,
        Misfire = spec.Misfire,
        Invoker = (services, shard, cancellationToken) => services.GetRequiredService<SimulatedJob>().ExecuteAsync(shard, cancellationToken),
    };
}
