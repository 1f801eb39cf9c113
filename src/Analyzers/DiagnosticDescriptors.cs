using Microsoft.CodeAnalysis;

namespace ShardedJobs.Analyzers;

/// <summary>Every diagnostic of ShardedJobs, in one place (ids, severities and conditions as the design fixes them).</summary>
internal static class DiagnosticDescriptors
{
    public const string Category = "ShardedJobs";

    /// <summary>Each id's help: its section in the repository's docs/diagnostics.md.</summary>
    private const string HelpBase = "docs/diagnostics.md#";

    public static readonly DiagnosticDescriptor FailoverWithoutMonitoring = new(
        "SJ0001",
        "Failover needs execution monitoring",
        "Job '{0}' has Failover = true but MonitorExecution = false: without running markers nothing can be compensated, so failover does nothing; set MonitorExecution = true",
        Category, DiagnosticSeverity.Warning, isEnabledByDefault: true,
        description: "Failover compensates the items a crashed instance did not finish; it knows them from the running markers that execution monitoring writes.",
        helpLinkUri: HelpBase + "sj0001");

    public static readonly DiagnosticDescriptor FailoverOnShortInterval = new(
        "SJ0002",
        "Failover on a schedule shorter than the threshold",
        "Job '{0}' fails over but its cron '{1}' fires {2} apart at the shortest, under the {3} threshold: a compensation can only start after the session timeout, by when the next fire is due; use a wider schedule, turn Failover off, or lower shardedjobs.failover_min_interval_seconds in .editorconfig",
        Category, DiagnosticSeverity.Warning, isEnabledByDefault: true,
        description: "Crash detection takes the ZooKeeper session timeout, so failover only helps jobs whose fires are further apart than that. The threshold (default 60 s) is read from .editorconfig: shardedjobs.failover_min_interval_seconds.",
        helpLinkUri: HelpBase + "sj0002");

    public static readonly DiagnosticDescriptor InvalidCron = new(
        "SJ0003",
        "The cron expression does not parse",
        "Job '{0}': {1}",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true,
        description: "Quartz syntax as ElasticJob users write it: sec min hour day-of-month month day-of-week [year], with ?, ranges, steps and lists; L, W and # are not supported.",
        helpLinkUri: HelpBase + "sj0003");

    public static readonly DiagnosticDescriptor InvalidShards = new(
        "SJ0004",
        "A job needs at least one shard",
        "Job '{0}': shards is {1}; a job needs at least 1 item; pass shards: 1 or more",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true,
        helpLinkUri: HelpBase + "sj0004");

    public static readonly DiagnosticDescriptor InvalidItemParameters = new(
        "SJ0005",
        "Malformed item parameters",
        "Job '{0}': {1}",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true,
        description: "ItemParameters is item=value pairs separated by commas, e.g. \"0=Beijing,1=Shanghai\", each item once and in 0..shards-1.",
        helpLinkUri: HelpBase + "sj0005");

    public static readonly DiagnosticDescriptor UnknownTimeZone = new(
        "SJ0006",
        "Unknown time zone",
        "Job '{0}': {1}",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true,
        helpLinkUri: HelpBase + "sj0006");

    public static readonly DiagnosticDescriptor NotAJobClass = new(
        "SJ0007",
        "The class cannot be a sharded job",
        "'{0}' cannot be a sharded job: {1}",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true,
        description: "A [ShardedJob] class must be a concrete, non-generic class that implements IShardedJob or IDataflowJob<T> and that the generated code can see.",
        helpLinkUri: HelpBase + "sj0007");

    public static readonly DiagnosticDescriptor DuplicateJobName = new(
        "SJ0008",
        "Two jobs share a name",
        "The job name '{0}' is used by {1}; job names must be unique: set a distinct Name",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true,
        description: "The job name is its node in the registry and its key in configuration; two classes with one name would be one job.",
        helpLinkUri: HelpBase + "sj0008");
}
