using System.Globalization;

namespace ShardedJobs.TestSupport.Simulation;

/// <summary>The kinds of fault the simulator injects (the closing report counts them per kind).</summary>
public enum FaultKind
{
    /// <summary>The process dies: no clean-up, its session expires after the session timeout.</summary>
    Crash,

    /// <summary>A graceful stop: items cancelled, registration removed, session closed.</summary>
    Stop,

    /// <summary>A dead or stopped instance starts again, with its old id or a new one.</summary>
    Restart,

    /// <summary>The connection drops for a while, then comes back (the session expires when that took longer than its timeout).</summary>
    Suspend,

    /// <summary>The server expires the session now.</summary>
    ExpireSession,

    /// <summary>Watch and session events reach the instance late for a while.</summary>
    DelayWatches,

    /// <summary>The whole registry is unavailable for a while (a ZooKeeper quorum loss): every connection drops, no session expires.</summary>
    QuorumLoss,

    /// <summary>One request goes wrong (not sent, applied without reply, late, or the instance crashes around it).</summary>
    Request,

    /// <summary>The leader of a job crashes around its sharding multi.</summary>
    LeaderCrashMidSharding,
}

/// <summary>One fault of a seed's schedule.</summary>
/// <param name="At">When, from the start of the run.</param>
/// <param name="Slot">Which instance slot (0-based), where it applies to one.</param>
/// <param name="Duration">How long it lasts (suspension, delay, quorum loss), or how long until a crashed instance restarts.</param>
/// <param name="NewId">For a restart: with a new instance id (else the old one, as a StatefulSet does).</param>
public sealed record ScheduledFault(TimeSpan At, FaultKind Kind, int Slot, TimeSpan Duration = default, RequestFault? Request = null, bool NewId = false, string? Job = null)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"+{At:hh\\:mm\\:ss\\.fff} {Kind} slot {Slot}{(Duration > TimeSpan.Zero ? $" for {Duration.TotalSeconds:0.###} s" : "")}{(Request is null ? "" : $" ({Request})")}{(NewId ? " new id" : "")}{(Job is null ? "" : $" job {Job}")}");
}

/// <summary>A job of one seed: its schedule, size, settings and how its items behave.</summary>
public sealed record SimulatedJobSpec(string Name, string Cron, int Shards, bool Failover, bool Misfire, bool IgnoresCancellation, TimeSpan MinDuration, TimeSpan MaxDuration, int MaxConcurrency)
{
    public History.JobUnderTest ToChecked() => new(Name, Cron, Shards, Failover, Misfire, IgnoresCancellation);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name}: '{Cron}' {Shards} item(s), failover {(Failover ? "on" : "off")}, misfire {(Misfire ? "on" : "off")}, items {MinDuration.TotalSeconds:0.#}-{MaxDuration.TotalSeconds:0.#} s{(IgnoresCancellation ? ", ignore cancellation" : "")}, concurrency {MaxConcurrency}");
}

/// <summary>Everything a seed decides up front: the jobs, the instances' clock skews and the fault schedule.</summary>
public sealed record FaultPlan(int Seed, IReadOnlyList<SimulatedJobSpec> Jobs, IReadOnlyList<TimeSpan> ClockSkews, IReadOnlyList<ScheduledFault> Faults, TimeSpan Duration, TimeSpan SessionTimeout)
{
    private static readonly string[] Crons = ["0/5 * * * * ?", "0/10 * * * * ?", "0/15 * * * * ?", "0/30 * * * * ?", "0 * * * * ?", "0 0/2 * * * ?"];

    /// <summary>The plan of <paramref name="seed"/>: the same seed gives the same plan, always.</summary>
    public static FaultPlan Create(int seed, TimeSpan duration, int instances, TimeSpan sessionTimeout, TimeSpan meanGap)
    {
        var random = new Random(seed);
        var jobs = new List<SimulatedJobSpec>();
        var count = random.Next(2, 4);
        for (var j = 0; j < count; j++)
        {
            var cron = Crons[random.Next(Crons.Length)];
            var failover = j == 0 || random.NextDouble() < 0.7;
            var interval = CronInterval(cron);
            // Short items (well inside the interval) or long ones (some outlast the next fire: misfires).
            var longItems = random.NextDouble() < 0.35;
            var max = longItems ? interval * (0.5 + random.NextDouble() * 2) : interval * (0.05 + random.NextDouble() * 0.4);
            var min = max * random.NextDouble() * 0.5;
            jobs.Add(new SimulatedJobSpec($"job{j}", cron, random.Next(1, 11), failover, Misfire: random.NextDouble() < 0.85,
                IgnoresCancellation: random.NextDouble() < 0.2, Round(min), Round(max), MaxConcurrency: random.Next(1, 5)));
        }

        var skews = Enumerable.Range(0, instances).Select(_ => random.NextDouble() < 0.25 ? TimeSpan.FromMilliseconds(random.Next(-2000, 2001)) : TimeSpan.Zero).ToList();
        var faults = new List<ScheduledFault>();
        // After a warm-up of half a minute or so (the cluster shards first), one fault every meanGap on average.
        var at = TimeSpan.FromSeconds(30 + random.Next(30));
        while ((at += TimeSpan.FromMilliseconds(meanGap.TotalMilliseconds * (0.2 + random.NextDouble() * 1.6))) < duration)
        {
            faults.Add(NextFault(random, at, instances, sessionTimeout, jobs));
        }

        return new FaultPlan(seed, jobs, skews, faults, duration, sessionTimeout);
    }

    private static ScheduledFault NextFault(Random random, TimeSpan at, int instances, TimeSpan sessionTimeout, List<SimulatedJobSpec> jobs)
    {
        var slot = random.Next(instances);
        var restartAfter = random.Next(4) switch
        {
            0 => TimeSpan.FromMilliseconds(random.Next(100, (int)(sessionTimeout.TotalMilliseconds * 0.8))), // within the session timeout
            1 => sessionTimeout + TimeSpan.FromMilliseconds(random.Next(100, 2000)),
            _ => TimeSpan.FromSeconds(random.Next(5, 90)),
        };
        var shortCut = TimeSpan.FromMilliseconds(random.Next(100, (int)(sessionTimeout.TotalMilliseconds * 0.9)));
        var longCut = sessionTimeout + TimeSpan.FromMilliseconds(random.Next(200, 15000));
        var roll = random.NextDouble();
        return roll switch
        {
            < 0.14 => new ScheduledFault(at, FaultKind.Crash, slot, restartAfter, NewId: random.NextDouble() < 0.3),
            < 0.22 => new ScheduledFault(at, FaultKind.Stop, slot, restartAfter, NewId: random.NextDouble() < 0.3),
            < 0.36 => new ScheduledFault(at, FaultKind.Suspend, slot, random.NextDouble() < 0.6 ? shortCut : longCut),
            < 0.41 => new ScheduledFault(at, FaultKind.ExpireSession, slot),
            < 0.47 => new ScheduledFault(at, FaultKind.DelayWatches, slot, TimeSpan.FromSeconds(random.Next(5, 60)), Request: new RequestFault(RequestKind.Other, RequestFaultKind.Late, TimeSpan.FromMilliseconds(random.Next(50, 1500)))),
            < 0.53 => new ScheduledFault(at, FaultKind.QuorumLoss, slot, TimeSpan.FromMilliseconds(random.Next(500, (int)(sessionTimeout.TotalMilliseconds * 3)))),
            < 0.58 => new ScheduledFault(at, FaultKind.LeaderCrashMidSharding, slot, restartAfter,
                Request: new RequestFault(RequestKind.Sharding, random.NextDouble() < 0.5 ? RequestFaultKind.CrashAfter : RequestFaultKind.CrashBefore), Job: jobs[random.Next(jobs.Count)].Name),
            _ => new ScheduledFault(at, FaultKind.Request, slot, restartAfter, Request: RandomRequestFault(random)),
        };
    }

    private static RequestFault RandomRequestFault(Random random)
    {
        RequestKind[] targets = [RequestKind.Markers, RequestKind.Markers, RequestKind.Release, RequestKind.Release, RequestKind.Flag, RequestKind.Claim, RequestKind.Claim, RequestKind.ClaimRelease, RequestKind.Sharding, RequestKind.Other];
        RequestFaultKind[] kinds = [RequestFaultKind.NotSent, RequestFaultKind.ReplyLost, RequestFaultKind.ReplyLost, RequestFaultKind.Late, RequestFaultKind.CrashAfter, RequestFaultKind.CrashBefore];
        var kind = kinds[random.Next(kinds.Length)];
        return new RequestFault(targets[random.Next(targets.Length)], kind, kind == RequestFaultKind.Late ? TimeSpan.FromMilliseconds(random.Next(10, 3000)) : default);
    }

    /// <summary>The gap between fires of the simulator's crons (each is a fixed step).</summary>
    public static TimeSpan CronInterval(string cron) => cron switch
    {
        "0/5 * * * * ?" => TimeSpan.FromSeconds(5),
        "0/10 * * * * ?" => TimeSpan.FromSeconds(10),
        "0/15 * * * * ?" => TimeSpan.FromSeconds(15),
        "0/30 * * * * ?" => TimeSpan.FromSeconds(30),
        "0 * * * * ?" => TimeSpan.FromMinutes(1),
        "0 0/2 * * * ?" => TimeSpan.FromMinutes(2),
        _ => throw new ArgumentException($"not a simulator cron: {cron}", nameof(cron)),
    };

    private static TimeSpan Round(TimeSpan value) => TimeSpan.FromMilliseconds(Math.Round(value.TotalMilliseconds / 10) * 10);

    public string Describe() => string.Join("\n",
        new[] { $"seed {Seed}: {Duration.TotalMinutes:0} simulated minutes, session timeout {SessionTimeout.TotalSeconds:0.#} s, clock skews [{string.Join(", ", ClockSkews.Select(s => $"{s.TotalMilliseconds:0} ms"))}]" }
            .Concat(Jobs.Select(j => "  " + j))
            .Concat(Faults.Select(f => "  " + f)));
}
