namespace ShardedJobs.TestSupport;

/// <summary>
/// A clock that is off another by <see cref="Offset"/>: the same timers, another reading — one instance's machine clock in the
/// scenario tests (over the cluster's fake clock) and in the fault simulator (over its simulation clock).
/// </summary>
public sealed class SkewedTimeProvider(TimeProvider inner, TimeSpan offset) : TimeProvider
{
    public TimeSpan Offset { get; } = offset;

    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow() + Offset;

    public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;

    public override long TimestampFrequency => inner.TimestampFrequency;

    public override long GetTimestamp() => inner.GetTimestamp();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => inner.CreateTimer(callback, state, dueTime, period);
}
