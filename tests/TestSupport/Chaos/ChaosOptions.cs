using System.Globalization;
using ShardedJobs.TestSupport.History;

namespace ShardedJobs.TestSupport.Chaos;

/// <summary>The faults a chaos run injects, each healed by the run itself (restart, SIGCONT, heal, server restart).</summary>
public enum FaultKind
{
    /// <summary>SIGKILL, restarted with the same instance id at once: the new process registers while the old session still lives.</summary>
    KillRestartAtOnce,

    /// <summary>SIGKILL, restarted with the same instance id after the session timeout.</summary>
    KillRestartLater,

    /// <summary>SIGTERM (a graceful stop), then a restart with the same instance id.</summary>
    TerminateRestart,

    /// <summary>SIGSTOP/SIGCONT for less than the session timeout.</summary>
    FreezeShort,

    /// <summary>SIGSTOP/SIGCONT for longer than the session timeout (counted apart: an overlap it causes is excused).</summary>
    FreezeLong,

    /// <summary>The app's proxies go silent for less than the session timeout.</summary>
    PartitionShort,

    /// <summary>The app's proxies go silent for longer than the session timeout.</summary>
    PartitionLong,

    /// <summary>One ZooKeeper server SIGKILLed and restarted (the other two keep the quorum).</summary>
    ZooKeeperServerKill,

    /// <summary>The ZooKeeper leader's JVM SIGSTOPped, then SIGCONTed.</summary>
    ZooKeeperLeaderPause,

    /// <summary>Two of the three ZooKeeper servers SIGKILLed together, then restarted.</summary>
    QuorumLoss,
}

/// <summary>
/// One chaos run's settings: the seeded schedule (how many faults, how far apart), the ZooKeeper tick and session timeout, and
/// the sample's <c>OrderSync</c> job (cron every few seconds, several items, some short, some longer than the session timeout).
/// </summary>
public sealed record ChaosOptions
{
    public required int Seed { get; init; }

    /// <summary>How many faults to inject.</summary>
    public required int Faults { get; init; }

    /// <summary>The time from one fault's start to the next one's is drawn from [<see cref="MinGap"/>, <see cref="MaxGap"/>].</summary>
    public TimeSpan MinGap { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxGap { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>ZooKeeper's tick; the session timeout must lie within 2–20 ticks.</summary>
    public int TickTimeMs { get; init; } = 250;

    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>The job fires every this many seconds (a divisor of 60, so the cron is regular).</summary>
    public int FireIntervalSeconds { get; init; } = 5;

    public int Shards { get; init; } = 6;

    /// <summary>How long an item runs (<c>--work</c>).</summary>
    public double WorkSeconds { get; init; } = 0.4;

    /// <summary>Items that run longer (<c>--work-by-item</c>): item 1 outlives the session timeout, so a crash interrupts it.</summary>
    public string WorkByItem { get; init; } = "1=3.5,3=2,5=1.2";

    /// <summary>Where the run's files go (execution log, each app's output, the fault list, ZooKeeper's logs); a new temporary
    /// directory by default.</summary>
    public string? Directory { get; init; }

    /// <summary>Where the run's lines go (fault by fault, then the verdict).</summary>
    public Action<string> Output { get; init; } = Console.WriteLine;

    public string JobName => "OrderSync";

    public string Cron => string.Create(CultureInfo.InvariantCulture, $"0/{FireIntervalSeconds} * * * * ?");

    public TimeSpan FireInterval => TimeSpan.FromSeconds(FireIntervalSeconds);

    public JobUnderTest Job => new(JobName, Cron, Shards, Failover: true);
}

/// <summary>What a chaos run found.</summary>
/// <param name="UnexpectedExits">Apps that exited without being told to (each with its time and exit code).</param>
public sealed record ChaosResult(
    int Seed,
    int Faults,
    IReadOnlyDictionary<FaultKind, int> FaultsByKind,
    HistoryReport History,
    RegistryAuditReport Audit,
    IReadOnlyList<string> UnexpectedExits,
    TimeSpan Duration,
    string Directory,
    IReadOnlyDictionary<string, string> AppOutputs)
{
    /// <summary>No rule of the history checker broken, the registry clean, no app gone on its own.</summary>
    public bool Passed => History.Ok && Audit.Ok && UnexpectedExits.Count == 0;

    /// <summary>The run's last line.</summary>
    public string LastLine => string.Create(CultureInfo.InvariantCulture,
        $"chaos: {Faults} faults, {History.FiresChecked} fires checked, {History.Duplicates} duplicates, {History.Overlaps} overlaps, {History.Lost} lost");
}
