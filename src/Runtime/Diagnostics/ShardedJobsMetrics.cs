using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ShardedJobs.Diagnostics;

/// <summary>
/// The <c>Meter("ShardedJobs")</c> instruments and the <c>ActivitySource("ShardedJobs")</c>, in one place. Every instrument is
/// tagged with <c>job</c>; see the README's "Observability" section for the list.
/// </summary>
internal sealed class ShardedJobsMetrics : IDisposable
{
    public const string Name = "ShardedJobs";

    /// <summary>One span per execution (<c>shardedjobs.execution</c>) with a child per item (<c>shardedjobs.item</c>).</summary>
    public static readonly ActivitySource ActivitySource = new(Name);

    private readonly Meter _meter;
    private readonly Counter<long> _executions;
    private readonly Counter<long> _failures;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _triggerDelay;
    private readonly Counter<long> _misfires;
    private readonly Counter<long> _skippedFires;
    private readonly Counter<long> _reshardings;
    private readonly Counter<long> _failoversFlagged;
    private readonly Counter<long> _failoversClaimed;
    private readonly Histogram<double> _failoverLatency;
    private readonly Counter<long> _fenced;

    public ShardedJobsMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        _executions = _meter.CreateCounter<long>("shardedjobs.item.executions", "{item}", "Item executions that ended, by outcome (succeeded, failed, cancelled, abandoned) and source.");
        _failures = _meter.CreateCounter<long>("shardedjobs.item.failures", "{item}", "Item executions that threw.");
        _duration = _meter.CreateHistogram<double>("shardedjobs.item.duration", "s", "How long an item execution took.");
        _triggerDelay = _meter.CreateHistogram<double>("shardedjobs.trigger.delay", "s", "From the scheduled fire time to the start of ExecuteAsync.");
        _misfires = _meter.CreateCounter<long>("shardedjobs.misfires", "{item}", "Items a fire could not start because they were still running.");
        _skippedFires = _meter.CreateCounter<long>("shardedjobs.fires.skipped", "{fire}", "Fires skipped on this instance, by reason.");
        _reshardings = _meter.CreateCounter<long>("shardedjobs.reshardings", "{sharding}", "Shardings computed by this instance as leader.");
        _failoversFlagged = _meter.CreateCounter<long>("shardedjobs.failover.flagged", "{item}", "Unfinished items of departed instances flagged for compensation by this instance.");
        _failoversClaimed = _meter.CreateCounter<long>("shardedjobs.failover.claimed", "{item}", "Flagged items this instance claimed to compensate.");
        _failoverLatency = _meter.CreateHistogram<double>("shardedjobs.failover.latency", "s", "From flagging a departed instance's item to the start of its compensation.");
        _fenced = _meter.CreateCounter<long>("shardedjobs.fenced", "{item}", "Items cancelled because this instance lost the registry for too long (self-fencing).");
    }

    public void ItemEnded(string job, ExecutionSource source, ShardOutcome outcome, TimeSpan duration)
    {
        var tags = new TagList { { "job", job }, { "source", SourceTag(source) }, { "outcome", OutcomeTag(outcome) } };
        _executions.Add(1, tags);
        _duration.Record(duration.TotalSeconds, tags);
        if (outcome == ShardOutcome.Failed)
        {
            _failures.Add(1, new TagList { { "job", job }, { "source", SourceTag(source) } });
        }
    }

    public void ItemStarted(string job, ExecutionSource source, TimeSpan delay) =>
        _triggerDelay.Record(Math.Max(0, delay.TotalSeconds), new TagList { { "job", job }, { "source", SourceTag(source) } });

    public void Misfired(string job, int items) => _misfires.Add(items, new TagList { { "job", job } });

    public void FireSkipped(string job, string reason) => _skippedFires.Add(1, new TagList { { "job", job }, { "reason", reason } });

    public void Sharded(string job) => _reshardings.Add(1, new TagList { { "job", job } });

    public void FailoversFlagged(string job, int items) => _failoversFlagged.Add(items, new TagList { { "job", job } });

    public void FailoverClaimed(string job) => _failoversClaimed.Add(1, new TagList { { "job", job } });

    public void FailoverStarted(string job, TimeSpan sinceFlagged) => _failoverLatency.Record(Math.Max(0, sinceFlagged.TotalSeconds), new TagList { { "job", job } });

    public void Fenced(string job, int items) => _fenced.Add(items, new TagList { { "job", job } });

    public void Dispose() => _meter.Dispose();

    public static string SourceTag(ExecutionSource source) => source switch
    {
        ExecutionSource.Schedule => "schedule",
        ExecutionSource.Misfire => "misfire",
        ExecutionSource.Manual => "manual",
        _ => "failover",
    };

    private static string OutcomeTag(ShardOutcome outcome) => outcome switch
    {
        ShardOutcome.Succeeded => "succeeded",
        ShardOutcome.Failed => "failed",
        ShardOutcome.Cancelled => "cancelled",
        _ => "abandoned",
    };
}
