using ShardedJobs.TestSupport.History;

namespace ShardedJobs.TestSupport.Chaos;

/// <summary>
/// What a chaos run did to the cluster, recorded as it is injected, and turned into the <see cref="ClusterTimeline"/> the history
/// checker judges by. Thread-safe: faults run concurrently.
/// </summary>
public sealed class ChaosTimelineRecorder
{
    private readonly Lock _gate = new();
    private readonly List<Interval> _registryDown = [];
    private readonly Dictionary<string, List<Interval>> _appUnable = new(StringComparer.Ordinal);
    private readonly List<(string Instance, DateTimeOffset At)> _deaths = [];
    private readonly List<CutOff> _cutOffs = [];

    public ChaosTimelineRecorder(IEnumerable<string> apps)
    {
        foreach (var app in apps)
        {
            _appUnable[app] = [];
        }
    }

    /// <summary>The ensemble had no serving quorum (a quorum loss, or a leader gone until a leader served again).</summary>
    public void RegistryDown(DateTimeOffset from, DateTimeOffset to)
    {
        lock (_gate)
        {
            _registryDown.Add(new Interval(from, to));
        }
    }

    /// <summary>The app was dead, frozen or partitioned: it could not run a fire.</summary>
    public void AppUnable(string instance, DateTimeOffset from, DateTimeOffset to)
    {
        lock (_gate)
        {
            _appUnable[instance].Add(new Interval(from, to));
        }
    }

    /// <summary>The app's process died (SIGKILL, or an exit of its own): its open runs ended then.</summary>
    public void Death(string instance, DateTimeOffset at)
    {
        lock (_gate)
        {
            _deaths.Add((instance, at));
        }
    }

    public void CutOff(string instance, DateTimeOffset from, DateTimeOffset to, bool frozen)
    {
        lock (_gate)
        {
            _cutOffs.Add(new CutOff(instance, new Interval(from, to), frozen));
        }
    }

    public IReadOnlyList<(string Instance, DateTimeOffset At)> Deaths
    {
        get
        {
            lock (_gate)
            {
                return [.. _deaths];
            }
        }
    }

    /// <summary>
    /// The timeline over [<paramref name="from"/>, <paramref name="to"/>): able where the registry had a quorum and at least one app
    /// was live and neither frozen nor partitioned.
    /// </summary>
    public ClusterTimeline Build(TimeSpan sessionTimeout, DateTimeOffset from, DateTimeOffset to, DateTimeOffset judgeFiresFrom, DateTimeOffset judgeFiresBefore)
    {
        lock (_gate)
        {
            // Between two consecutive boundaries nothing changes, so one probe per segment decides it.
            var bounds = _registryDown.Concat(_appUnable.Values.SelectMany(v => v))
                .SelectMany(i => new[] { i.From, i.To })
                .Where(t => t > from && t < to)
                .Append(from).Append(to)
                .Distinct().Order().ToList();
            var able = new List<Interval>();
            for (var i = 0; i + 1 < bounds.Count; i++)
            {
                var probe = bounds[i] + (bounds[i + 1] - bounds[i]) / 2;
                var ok = !_registryDown.Any(d => d.Contains(probe)) && _appUnable.Values.Any(u => !u.Any(d => d.Contains(probe)));
                if (!ok)
                {
                    continue;
                }

                if (able.Count > 0 && able[^1].To == bounds[i])
                {
                    able[^1] = able[^1] with { To = bounds[i + 1] };
                }
                else
                {
                    able.Add(new Interval(bounds[i], bounds[i + 1]));
                }
            }

            return new ClusterTimeline
            {
                SessionTimeout = sessionTimeout,
                Able = able,
                Deaths = [.. _deaths],
                CutOffs = [.. _cutOffs],
                JudgeFiresFrom = judgeFiresFrom,
                JudgeFiresBefore = judgeFiresBefore,
            };
        }
    }
}
