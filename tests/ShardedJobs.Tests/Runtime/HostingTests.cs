using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ShardedJobs.Coordination;
using ShardedJobs.Hosting;
using ShardedJobs.TestSupport.Runtime;
using Xunit;

namespace ShardedJobs.Tests.Runtime;

/// <summary>The runtime half of AddShardedJobs: options binding and validation at start, registry choice, config precedence,
/// health check, metrics and traces.</summary>
public sealed class HostingTests
{
    private const string Every10s = "0/10 * * * * ?";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("Cron", "0 0 25 * * ?", "hour")]
    [InlineData("Cron", "0 0 12 L * ?", "'L'")]
    [InlineData("Shards", "0", "at least 1 item")]
    [InlineData("ItemParameters", "0=a,0=b", "0=a,0=b")]
    [InlineData("TimeZone", "Mars/Olympus_Mons", "Mars/Olympus_Mons")]
    [InlineData("ShardingStrategy", "Nope", "Nope")]
    public async Task A_bad_job_setting_in_configuration_fails_the_start_with_a_message_naming_job_key_and_value(string key, string value, string mentioned)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [$"ShardedJobs:Jobs:orders:{key}"] = value }).Build();
        using var host = BuildHost(configuration, RecordingJob.Define("orders", Every10s, 3));

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        var message = Assert.Single(error.Failures);
        Assert.Contains("Job 'orders'", message, StringComparison.Ordinal);
        Assert.Contains($"ShardedJobs:Jobs:orders:{key}", message, StringComparison.Ordinal);
        Assert.Contains(mentioned, message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_problem_is_reported_at_once_including_the_connection_string_and_unknown_job_keys()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ShardedJobs:ZooKeeper:ConnectionString"] = "127.0.0.1:notaport",
            ["ShardedJobs:Namespace"] = "a/b",
            ["ShardedJobs:Jobs:ordres:Shards"] = "2",
        }).Build();
        using var host = BuildHost(configuration, RecordingJob.Define("orders", "not a cron", 3));

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        Assert.Equal(4, error.Failures.Count());
        Assert.Contains(error.Failures, f => f.Contains("ConnectionString is invalid", StringComparison.Ordinal) && f.Contains("'127.0.0.1:notaport'", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("Namespace 'a/b'", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("ShardedJobs:Jobs:ordres", StringComparison.Ordinal) && f.Contains("known jobs: orders", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("Job 'orders'", StringComparison.Ordinal) && f.Contains("[ShardedJob] attribute", StringComparison.Ordinal));
    }

    [Fact]
    public void Two_jobs_with_one_name_are_refused_when_registered()
    {
        var services = new ServiceCollection();
        var error = Assert.Throws<ArgumentException>(() => services.AddShardedJobsRuntime([RecordingJob.Define("twin", Every10s, 1), RecordingJob.Define("twin", Every10s, 2)]));
        Assert.Contains("'twin'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_connection_string_the_jobs_run_on_the_embedded_registry_with_a_warning_and_configuration_overrides_apply()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ShardedJobs:Jobs:orders:Cron"] = "0/5 * * * * ?",
            ["ShardedJobs:Jobs:orders:Shards"] = "2",
            ["ShardedJobs:Jobs:orders:JobParameter"] = "from-config",
            ["ShardedJobs:InstanceId"] = "solo",
        }).Build();
        var log = new ExecutionLog();
        var collector = new Microsoft.Extensions.Logging.Testing.FakeLogCollector();
        using var host = BuildHost(configuration, RecordingJob.Define("orders", "0 0 * * * ?", 3) with { JobParameter = "from-attribute" }, log, collector);
        await host.StartAsync(Ct);
        try
        {
            await log.WaitUntilAsync(runs => runs.Count(r => r.Outcome is not null) >= 2, "a real-time fire every 5 s", TimeSpan.FromSeconds(12));
            var run = log.Runs[0];
            Assert.Equal("solo", run.Instance);
            Assert.Equal("from-config", run.JobParameter);
            Assert.Equal(2, run.TotalCount);
            Assert.Contains(collector.GetSnapshot(), r => r.Level == LogLevel.Warning && r.Message.Contains("embedded in-process registry", StringComparison.Ordinal));
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }

    [Fact]
    public async Task The_registry_s_config_wins_over_the_local_one_unless_Overwrite_is_set()
    {
        await using var cluster = new TestCluster();
        var first = await cluster.StartNodeAsync("A", [RecordingJob.Define("cfg", Every10s, 3)]);
        // A second instance whose attribute says otherwise adopts the registry's copy...
        var adopting = await cluster.StartNodeAsync("B", [RecordingJob.Define("cfg", "0 0 * * * ?", 5)]);
        Assert.Equal(Every10s, adopting.Job("cfg").Config.Cron);
        Assert.Equal(3, adopting.Job("cfg").Config.Shards);
        Assert.Contains(adopting.Logs.GetSnapshot(), r => r.Message.Contains("using the registry's", StringComparison.Ordinal));

        // ...and one with Overwrite replaces it for the whole cluster.
        var overwriting = await cluster.StartNodeAsync("C", [RecordingJob.Define("cfg", "0/30 * * * * ?", 4) with { Overwrite = true }]);
        await TestCluster.WaitUntilAsync(() => cluster.Nodes.All(n => n.Job("cfg").Config.Shards == 4), "every instance runs the overwritten config");
        Assert.Equal("0/30 * * * * ?", first.Job("cfg").Config.Cron);
        _ = overwriting;
    }

    [Fact]
    public async Task A_corrupt_config_node_is_reported_with_its_path_and_the_local_config_keeps_the_job_running()
    {
        await using var cluster = new TestCluster();
        var nodes = new JobNodes("corrupt");
        await cluster.Observer.CreateWithParentsAsync(nodes.Config, "cron: 0 0 * * * ?"u8.ToArray(), cancellationToken: Ct); // YAML, not our JSON
        var node = await cluster.StartNodeAsync("A", [RecordingJob.Define("corrupt", Every10s, 1)]);

        var error = Assert.Single(node.Logs.GetSnapshot(), r => r.Level == LogLevel.Error);
        Assert.Contains("/corrupt/config", error.Message, StringComparison.Ordinal);
        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 1);

        // Repairing the node is picked up without a restart.
        await cluster.Observer.SetAsync(nodes.Config, JobNodeData.Encode(new JobConfig { JobName = "corrupt", Cron = "0/20 * * * * ?" }), cancellationToken: Ct);
        await TestCluster.WaitUntilAsync(() => node.Job("corrupt").Config.Cron == "0/20 * * * * ?", "the repaired config is adopted");
    }

    [Fact]
    public async Task A_job_whose_name_is_taken_by_another_class_refuses_to_start_and_says_how_to_fix_it()
    {
        await using var cluster = new TestCluster();
        await cluster.Observer.CreateWithParentsAsync("/taken", "Other.Namespace.OtherJob"u8.ToArray(), cancellationToken: Ct);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => cluster.StartNodeAsync("A", [RecordingJob.Define("taken", Every10s, 1)]));
        Assert.Contains("Other.Namespace.OtherJob", error.Message, StringComparison.Ordinal);
        Assert.Contains("another Name", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_instance_whose_clock_is_off_by_more_than_MaxTimeDiffSeconds_skips_its_fires_with_an_error_naming_the_difference()
    {
        await using var cluster = new TestCluster();
        var skewed = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(TestCluster.Epoch + TimeSpan.FromSeconds(10));
        var node = await TestNode.StartAsync(new TestNodeSetup
        {
            InstanceId = "skewed",
            Jobs = [RecordingJob.Define("timed", Every10s, 1) with { MaxTimeDiffSeconds = 5 }],
            Time = skewed,
            Log = cluster.Log,
            Script = cluster.Script,
            Embedded = cluster.Server,
        });
        await using (node)
        {
            for (var i = 0; i < 60; i++)
            {
                skewed.Advance(TimeSpan.FromMilliseconds(250));
                cluster.Time.Advance(TimeSpan.FromMilliseconds(250));
                await cluster.SettleAsync();
            }

            Assert.Empty(cluster.Log.Runs);
            var error = node.Logs.GetSnapshot().First(r => r.Level == LogLevel.Error);
            Assert.Contains("MaxTimeDiffSeconds = 5", error.Message, StringComparison.Ordinal);
            Assert.Contains("00:00:10", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_health_check_follows_the_registry_connection()
    {
        await using var cluster = new TestCluster();
        var node = await cluster.StartNodeAsync("A", [RecordingJob.Define("health", Every10s, 1)], services: s => s.AddHealthChecks().AddShardedJobsRegistryCheck());
        var health = node.Services.GetRequiredService<HealthCheckService>();
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync(Ct)).Status);
        node.Embedded.Suspend();
        Assert.Equal(HealthStatus.Degraded, (await health.CheckHealthAsync(Ct)).Status);
        node.Embedded.Resume();
        await node.StopAsync();
        Assert.Equal(HealthStatus.Unhealthy, (await health.CheckHealthAsync(Ct)).Status);
    }

    [Fact]
    public async Task Executions_are_measured_and_traced()
    {
        await using var cluster = new TestCluster();
        cluster.Script.Failure = shard => shard.Item == 1 ? new InvalidOperationException("x") : null;
        var activities = new System.Collections.Concurrent.ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "ShardedJobs",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activities.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        var node = await cluster.StartNodeAsync("A", [RecordingJob.Define("measured", Every10s, 2)], services: s => s.AddMetrics());
        var meters = node.Services.GetRequiredService<IMeterFactory>();
        using var executions = new MetricCollector<long>(meters, "ShardedJobs", "shardedjobs.item.executions");
        using var failures = new MetricCollector<long>(meters, "ShardedJobs", "shardedjobs.item.failures");
        using var delay = new MetricCollector<double>(meters, "ShardedJobs", "shardedjobs.trigger.delay");

        var fire = cluster.NextFire(Every10s);
        await cluster.AdvanceToAsync(fire);
        await cluster.Log.WaitForEndedAsync(fire, 2);
        await TestCluster.WaitUntilAsync(() => executions.GetMeasurementSnapshot().Count == 2, "two measured executions");

        Assert.Equal(["failed", "succeeded"], executions.GetMeasurementSnapshot().Select(m => (string)m.Tags["outcome"]!).Order());
        Assert.All(executions.GetMeasurementSnapshot(), m => Assert.Equal("measured", m.Tags["job"]));
        Assert.Equal(1, Assert.Single(failures.GetMeasurementSnapshot()).Value);
        Assert.Equal(2, delay.GetMeasurementSnapshot().Count);
        await TestCluster.WaitUntilAsync(() => activities.Any(a => a.OperationName == "shardedjobs.execution" && (string?)a.GetTagItem("shardedjobs.job") == "measured"), "the execution span");
        var items = activities.Where(a => a.OperationName == "shardedjobs.item" && (string?)a.GetTagItem("shardedjobs.job") == "measured").ToList();
        Assert.Equal(2, items.Count);
        Assert.Contains(items, a => a.Status == ActivityStatusCode.Error);
    }

    private static IHost BuildHost(IConfiguration configuration, ShardedJobDefinition job, ExecutionLog? log = null,
        Microsoft.Extensions.Logging.Testing.FakeLogCollector? collector = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddConfiguration(configuration);
        builder.Services.AddSingleton(log ?? new ExecutionLog());
        builder.Services.AddSingleton(new JobScript(TimeProvider.System));
        builder.Services.AddScoped<RecordingJob>();
        builder.Logging.AddProvider(new Microsoft.Extensions.Logging.Testing.FakeLoggerProvider(collector ?? new()));
        builder.Services.AddShardedJobsRuntime([job]);
        return builder.Build();
    }
}
