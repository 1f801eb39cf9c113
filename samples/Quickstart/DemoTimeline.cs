using System.Collections.Concurrent;
using System.Globalization;

namespace Quickstart;

/// <summary>One line of the demo's output, kept for the summary.</summary>
public sealed record DemoEvent(DateTimeOffset Time, string Instance, string Job, int Item, DateTimeOffset FireTime, bool IsFailover, string What, string Outcome);

/// <summary>What the multi-node demo saw, and the summary it prints at the end: the crash, the compensations, the re-sharding,
/// and whether every item of every fire completed exactly once, all read from what the jobs printed.</summary>
public sealed class DemoTimeline
{
    private readonly ConcurrentQueue<DemoEvent> _events = new();

    public void Add(DemoEvent @event) => _events.Enqueue(@event);

    public IReadOnlyList<DemoEvent> Events => [.. _events];

    /// <summary>The summary of <paramref name="job"/> (with <paramref name="items"/> items) for a demo that stopped at
    /// <paramref name="stoppedAt"/>, after <paramref name="crash"/> if there was one.</summary>
    public IReadOnlyList<string> Summarise(string job, int items, DemoCrash? crash, DateTimeOffset stoppedAt, TimeSpan fireInterval)
    {
        var events = Events.Where(e => e.Job == job).ToList();
        var lines = new List<string>();
        if (crash is not null)
        {
            var interrupted = string.Join(", ", crash.Running.Select(r => $"item {r.Item} (fire {Time(r.FireTime)}{(r.IsFailover ? ", a compensation" : "")})"));
            lines.Add($"{Clock(crash.Time)}  {crash.Node} crashed while running {interrupted}.");
            lines.Add($"{Clock(crash.Time + crash.SessionTimeout)}  its session expired ({crash.SessionTimeout.TotalSeconds:0.#} s later); failover then ran what it had not finished:");
            var compensations = events.Where(e => e.IsFailover && e.What == "start" && e.Time > crash.Time).OrderBy(e => e.Time).ToList();
            foreach (var start in compensations)
            {
                var end = events.FirstOrDefault(e => e.What == "end" && e.IsFailover && e.Instance == start.Instance && e.Item == start.Item && e.FireTime == start.FireTime);
                lines.Add($"{Clock(start.Time)}    item {start.Item} of fire {Time(start.FireTime)} on {start.Instance}, FAILOVER: {end?.Outcome ?? "still running at the stop"}");
            }

            if (compensations.Count == 0)
            {
                lines.Add("              (nothing: it had finished everything)");
            }

            var resharded = events.Where(e => !e.IsFailover && e.What == "start" && e.FireTime > crash.Time + crash.SessionTimeout)
                .GroupBy(e => e.FireTime).OrderBy(g => g.Key).FirstOrDefault();
            if (resharded is not null)
            {
                var owners = resharded.GroupBy(e => e.Instance).OrderBy(g => g.Key, StringComparer.Ordinal)
                    .Select(g => $"{g.Key} → item{(g.Count() == 1 ? "" : "s")} {string.Join(", ", g.Select(e => e.Item).Order())}");
                lines.Add($"{Clock(resharded.Key)}  the next fire was re-sharded over the live nodes: {string.Join("; ", owners)}.");
            }
        }

        // Fires a full interval before the stop had time to complete; the last one may have been cut short by it.
        var fires = events.Select(e => e.FireTime).Distinct().Where(f => f + fireInterval <= stoppedAt).Order().ToList();
        var problems = (from fire in fires
                        from item in Enumerable.Range(0, items)
                        let completed = events.Count(e => e.What == "end" && e.Outcome == "ok" && e.FireTime == fire && e.Item == item)
                        where completed != 1
                        select $"item {item} of fire {Time(fire)} completed {completed} times").ToList();
        lines.Add(fires.Count == 0
            ? "No fire completed."
            : problems.Count == 0
                ? $"Every item of each of the {fires.Count} fires from {Time(fires[0])} to {Time(fires[^1])} completed exactly once: none lost, none twice."
                : "NOT exactly once: " + string.Join("; ", problems));
        return lines;
    }

    private static string Clock(DateTimeOffset time) => time.ToLocalTime().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);

    private static string Time(DateTimeOffset time) => time.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture);
}

/// <summary>The crash the demo played: which node, when, what it was running, and the session timeout that followed.</summary>
public sealed record DemoCrash(string Node, DateTimeOffset Time, IReadOnlyList<DemoRun> Running, TimeSpan SessionTimeout);
