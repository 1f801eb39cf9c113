using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ShardedJobs.Coordination;

namespace Quickstart;

/// <summary>One ShardedJobs instance of the demo: a generic host with the two jobs, as any application would build it.</summary>
public static class DemoHost
{
    /// <param name="args">The command line (every node of one process gets the same).</param>
    /// <param name="node">The node, for its console lines and its crash.</param>
    /// <param name="session">The node's own session on the shared embedded registry, in the multi-node demo.</param>
    public static IHost Build(string[] args, DemoNode node, ExecutionLogFile log, DemoTimeline? timeline = null,
        InMemoryRegistry? session = null, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var builder = Host.CreateApplicationBuilder(DemoArguments.ToConfiguration(args));
        if (overrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(overrides);
        }

        // The demo prints its own lines; of the framework's logs, warnings and errors (a crashed node logs nothing more).
        builder.Logging.AddFilter((_, level) => level >= LogLevel.Warning && !node.IsCrashed)
            .AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.TimestampFormat = "HH:mm:ss.fff  ";
            });
        builder.Services.Configure<DemoSettings>(builder.Configuration.GetSection("Demo"));
        builder.Services.AddSingleton(node).AddSingleton(log).AddSingleton<DemoOutput>();
        if (timeline is not null)
        {
            builder.Services.AddSingleton(timeline);
        }

        if (session is not null)
        {
            // Several hosts in one process: Ctrl+C is the demo's, not each host's; the registry session is the node's own.
            builder.Services.AddSingleton<IHostLifetime, DemoNodeLifetime>();
            builder.Services.AddSingleton(session);
        }

        builder.Services.AddShardedJobs(); // generated for this assembly from its [ShardedJob] classes
        return builder.Build();
    }

    private sealed class DemoNodeLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
