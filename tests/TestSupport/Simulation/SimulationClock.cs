namespace ShardedJobs.TestSupport.Simulation;

/// <summary>
/// The fault simulator's time: a <see cref="TimeProvider"/> whose clock moves only when the driver says so, one timer at a time
/// (<see cref="FireNext"/>), so every timer fires at exactly its due time and the work it starts can settle before the next one.
/// Unlike <c>FakeTimeProvider</c> it tells when the next timer is due, so a simulated hour costs one step per timer, not one per
/// fixed slice of time. Timer callbacks run on the driver's thread, inside <see cref="FireNext"/>.
/// </summary>
public sealed class SimulationClock : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly SortedSet<SimulationTimer> _due = new(SimulationTimer.ByDue);
    private DateTimeOffset _now;
    private long _sequence;

    public SimulationClock(DateTimeOffset start) => _now = start;

    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
        {
            return _now;
        }
    }

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => GetUtcNow().UtcTicks;

    /// <summary>When the earliest armed timer is due, or null when none is armed.</summary>
    public DateTimeOffset? NextDue
    {
        get
        {
            lock (_gate)
            {
                return _due.Count == 0 ? null : _due.Min!.Due;
            }
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new SimulationTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock to the earliest due timer if it is due by <paramref name="limit"/> and fires it; otherwise moves
    /// the clock to <paramref name="limit"/>. Returns whether a timer fired.</summary>
    public bool FireNext(DateTimeOffset limit)
    {
        SimulationTimer? timer;
        lock (_gate)
        {
            timer = _due.Count > 0 && _due.Min!.Due <= limit ? _due.Min : null;
            if (timer is null)
            {
                if (limit > _now)
                {
                    _now = limit;
                }

                return false;
            }

            _due.Remove(timer);
            if (timer.Due > _now)
            {
                _now = timer.Due;
            }

            if (timer.Period is { } period)
            {
                Arm(timer, _now + period);
            }
        }

        timer.Invoke();
        return true;
    }

    private void Arm(SimulationTimer timer, DateTimeOffset due)
    {
        timer.Due = due;
        timer.Sequence = ++_sequence;
        _due.Add(timer);
    }

    private sealed class SimulationTimer(SimulationClock clock, TimerCallback callback, object? state) : ITimer
    {
        public static readonly IComparer<SimulationTimer> ByDue = Comparer<SimulationTimer>.Create((a, b) =>
            a.Due != b.Due ? a.Due.CompareTo(b.Due) : a.Sequence.CompareTo(b.Sequence));

        private bool _disposed;

        public DateTimeOffset Due { get; set; }

        public long Sequence { get; set; }

        public TimeSpan? Period { get; private set; }

        public void Invoke()
        {
            lock (clock._gate)
            {
                if (_disposed)
                {
                    return;
                }
            }

            callback(state);
        }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (clock._gate)
            {
                if (_disposed)
                {
                    return false;
                }

                clock._due.Remove(this);
                Period = period == Timeout.InfiniteTimeSpan || period <= TimeSpan.Zero ? null : period;
                if (dueTime != Timeout.InfiniteTimeSpan)
                {
                    clock.Arm(this, clock._now + (dueTime < TimeSpan.Zero ? TimeSpan.Zero : dueTime));
                }

                return true;
            }
        }

        public void Dispose()
        {
            lock (clock._gate)
            {
                _disposed = true;
                clock._due.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
