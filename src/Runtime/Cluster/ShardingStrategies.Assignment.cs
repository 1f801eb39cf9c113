namespace ShardedJobs.Cluster;

/// <summary>
/// Runs a sharding strategy and checks what it returns before the runtime writes it to the registry: every item
/// <c>0..shards-1</c> exactly once, only the given instances, nothing negative or out of range. A strategy that breaks the
/// rule (a custom one, typically) fails loudly with an <see cref="InvalidOperationException"/> naming it and the problem,
/// instead of leaving items unowned or owned twice.
/// </summary>
internal static class ShardingAssignment
{
    /// <summary>How many offending items or instances one message lists before saying how many more there are.</summary>
    private const int MaxListed = 10;

    /// <summary>
    /// Calls <paramref name="strategy"/> and returns its checked assignment (see <see cref="Validate"/>). No instances give an
    /// empty assignment without calling the strategy.
    /// </summary>
    /// <exception cref="ArgumentException">The instance list is invalid (null ids, duplicates) or <paramref name="shards"/> is negative: the caller's fault.</exception>
    /// <exception cref="InvalidOperationException">The strategy threw, or returned an invalid assignment.</exception>
    public static IReadOnlyDictionary<string, IReadOnlyList<int>> Assign(IShardingStrategy strategy, IReadOnlyList<string> instances, string jobName, int shards)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        ShardingAlgorithms.CheckArguments(instances, jobName, shards);
        if (instances.Count == 0)
        {
            return new Dictionary<string, IReadOnlyList<int>>(StringComparer.Ordinal);
        }

        IReadOnlyDictionary<string, IReadOnlyList<int>>? result;
        try
        {
            result = strategy.Assign(instances, jobName, shards);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"The sharding strategy {Describe(strategy)} threw while sharding job '{jobName}' ({shards} items over {instances.Count} instances): {e.Message}",
                e);
        }

        return Validate(strategy, instances, jobName, shards, result);
    }

    /// <summary>
    /// Checks <paramref name="result"/>, what <paramref name="strategy"/> returned for <paramref name="instances"/> and
    /// <paramref name="shards"/> items, and returns it normalised: every given instance present, in the given order, with its
    /// items in ascending order (an instance the strategy left out gets no items).
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// The result is null, has a null item list, names an instance that was not given, holds a negative or out-of-range item,
    /// holds an item twice, or (with instances given) misses an item. The message names the strategy, the job and every problem found.
    /// </exception>
    public static IReadOnlyDictionary<string, IReadOnlyList<int>> Validate(
        IShardingStrategy strategy, IReadOnlyList<string> instances, string jobName, int shards, IReadOnlyDictionary<string, IReadOnlyList<int>>? result)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        ShardingAlgorithms.CheckArguments(instances, jobName, shards);
        if (result is null)
        {
            throw Invalid(strategy, instances, jobName, shards, ["it returned null instead of an assignment"]);
        }

        var given = new HashSet<string>(instances, StringComparer.Ordinal);
        var owners = new string?[shards];
        var byInstance = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        var problems = new List<string>();
        var unknown = new List<string>();
        var nullLists = new List<string>();
        var outOfRange = new List<string>();
        var twice = new List<string>();
        foreach (var (instance, items) in result)
        {
            if (instance is null || !given.Contains(instance))
            {
                unknown.Add(instance is null ? "(null)" : $"'{instance}'");
                continue;
            }

            if (items is null)
            {
                nullLists.Add($"'{instance}'");
                continue;
            }

            var list = new List<int>(items.Count);
            byInstance[instance] = list;
            foreach (var item in items)
            {
                if (item < 0 || item >= shards)
                {
                    outOfRange.Add($"{item} (on '{instance}')");
                }
                else if (owners[item] is { } owner)
                {
                    twice.Add(owner == instance ? $"{item} (twice on '{instance}')" : $"{item} (on '{owner}' and '{instance}')");
                }
                else
                {
                    owners[item] = instance;
                    list.Add(item);
                }
            }
        }

        var missing = Enumerable.Range(0, shards).Where(item => owners[item] is null).Select(item => item.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Report(problems, unknown, "it names instances that were not given", $"only these are available: {string.Join(", ", instances.Take(MaxListed).Select(i => $"'{i}'"))}{(instances.Count > MaxListed ? ", ..." : string.Empty)}");
        Report(problems, nullLists, "it returned null instead of an item list for instances", "use an empty list for an instance without items");
        Report(problems, outOfRange, $"it assigned items outside {Range(shards)}", null);
        Report(problems, twice, "it assigned items more than once", null);
        Report(problems, missing, "it assigned no instance to items", null);
        if (problems.Count > 0)
        {
            throw Invalid(strategy, instances, jobName, shards, problems);
        }

        var normalised = new Dictionary<string, IReadOnlyList<int>>(instances.Count, StringComparer.Ordinal);
        foreach (var instance in instances)
        {
            if (byInstance.TryGetValue(instance, out var list))
            {
                list.Sort();
                normalised.Add(instance, list.ToArray());
            }
            else
            {
                normalised.Add(instance, []);
            }
        }

        return normalised;
    }

    private static void Report(List<string> problems, List<string> offenders, string what, string? advice)
    {
        if (offenders.Count == 0)
        {
            return;
        }

        var listed = string.Join(", ", offenders.Take(MaxListed)) + (offenders.Count > MaxListed ? $" and {offenders.Count - MaxListed} more" : string.Empty);
        problems.Add(advice is null ? $"{what}: {listed}" : $"{what}: {listed} ({advice})");
    }

    private static InvalidOperationException Invalid(IShardingStrategy strategy, IReadOnlyList<string> instances, string jobName, int shards, IEnumerable<string> problems) =>
        new($"The sharding strategy {Describe(strategy)} returned an invalid assignment for job '{jobName}' ({shards} items over {instances.Count} instances): "
            + string.Join("; ", problems)
            + $". A strategy must give every item of {Range(shards)} to exactly one of the given instances; the assignment was not applied.");

    private static string Range(int shards) => shards == 0 ? "the job (it has no items)" : $"0..{shards - 1}";

    private static string Describe(IShardingStrategy strategy)
    {
        string name;
        try
        {
            name = strategy.Name;
        }
        catch (Exception e)
        {
            name = $"(Name threw {e.GetType().Name})";
        }

        return $"'{name}' ({strategy.GetType().FullName})";
    }
}
