using System.Diagnostics.CodeAnalysis;

namespace ShardedJobs.Cluster;

/// <summary>
/// Finds a job's sharding strategy by name: the three built-ins (also under ElasticJob's type names <c>AVG_ALLOCATION</c>,
/// <c>ODEVITY</c>, <c>ROUND_ROBIN</c>) and the custom ones registered in DI as <see cref="IShardingStrategy"/>.
/// Names are ordinal and case-sensitive. A null or empty name means the default, <see cref="ShardingStrategies.AverageAllocation"/>
/// (ElasticJob's default when no type is configured).
/// </summary>
internal sealed class ShardingStrategyResolver
{
    /// <summary>ElasticJob's strategy type names, accepted as aliases of ours.</summary>
    internal static readonly IReadOnlyDictionary<string, string> ElasticJobAliases = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["AVG_ALLOCATION"] = ShardingStrategies.AverageAllocation,
        ["ODEVITY"] = ShardingStrategies.OddEvenByName,
        ["ROUND_ROBIN"] = ShardingStrategies.RoundRobinByName,
    };

    private readonly Dictionary<string, IShardingStrategy> byName = new(StringComparer.Ordinal);
    private readonly List<string> knownNames = [];

    /// <summary>Only the built-ins.</summary>
    public ShardingStrategyResolver()
        : this([])
    {
    }

    /// <param name="customStrategies">The strategies registered in DI. Instances of the built-in types are accepted and ignored (the built-ins are always known).</param>
    /// <exception cref="ArgumentException">A custom strategy is null, has a blank or untrimmed name, reuses a built-in name or alias, or shares its name with another custom strategy.</exception>
    public ShardingStrategyResolver(IEnumerable<IShardingStrategy> customStrategies)
    {
        ArgumentNullException.ThrowIfNull(customStrategies);
        foreach (var builtIn in new IShardingStrategy[] { new AverageAllocationStrategy(), new OddEvenByNameStrategy(), new RoundRobinByNameStrategy() })
        {
            byName.Add(builtIn.Name, builtIn);
            knownNames.Add(builtIn.Name);
        }

        foreach (var (alias, name) in ElasticJobAliases)
        {
            byName.Add(alias, byName[name]);
        }

        foreach (var strategy in customStrategies)
        {
            if (strategy is null)
            {
                throw new ArgumentException("A null IShardingStrategy is registered.", nameof(customStrategies));
            }

            if (strategy is AverageAllocationStrategy or OddEvenByNameStrategy or RoundRobinByNameStrategy)
            {
                continue;
            }

            var name = strategy.Name;
            var type = strategy.GetType().FullName;
            if (string.IsNullOrWhiteSpace(name) || name.Trim().Length != name.Length)
            {
                throw new ArgumentException(
                    $"The sharding strategy {type} has the name '{name}'. Give it a non-empty name without leading or trailing white space; jobs select it by that name.",
                    nameof(customStrategies));
            }

            if (byName.TryGetValue(name, out var existing))
            {
                var problem = existing is AverageAllocationStrategy or OddEvenByNameStrategy or RoundRobinByNameStrategy
                    ? $"reuses the name of a built-in strategy ({string.Join(", ", knownNames.Take(3))}, with ElasticJob's aliases {string.Join(", ", ElasticJobAliases.Keys)})"
                    : $"has the same name as {existing.GetType().FullName}, also registered";
                throw new ArgumentException(
                    $"The sharding strategy {type} named '{name}' {problem}. Each strategy needs a name of its own; rename one.",
                    nameof(customStrategies));
            }

            byName.Add(name, strategy);
            knownNames.Add(name);
        }
    }

    /// <summary>The names jobs can use: the built-ins, then the custom ones in registration order (aliases not included).</summary>
    public IReadOnlyList<string> KnownNames => knownNames;

    /// <summary>Finds the strategy a job names.</summary>
    /// <param name="name">The strategy's name or ElasticJob alias; null or empty means <see cref="ShardingStrategies.AverageAllocation"/>.</param>
    /// <param name="strategy">The strategy, when found.</param>
    /// <param name="error">When not found: a message naming the unknown strategy and listing the known names.</param>
    public bool TryResolve(string? name, [NotNullWhen(true)] out IShardingStrategy? strategy, [NotNullWhen(false)] out string? error)
    {
        if (byName.TryGetValue(string.IsNullOrEmpty(name) ? ShardingStrategies.AverageAllocation : name, out strategy))
        {
            error = null;
            return true;
        }

        var hint = knownNames.Concat(ElasticJobAliases.Keys).FirstOrDefault(known => string.Equals(known, name, StringComparison.OrdinalIgnoreCase));
        error = $"Unknown sharding strategy '{name}'."
            + (hint is null ? string.Empty : $" Did you mean '{hint}'? Names are case-sensitive.")
            + $" Known strategies: {string.Join(", ", knownNames)}"
            + $" (ElasticJob's names {string.Join(", ", ElasticJobAliases.Keys)} are accepted too)."
            + $" To use a custom strategy, register it in DI as IShardingStrategy with Name '{name}'.";
        return false;
    }

    /// <summary>Finds the strategy a job names, or throws.</summary>
    /// <exception cref="InvalidOperationException">No strategy has that name; the message lists the known names.</exception>
    public IShardingStrategy Resolve(string? name) =>
        TryResolve(name, out var strategy, out var error) ? strategy : throw new InvalidOperationException(error);
}
