using Microsoft.Extensions.Logging;
using ShardedJobs.Diagnostics;

namespace ShardedJobs.Scheduling;

/// <summary>
/// The cron loop of one job on one instance, on a <see cref="TimeProvider"/>: waits for the next fire time of the current
/// schedule and hands it to the fire callback, which returns once the fire has started (its items run on). Fire times that
/// passed while the loop was held up (a long start phase, a paused process) are collapsed into one fire at the latest of them,
/// as Quartz's "do nothing" misfire instruction would, and logged. A reschedule (the cron or time zone changed) recomputes from now.
/// </summary>
internal sealed class JobTrigger : IAsyncDisposable
{
    private readonly string _jobName;
    private readonly Func<CronSchedule> _schedule;
    private readonly Func<DateTimeOffset, Task> _fire;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly BackgroundLoop _loop = new();
    private TaskCompletionSource _rescheduled = NewSignal();
    private long _nextFireTicks = long.MinValue;
    private DateTimeOffset _startFrom;

    public JobTrigger(string jobName, Func<CronSchedule> schedule, Func<DateTimeOffset, Task> fire, TimeProvider time, ILogger logger)
    {
        _jobName = jobName;
        _schedule = schedule;
        _fire = fire;
        _time = time;
        _logger = logger;
    }

    /// <summary>The next fire time, or null before the start, after the stop, or when the schedule never fires again.</summary>
    public DateTimeOffset? NextFireTime
    {
        get
        {
            var ticks = Interlocked.Read(ref _nextFireTicks);
            return ticks == long.MinValue ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
        }
    }

    /// <summary>Starts the loop; the first fire is the first one strictly after <paramref name="from"/> (now when omitted), at
    /// once if it is already due. The job's registration names that instant, so the cluster knows which fires this instance runs.</summary>
    public void Start(DateTimeOffset? from = null)
    {
        _startFrom = from ?? _time.GetUtcNow();
        SetNext(_schedule().GetNextOccurrence(_startFrom));
        _loop.Start(RunAsync);
    }

    /// <summary>The schedule changed: recompute the next fire time from now.</summary>
    public void Reschedule() => Interlocked.Exchange(ref _rescheduled, NewSignal()).TrySetResult();

    public async ValueTask DisposeAsync()
    {
        await _loop.DisposeAsync().ConfigureAwait(false);
        SetNext(null);
    }

    private async Task RunAsync(CancellationToken token)
    {
        var cursor = _startFrom;
        while (!token.IsCancellationRequested)
        {
            var rescheduled = Volatile.Read(ref _rescheduled).Task;
            var schedule = _schedule();
            var next = schedule.GetNextOccurrence(cursor);
            SetNext(next);
            if (next is null)
            {
                JobLog.ScheduleEnded(_logger, _jobName, schedule.Expression);
                await rescheduled.WaitAsync(token).ConfigureAwait(false);
                cursor = _time.GetUtcNow();
                continue;
            }

            // Timers may wake a little early (delays are whole milliseconds): a fire never starts before its time.
            var woken = false;
            for (var delay = next.Value - _time.GetUtcNow(); delay > TimeSpan.Zero && !woken; delay = next.Value - _time.GetUtcNow())
            {
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(token);
                var due = Task.Delay(RoundUpToMilliseconds(delay), _time, wait.Token);
                woken = await Task.WhenAny(due, rescheduled).ConfigureAwait(false) == rescheduled;
                await wait.CancelAsync().ConfigureAwait(false);
                token.ThrowIfCancellationRequested();
            }

            if (woken)
            {
                cursor = _time.GetUtcNow();
                continue;
            }

            var fireTime = next.Value;
            var missed = 0;
            var now = _time.GetUtcNow();
            while (schedule.GetNextOccurrence(fireTime) is { } later && later <= now)
            {
                fireTime = later;
                missed++;
            }

            if (missed > 0)
            {
                JobLog.FiresCollapsed(_logger, _jobName, missed, fireTime);
            }

            cursor = fireTime;
            try
            {
                await _fire(fireTime).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
            {
                JobLog.UnexpectedError(_logger, _jobName, "starting a fire", e);
            }
        }
    }

    private static TimeSpan RoundUpToMilliseconds(TimeSpan delay) =>
        TimeSpan.FromMilliseconds(Math.Ceiling(delay.TotalMilliseconds));

    private void SetNext(DateTimeOffset? next) => Interlocked.Exchange(ref _nextFireTicks, next?.UtcTicks ?? long.MinValue);

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
