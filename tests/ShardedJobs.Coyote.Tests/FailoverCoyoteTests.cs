using System.Diagnostics;
using Microsoft.Coyote;
using Microsoft.Coyote.Rewriting;
using Microsoft.Coyote.SystematicTesting;
using ShardedJobs.Cluster;
using Xunit;

namespace ShardedJobs.Coyote.Tests;

/// <summary>
/// Runs <see cref="FailoverScenario"/> under Coyote's systematic testing: every iteration explores another interleaving of the
/// three instances' tasks. The build rewrites this assembly and ShardedJobs.dll (see the project file); without that Coyote
/// controls nothing. Environment, for investigating: COYOTE_TIMEOUT (the time budget in seconds, default 30), COYOTE_ITERATIONS (a fixed
/// number of iterations instead),
/// COYOTE_SEED (the exploration's seed), COYOTE_REPLAY (a trace file to replay; a found bug's trace is written to
/// failover-coyote.trace.json in the temp folder), COYOTE_VERBOSE=1.
/// </summary>
public sealed class FailoverCoyoteTests(ITestOutputHelper output)
{
    [Fact]
    public void The_assemblies_under_test_are_rewritten()
    {
        Assert.True(RewritingEngine.IsAssemblyRewritten(typeof(FailoverCoordinator).Assembly), "ShardedJobs.dll is not rewritten: the CoyoteRewrite build target did not run");
        Assert.True(RewritingEngine.IsAssemblyRewritten(typeof(FailoverScenario).Assembly), "the test assembly is not rewritten: the CoyoteRewrite build target did not run");
    }

    [Fact]
    public void Concurrent_departure_handling_flags_each_item_once_and_each_is_claimed_by_exactly_one_instance()
    {
        Assert.True(RewritingEngine.IsAssemblyRewritten(typeof(FailoverCoordinator).Assembly), "ShardedJobs.dll is not rewritten");
        // A time budget, not an iteration count: Coyote then runs iterations until the budget is spent (about 6 to 16 a second on
        // two busy cores), so the test takes the same time on a slow machine and explores more on a fast one. With
        // COYOTE_ITERATIONS it runs exactly that many instead, however long they take.
        var fixedIterations = uint.TryParse(Environment.GetEnvironmentVariable("COYOTE_ITERATIONS"), out var n) ? n : (uint?)null;
        var budget = int.TryParse(Environment.GetEnvironmentVariable("COYOTE_TIMEOUT"), out var t) ? t : 30;
        var configuration = Configuration.Create().WithTelemetryEnabled(false);
        configuration = fixedIterations is { } iterations
            ? configuration.WithTestingIterations(iterations)
            : configuration.WithTestingIterations(uint.MaxValue).WithTestingTimeout(budget);
        if (uint.TryParse(Environment.GetEnvironmentVariable("COYOTE_SEED"), out var seed))
        {
            configuration = configuration.WithRandomGeneratorSeed(seed);
        }

        if (Environment.GetEnvironmentVariable("COYOTE_VERBOSE") == "1")
        {
            configuration = configuration.WithVerbosityEnabled(Microsoft.Coyote.Logging.VerbosityLevel.Info).WithConsoleLoggingEnabled(true);
        }

        var replay = Environment.GetEnvironmentVariable("COYOTE_REPLAY") is { Length: > 0 } path ? path : null;
        if (replay is not null)
        {
            configuration = configuration.WithReproducibleTrace(File.ReadAllText(replay));
        }

        using var engine = TestingEngine.Create(configuration, FailoverScenario.RunAsync);
        var watch = Stopwatch.StartNew();
        engine.Run();
        watch.Stop();
        var report = engine.TestReport;
        var explored = report.NumOfExploredFairPaths + report.NumOfExploredUnfairPaths;
        var summary = $"Coyote: {explored} iteration(s) in {watch.Elapsed.TotalSeconds:F1} s ({explored / watch.Elapsed.TotalSeconds:F1}/s), " +
            $"{report.NumOfFoundBugs} bug(s), up to {report.MaxExploredFairSteps} scheduling steps";
        output.WriteLine(summary);
        Console.WriteLine(summary);
        if (report.NumOfFoundBugs > 0)
        {
            var tracePath = Path.Combine(Path.GetTempPath(), "failover-coyote.trace.json");
            File.WriteAllText(tracePath, engine.ReproducibleTrace);
            var found = $"{string.Join(Environment.NewLine, report.BugReports)}{Environment.NewLine}Replay: COYOTE_REPLAY={tracePath}";
            Console.WriteLine(found);
            Assert.Fail(found);
        }

        // A run within the time budget still has to have explored enough to mean something.
        Assert.True(replay is not null || fixedIterations is not null || explored >= 20, $"only {explored} iteration(s) ran in {budget} s");
    }
}
