using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ShardedJobs.Diagnostics;

namespace ShardedJobs.Execution;

/// <summary>
/// Runs the items of one execution: in parallel up to the job's concurrency (shared by every execution of the job on this
/// instance), each resolving the job from its own DI scope, with listeners around the whole, the job's error policy and
/// <see cref="IJobErrorHandler"/>s for exceptions, and a span, metrics and a trigger-delay measurement per item. Nothing thrown
/// by a job, a listener or a handler escapes: the host never crashes because of a job.
/// </summary>
internal sealed class ItemExecutor
{
    private readonly ShardedJobDefinition _definition;
    private readonly JobErrorPolicy _errorPolicy;
    private readonly IServiceProvider _services;
    private readonly IReadOnlyList<IJobListener> _listeners;
    private readonly IReadOnlyList<IJobErrorHandler> _errorHandlers;
    private readonly ILogger _logger;
    private readonly ShardedJobsMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _concurrency;

    public ItemExecutor(ShardedJobDefinition definition, int maxConcurrency, JobErrorPolicy errorPolicy, IServiceProvider services,
        IReadOnlyList<IJobListener> listeners, IReadOnlyList<IJobErrorHandler> errorHandlers, ILogger logger, ShardedJobsMetrics metrics, TimeProvider time)
    {
        _definition = definition;
        _errorPolicy = errorPolicy;
        _services = services;
        _listeners = listeners;
        _errorHandlers = errorHandlers;
        _logger = logger;
        _metrics = metrics;
        _time = time;
        _concurrency = new SemaphoreSlim(maxConcurrency, maxConcurrency);
    }

    /// <summary>
    /// Runs every item of <paramref name="execution"/>; <paramref name="onItemEnded"/> is awaited as each item ends (before the
    /// after-listeners), so its running marker is released as soon as the item is done rather than with the slowest item.
    /// </summary>
    public async Task<JobExecutionResult> RunAsync(JobExecution execution, Func<ShardResult, Task> onItemEnded, CancellationToken cancellationToken)
    {
        using var activity = ShardedJobsMetrics.ActivitySource.StartActivity("shardedjobs.execution", ActivityKind.Internal);
        activity?.SetTag("shardedjobs.job", execution.JobName);
        activity?.SetTag("shardedjobs.task_id", execution.TaskId);
        activity?.SetTag("shardedjobs.fire_time", execution.FireTime.ToString("O"));
        activity?.SetTag("shardedjobs.source", ShardedJobsMetrics.SourceTag(execution.Source));
        activity?.SetTag("shardedjobs.items", string.Join(",", execution.Shards.Select(s => s.Item)));
        activity?.SetTag("shardedjobs.instance", execution.InstanceId);

        var started = _time.GetTimestamp();
        JobLog.ExecutionStarting(_logger, execution.JobName, execution.TaskId, execution.FireTime, execution.Source, string.Join(",", execution.Shards.Select(s => s.Item)));
        foreach (var listener in _listeners)
        {
            await CallListenerAsync(listener, "before", () => listener.BeforeExecuteAsync(execution, cancellationToken), execution).ConfigureAwait(false);
        }

        // Task.Run: a job that blocks its thread must not hold up the items after it.
        var results = await Task.WhenAll(execution.Shards.Select(shard => Task.Run(() => RunItemAsync(execution, shard, onItemEnded, cancellationToken), CancellationToken.None))).ConfigureAwait(false);
        var result = new JobExecutionResult(results, _time.GetElapsedTime(started));
        activity?.SetStatus(result.Succeeded ? ActivityStatusCode.Ok : ActivityStatusCode.Error);

        foreach (var listener in _listeners)
        {
            await CallListenerAsync(listener, "after", () => listener.AfterExecuteAsync(execution, result, cancellationToken), execution).ConfigureAwait(false);
        }

        JobLog.ExecutionFinished(_logger, execution.JobName, execution.TaskId, results.Count(r => r.Outcome == ShardOutcome.Succeeded), results.Length, result.Duration);
        return result;
    }

    private async Task<ShardResult> RunItemAsync(JobExecution execution, ShardContext shard, Func<ShardResult, Task> onItemEnded, CancellationToken cancellationToken)
    {
        ShardResult result;
        var waited = false;
        try
        {
            await _concurrency.WaitAsync(cancellationToken).ConfigureAwait(false);
            waited = true;
            // The slot may come free from an item the same cancellation just stopped (a shutdown or a fence cancels them all):
            // an item that had not started must not start now, already cancelled, beside the compensation of its fire.
            cancellationToken.ThrowIfCancellationRequested();
            result = await InvokeAsync(execution, shard, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            result = new ShardResult(shard.Item, ShardOutcome.Cancelled, TimeSpan.Zero); // never started
        }
        finally
        {
            if (waited)
            {
                _concurrency.Release();
            }
        }

        _metrics.ItemEnded(execution.JobName, execution.Source, result.Outcome, result.Duration);
        try
        {
            await onItemEnded(result).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            JobLog.UnexpectedError(_logger, execution.JobName, $"recording the end of item {shard.Item}", e);
        }

        return result;
    }

    private async Task<ShardResult> InvokeAsync(JobExecution execution, ShardContext shard, CancellationToken cancellationToken)
    {
        using var activity = ShardedJobsMetrics.ActivitySource.StartActivity("shardedjobs.item", ActivityKind.Internal);
        activity?.SetTag("shardedjobs.job", shard.JobName);
        activity?.SetTag("shardedjobs.item", shard.Item);
        activity?.SetTag("shardedjobs.task_id", shard.TaskId);
        activity?.SetTag("shardedjobs.failover", shard.IsFailover);

        _metrics.ItemStarted(execution.JobName, execution.Source, _time.GetUtcNow() - shard.FireTime);
        var started = _time.GetTimestamp();
        try
        {
            var scope = _services.CreateAsyncScope();
            await using (scope.ConfigureAwait(false))
            {
                await _definition.Invoker(scope.ServiceProvider, shard, cancellationToken).ConfigureAwait(false);
            }

            activity?.SetStatus(ActivityStatusCode.Ok);
            return new ShardResult(shard.Item, ShardOutcome.Succeeded, _time.GetElapsedTime(started));
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            activity?.SetStatus(ActivityStatusCode.Error, "cancelled");
            JobLog.ItemCancelled(_logger, shard.JobName, shard.Item, shard.FireTime, shard.TaskId);
            return new ShardResult(shard.Item, ShardOutcome.Cancelled, _time.GetElapsedTime(started), e);
        }
        catch (Exception e)
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            activity?.AddException(e);
            await HandleErrorAsync(shard, e, cancellationToken).ConfigureAwait(false);
            return new ShardResult(shard.Item, ShardOutcome.Failed, _time.GetElapsedTime(started), e);
        }
    }

    private async Task HandleErrorAsync(ShardContext shard, Exception exception, CancellationToken cancellationToken)
    {
        if (_errorPolicy == JobErrorPolicy.Log)
        {
            JobLog.ItemFailed(_logger, shard.JobName, shard.Item, shard.FireTime, shard.TaskId, exception);
        }
        else
        {
            JobLog.ItemFailedIgnored(_logger, shard.JobName, shard.Item, shard.TaskId, exception.Message);
        }

        foreach (var handler in _errorHandlers)
        {
            try
            {
                await handler.HandleAsync(shard, exception, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                JobLog.ErrorHandlerFailed(_logger, shard.JobName, handler.GetType().FullName ?? "?", e);
            }
        }
    }

    private async Task CallListenerAsync(IJobListener listener, string phase, Func<Task> call, JobExecution execution)
    {
        try
        {
            await call().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            JobLog.ListenerFailed(_logger, execution.JobName, listener.GetType().FullName ?? "?", phase, execution.TaskId, e);
        }
    }
}
