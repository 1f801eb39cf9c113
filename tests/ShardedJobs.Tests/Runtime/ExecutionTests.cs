using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ShardedJobs.Coordination;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.Tests.Runtime;

/// <summary>One execution: DI scopes, concurrency, the error policy, listeners, cancellation and the bounded shutdown.</summary>
public sealed class ExecutionTests
{
    private const string Every10s = "0/10 * * * * ?";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_throwing_item_is_logged_handed_to_error_handlers_released_and_run_again_at_its_next_fire()
    {
        await using var cluster = new TestCluster();
        cluster.Script.Failure = shard => shard.Item == 2 ? new InvalidOperationException("boom on item 2") : null;
        var handler = new CollectingErrorHandler();
        var node = await cluster.StartNodeAsync("A", [RecordingJob.Define("flaky", Every10s, 3)], services: s => s.AddSingleton<IJobErrorHandler>(handler));

        var first = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(first);
        await cluster.Log.WaitForEndedAsync(first, 3);
        await TestCluster.WaitUntilAsync(async () => await cluster.Observer.ExistsAsync(new JobNodes("flaky").ItemRunning(2), cancellationToken: Ct) is null, "item 2's marker is released");

        var error = Assert.Single(node.Logs.GetSnapshot(), r => r.Level == LogLevel.Error);
        Assert.Contains("item 2", error.Message, StringComparison.Ordinal);
        Assert.Equal("boom on item 2", error.Exception?.Message);
        var (shard, exception) = Assert.Single(handler.Errors);
        Assert.Equal(2, shard.Item);
        Assert.Equal("boom on item 2", exception.Message);

        var second = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(second);
        await cluster.Log.WaitForEndedAsync(second, 3);
        Assert.Equal("failed", Assert.Single(cluster.Log.For(second), r => r.Item == 2).Outcome);
    }

    [Fact]
    public async Task With_the_ignore_policy_a_failure_is_not_logged_as_an_error()
    {
        await using var cluster = new TestCluster();
        cluster.Script.Failure = _ => new InvalidOperationException("expected");
        var node = await cluster.StartNodeAsync("A", [RecordingJob.Define("quiet", Every10s, 1)],
            configure: o => o.Jobs["quiet"] = new JobOptions { ErrorPolicy = JobErrorPolicy.Ignore });

        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 1);
        await TestCluster.WaitUntilAsync(() => node.Logs.GetSnapshot().Any(r => r.Message.Contains("ErrorPolicy = Ignore", StringComparison.Ordinal)), "the debug line");
        Assert.DoesNotContain(node.Logs.GetSnapshot(), r => r.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task Each_item_resolves_the_job_from_its_own_DI_scope()
    {
        await using var cluster = new TestCluster();
        var scopes = new System.Collections.Concurrent.ConcurrentBag<(int Item, Guid Scope)>();
        var job = RecordingJob.Define("scoped", Every10s, 4) with
        {
            Invoker = (services, shard, ct) =>
            {
                scopes.Add((shard.Item, services.GetRequiredService<ScopeProbe>().Id));
                return services.GetRequiredService<RecordingJob>().ExecuteAsync(shard, ct);
            },
        };
        await cluster.StartNodeAsync("A", [job], services: s => s.AddScoped<ScopeProbe>());

        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 4);
        Assert.Equal(4, scopes.Select(s => s.Scope).Distinct().Count());
    }

    [Fact]
    public async Task MaxConcurrency_bounds_how_many_items_of_the_job_run_at_once_on_an_instance()
    {
        await using var cluster = new TestCluster();
        cluster.Script.Duration = _ => TimeSpan.FromSeconds(2);
        await cluster.StartNodeAsync("A", [RecordingJob.Define("bounded", "0 * * * * ?", 5)],
            configure: o => o.Jobs["bounded"] = new JobOptions { MaxConcurrency = 2 });

        var fire = cluster.NextFire("0 * * * * ?");
        await cluster.AdvanceToAsync(fire + TimeSpan.FromSeconds(7));
        await cluster.Log.WaitForEndedAsync(fire, 5);
        var runs = cluster.Log.For(fire);
        var most = runs.Max(r => runs.Count(o => o.Started <= r.Started && o.Ended > r.Started));
        Assert.Equal(2, most);
    }

    [Fact]
    public async Task Listeners_run_around_each_execution_and_a_throwing_listener_stops_nothing()
    {
        await using var cluster = new TestCluster();
        var listener = new RecordingListener();
        var node = await cluster.StartNodeAsync("A", [RecordingJob.Define("heard", Every10s, 2)],
            services: s => s.AddSingleton<IJobListener>(new ThrowingListener()).AddSingleton<IJobListener>(listener));

        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 2);
        await TestCluster.WaitUntilAsync(() => listener.Events.Count == 2, "before and after");

        Assert.Equal(["before heard 0,1", "after heard 0,1 ok"], listener.Events);
        Assert.Equal(2, node.Logs.GetSnapshot().Count(r => r.Message.Contains("listener", StringComparison.Ordinal) && r.Message.Contains(nameof(ThrowingListener), StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Shutdown_cancels_running_items_and_without_failover_releases_their_markers()
    {
        await using var cluster = new TestCluster();
        cluster.Script.Duration = _ => TimeSpan.FromSeconds(30);
        var node = await cluster.StartNodeAsync("A", [RecordingJob.Define("long", Every10s, 2)]);
        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));

        await node.StopAsync();
        Assert.All(cluster.Log.For(fire), r => Assert.Equal("cancelled", r.Outcome));
        var nodes = new JobNodes("long");
        Assert.Null(await cluster.Observer.ExistsAsync(nodes.ItemRunning(0), cancellationToken: Ct));
        Assert.Null(await cluster.Observer.ExistsAsync(nodes.Instance("A"), cancellationToken: Ct));
    }

    [Fact]
    public async Task With_failover_an_item_cut_short_by_shutdown_keeps_its_marker_as_evidence_for_compensation()
    {
        await using var cluster = new TestCluster();
        cluster.Script.Duration = _ => TimeSpan.FromSeconds(30);
        var node = await cluster.StartNodeAsync("A", [RecordingJob.Define("long", Every10s, 1) with { Failover = true }]);
        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire + TimeSpan.FromSeconds(2));

        await node.StopAsync();
        var marker = await cluster.Observer.GetAsync(new JobNodes("long").ItemRunning(0), cancellationToken: Ct);
        Assert.NotNull(marker);
        Assert.Equal(fire, JobNodeData.DecodeItemMarker("m", marker.Data).FireTime);
    }

    [Fact]
    public async Task Shutdown_waits_for_an_item_that_ignores_cancellation_only_up_to_the_shutdown_timeout()
    {
        await using var cluster = new TestCluster();
        cluster.Script.Duration = _ => TimeSpan.FromMinutes(10);
        cluster.Script.HonourCancellation = false;
        var node = await cluster.StartNodeAsync("A", [RecordingJob.Define("stubborn", Every10s, 1)], configure: o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire + TimeSpan.FromSeconds(1));

        var stopping = node.StopAsync();
        await cluster.SettleAsync();
        Assert.False(stopping.IsCompleted);
        await cluster.AdvanceAsync(TimeSpan.FromSeconds(6));
        await stopping.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Contains(node.Logs.GetSnapshot(), r => r.Level == LogLevel.Warning && r.Message.Contains("abandoned", StringComparison.Ordinal));
        Assert.Null(cluster.Log.For(fire)[0].Outcome); // it is still running: nothing pretended it finished
    }

    [Fact]
    public async Task A_dataflow_job_fetches_and_processes_until_fetch_returns_nothing_when_streaming()
    {
        await using var cluster = new TestCluster();
        var processed = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var job = RecordingJob.Define("flow", Every10s, 1) with
        {
            Kind = ShardedJobKind.Dataflow,
            Streaming = true,
            Invoker = (services, shard, ct) => DataflowJobRunner.RunAsync(new CountdownFlow(3, processed), shard, streaming: true, ct),
        };
        await cluster.StartNodeAsync("A", [job]);
        await cluster.AdvanceToAsync(cluster.NextFire(Every10s));
        await TestCluster.WaitUntilAsync(() => processed.Count == 3, "three batches");
        Assert.Equal(["batch 3", "batch 2", "batch 1"], processed);
    }

    private sealed class ScopeProbe
    {
        public Guid Id { get; } = Guid.NewGuid();
    }

    private sealed class CountdownFlow(int batches, System.Collections.Concurrent.ConcurrentQueue<string> processed) : IDataflowJob<string>
    {
        private int _left = batches;

        public Task<IReadOnlyList<string>> FetchAsync(ShardContext shard, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<string>>(_left > 0 ? [$"batch {_left--}"] : []);

        public Task ProcessAsync(ShardContext shard, IReadOnlyList<string> data, CancellationToken cancellationToken)
        {
            foreach (var item in data)
            {
                processed.Enqueue(item);
            }

            return Task.CompletedTask;
        }
    }

    private sealed class CollectingErrorHandler : IJobErrorHandler
    {
        public System.Collections.Concurrent.ConcurrentQueue<(ShardContext Shard, Exception Exception)> Errors { get; } = new();

        public Task HandleAsync(ShardContext shard, Exception exception, CancellationToken cancellationToken)
        {
            Errors.Enqueue((shard, exception));
            return Task.CompletedTask;
        }
    }

    private sealed class RecordingListener : IJobListener
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Events { get; } = new();

        public Task BeforeExecuteAsync(JobExecution execution, CancellationToken cancellationToken)
        {
            Events.Enqueue($"before {execution.JobName} {string.Join(",", execution.Shards.Select(s => s.Item))}");
            return Task.CompletedTask;
        }

        public Task AfterExecuteAsync(JobExecution execution, JobExecutionResult result, CancellationToken cancellationToken)
        {
            Events.Enqueue($"after {execution.JobName} {string.Join(",", result.Shards.Select(s => s.Item))} {(result.Succeeded ? "ok" : "failed")}");
            return Task.CompletedTask;
        }
    }

    private sealed class ThrowingListener : IJobListener
    {
        public Task BeforeExecuteAsync(JobExecution execution, CancellationToken cancellationToken) => throw new InvalidOperationException("listener before");

        public Task AfterExecuteAsync(JobExecution execution, JobExecutionResult result, CancellationToken cancellationToken) => throw new InvalidOperationException("listener after");
    }
}
