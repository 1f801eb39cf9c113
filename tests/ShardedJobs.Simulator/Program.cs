using System.Diagnostics;
using System.Globalization;
using ShardedJobs.TestSupport.Simulation;

// The fault simulator's long form: `dotnet run --project tests/ShardedJobs.Simulator -c Release -- [--seeds N] [--from S]
// [--minutes M] [--instances K] [--parallel P]`. Runs seeds S..S+N-1, prints every failing seed in full (its plan replays it),
// and last: `simulator: N seeds, V with violations, F faults (by kind), R runs, T s`. Exit 1 when any seed had a violation.
var seeds = Option("--seeds", 100);
var from = Option("--from", 1);
var minutes = Option("--minutes", 60);
var instances = Option("--instances", 3);
var parallel = Option("--parallel", 1);
var options = new SimulationOptions { Duration = TimeSpan.FromMinutes(minutes), Instances = instances };
if (args.Contains("--no-faults"))
{
    options = options with { MeanFaultGap = TimeSpan.FromDays(365) };
}

var watch = Stopwatch.StartNew();
var failed = 0;
var hung = 0;
var runs = 0L;
var faults = new Dictionary<FaultKind, int>();
var gate = new object();
Parallel.For(from, from + seeds, new ParallelOptions { MaxDegreeOfParallelism = parallel }, seed =>
{
    SimulationResult result;
    try
    {
        result = FaultSimulation.Run(seed, options);
    }
    catch (TimeoutException e)
    {
        lock (gate)
        {
            failed++;
            hung++;
            Console.WriteLine(e.Message); // its thread stays behind, in the background: the other seeds go on
        }

        return;
    }

    lock (gate)
    {
        runs += result.Runs;
        foreach (var (kind, count) in result.FaultsApplied)
        {
            faults[kind] = faults.GetValueOrDefault(kind) + count;
        }

        if (!result.Ok)
        {
            failed++;
            Console.WriteLine(result.Describe());
        }
        else if (Environment.GetEnvironmentVariable("SIMULATOR_VERBOSE") == "1")
        {
            Console.WriteLine(result.Describe());
        }
    }
});
var byKind = string.Join(", ", faults.OrderBy(f => f.Key).Select(f => $"{f.Key} {f.Value}"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"simulator: {seeds} seeds, {failed} with violations{(hung > 0 ? $" ({hung} hung)" : "")}, {faults.Values.Sum()} faults ({byKind}), {runs} runs, {watch.Elapsed.TotalSeconds:0.0} s, {FaultSimulation.Steps} steps ({FaultSimulation.Unsettled} unsettled, {FaultSimulation.ThreadChecks} thread checks)"));
return failed == 0 ? 0 : 1;

int Option(string name, int fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
}
