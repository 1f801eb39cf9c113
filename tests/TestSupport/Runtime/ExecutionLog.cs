namespace ShardedJobs.TestSupport.Runtime;

/// <summary>One item execution as a job saw it.</summary>
public sealed class ItemRun
{
    public required string Instance { get; init; }

    public required string Job { get; init; }

    public required int Item { get; init; }

    public required DateTimeOffset FireTime { get; init; }

    public required bool IsFailover { get; init; }

    public required string TaskId { get; init; }

    public string? Parameter { get; init; }

    public string? JobParameter { get; init; }

    public int TotalCount { get; init; }

    /// <summary><see cref="ShardContext.FencingToken"/> of the execution.</summary>
    public long FencingToken { get; init; }

    public required DateTimeOffset Started { get; init; }

    public DateTimeOffset? Ended { get; set; }

    /// <summary>null while running; then "ok", "failed" or "cancelled".</summary>
    public string? Outcome { get; set; }

    public override string ToString() =>
        $"{Job}#{Item} fire {FireTime:HH:mm:ss.fff} on {Instance}{(IsFailover ? " FAILOVER" : "")} {Started:HH:mm:ss.fff}-{Ended:HH:mm:ss.fff} {Outcome ?? "running"}";
}

/// <summary>
/// The oracle of the runtime tests: every item execution with instance, item, fire time, start and end. "Ran twice" and "lost"
/// are computed from it, never from the runtime's own bookkeeping.
/// </summary>
public sealed class ExecutionLog
{
    private readonly List<ItemRun> _runs = [];
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyList<ItemRun> Runs
    {
        get
        {
            lock (_gate)
            {
                return [.. _runs];
            }
        }
    }

    private readonly Dictionary<(string Instance, string TaskId), DateTimeOffset> _launches = [];

    /// <summary>When each execution began on its instance (its items' markers are written by then), as a listener saw it: an
    /// item waiting for a slot holds its item from there, before its run starts.</summary>
    public IReadOnlyDictionary<(string Instance, string TaskId), DateTimeOffset> Launches
    {
        get
        {
            lock (_gate)
            {
                return new Dictionary<(string Instance, string TaskId), DateTimeOffset>(_launches);
            }
        }
    }

    public void Launched(JobExecution execution, DateTimeOffset now)
    {
        lock (_gate)
        {
            _launches.TryAdd((execution.InstanceId, execution.TaskId), now);
        }
    }

    public ItemRun Start(ShardContext shard, DateTimeOffset now)
    {
        var run = new ItemRun
        {
            Instance = shard.InstanceId,
            Job = shard.JobName,
            Item = shard.Item,
            FireTime = shard.FireTime,
            IsFailover = shard.IsFailover,
            TaskId = shard.TaskId,
            Parameter = shard.ItemParameter,
            JobParameter = shard.JobParameter,
            TotalCount = shard.TotalCount,
            FencingToken = shard.FencingToken,
            Started = now,
        };
        lock (_gate)
        {
            _runs.Add(run);
        }

        Signal();
        return run;
    }

    public void End(ItemRun run, DateTimeOffset now, string outcome)
    {
        lock (_gate)
        {
            run.Ended = now;
            run.Outcome = outcome;
        }

        Signal();
    }

    public IReadOnlyList<ItemRun> For(DateTimeOffset fireTime, string? job = null) =>
        [.. Runs.Where(r => r.FireTime == fireTime && (job is null || r.Job == job)).OrderBy(r => r.Item)];

    public IReadOnlyList<DateTimeOffset> FireTimes(string? job = null) =>
        [.. Runs.Where(r => job is null || r.Job == job).Select(r => r.FireTime).Distinct().Order()];

    /// <summary>Completes when <paramref name="condition"/> holds, or fails after <paramref name="timeout"/> (real time) with the log.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<ItemRun>, bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                changed = _changed.Task;
            }

            if (condition(Runs))
            {
                return;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"Timed out waiting for: {what}. Execution log:\n{Describe()}");
            }

            await Task.WhenAny(changed, Task.Delay(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200))).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until <paramref name="count"/> runs of the fire have ended.</summary>
    public Task WaitForEndedAsync(DateTimeOffset fireTime, int count, string? job = null, TimeSpan? timeout = null) =>
        WaitUntilAsync(runs => runs.Count(r => r.FireTime == fireTime && r.Outcome is not null && (job is null || r.Job == job)) >= count,
            $"{count} ended run(s) of fire {fireTime:O}", timeout);

    /// <summary>Asserts that each item 0..shards-1 ran exactly once for the fire (and ended), and returns item → instance.</summary>
    public IReadOnlyDictionary<int, string> AssertEachItemOnce(DateTimeOffset fireTime, int shards, string? job = null)
    {
        var runs = For(fireTime, job);
        var problems = new List<string>();
        for (var item = 0; item < shards; item++)
        {
            var count = runs.Count(r => r.Item == item);
            if (count != 1)
            {
                problems.Add($"item {item} ran {count} time(s)");
            }
        }

        problems.AddRange(runs.Where(r => r.Item >= shards).Select(r => $"item {r.Item} is out of range"));
        if (problems.Count > 0)
        {
            throw new Xunit.Sdk.XunitException($"Fire {fireTime:O}: {string.Join("; ", problems)}.\nExecution log:\n{Describe()}");
        }

        return runs.ToDictionary(r => r.Item, r => r.Instance);
    }

    /// <summary>Asserts that no item ever ran on two instances (or twice) at overlapping times.</summary>
    public void AssertNoOverlap(string? job = null)
    {
        var runs = Runs.Where(r => job is null || r.Job == job).ToList();
        foreach (var group in runs.GroupBy(r => (r.Job, r.Item)))
        {
            var ordered = group.OrderBy(r => r.Started).ToList();
            for (var i = 1; i < ordered.Count; i++)
            {
                var previous = ordered[i - 1];
                if (previous.Ended is null || previous.Ended > ordered[i].Started)
                {
                    throw new Xunit.Sdk.XunitException($"Item {group.Key.Item} of {group.Key.Job} overlapped: {previous} and {ordered[i]}.\nExecution log:\n{Describe()}");
                }
            }
        }
    }

    public string Describe() => string.Join("\n", Runs.OrderBy(r => r.Started).ThenBy(r => r.Item).Select(r => "  " + r));

    private void Signal()
    {
        TaskCompletionSource previous;
        lock (_gate)
        {
            previous = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
    }
}
