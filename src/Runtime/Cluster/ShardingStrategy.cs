using ShardedJobs.Cluster;

namespace ShardedJobs
{
    /// <summary>
    /// A way to share a job's items out over its available instances. Register custom ones in DI as
    /// <see cref="IShardingStrategy"/>; a job selects one by <see cref="Name"/> (<see cref="ShardedJobAttribute.ShardingStrategy"/>).
    /// The built-in ones are named in <see cref="ShardingStrategies"/>.
    /// </summary>
    /// <remarks>
    /// Only the leader calls a strategy, when the cluster is re-sharded. The runtime checks what a strategy returns
    /// (every item exactly once, given instances only) and refuses to write an assignment that breaks that rule.
    /// A strategy must be deterministic and free of side effects: it is handed the same input for the same cluster.
    /// </remarks>
    public interface IShardingStrategy
    {
        /// <summary>The name jobs select this strategy by (ordinal, case-sensitive).</summary>
        string Name { get; }

        /// <summary>Assigns the items <c>0..shards-1</c> to the available instances.</summary>
        /// <param name="instances">
        /// The available instance ids in the order ElasticJob passes them: descending ordinal order of the id string
        /// (so <c>10.0.0.9@-@77</c> comes before <c>10.0.0.10@-@5</c>). Never contains duplicates.
        /// </param>
        /// <param name="jobName">The job's name.</param>
        /// <param name="shards">The job's total item count (at least 0).</param>
        /// <returns>
        /// For every given instance (possibly with an empty list), its items in ascending order. Every item
        /// <c>0..shards-1</c> appears exactly once when <paramref name="instances"/> is non-empty; no instances give an empty result.
        /// </returns>
        IReadOnlyDictionary<string, IReadOnlyList<int>> Assign(IReadOnlyList<string> instances, string jobName, int shards);
    }
}

namespace ShardedJobs.Cluster
{
    /// <summary>
    /// ElasticJob's <c>AVG_ALLOCATION</c>: with <c>n</c> instances and <c>N</c> items, <c>q = N div n</c> and <c>r = N mod n</c>;
    /// the instance at position <c>k</c> gets the block <c>k·q .. k·q+q-1</c>, and the first <c>r</c> instances get one
    /// leftover item each (<c>q·n + k</c>). With <c>[C, B, A]</c> and 8 items: C <c>[0,1,6]</c>, B <c>[2,3,7]</c>, A <c>[4,5]</c>.
    /// </summary>
    public sealed class AverageAllocationStrategy : IShardingStrategy
    {
        /// <inheritdoc/>
        public string Name => ShardingStrategies.AverageAllocation;

        /// <inheritdoc/>
        public IReadOnlyDictionary<string, IReadOnlyList<int>> Assign(IReadOnlyList<string> instances, string jobName, int shards)
        {
            ShardingAlgorithms.CheckArguments(instances, jobName, shards);
            return ShardingAlgorithms.AverageAllocation(instances, shards);
        }
    }

    /// <summary>
    /// ElasticJob's <c>ODEVITY</c>: the Java <c>String.hashCode()</c> of the job name, widened to 64 bits; when
    /// <c>hash % 2 == 0</c> (Java remainder: a negative odd hash gives -1 and counts as odd) the instance list is reversed;
    /// then average allocation. The caller's list is not modified (ElasticJob reverses it in place).
    /// </summary>
    public sealed class OddEvenByNameStrategy : IShardingStrategy
    {
        /// <inheritdoc/>
        public string Name => ShardingStrategies.OddEvenByName;

        /// <inheritdoc/>
        public IReadOnlyDictionary<string, IReadOnlyList<int>> Assign(IReadOnlyList<string> instances, string jobName, int shards)
        {
            ShardingAlgorithms.CheckArguments(instances, jobName, shards);
            long hash = ShardingAlgorithms.JavaStringHashCode(jobName);
            if (hash % 2 != 0)
            {
                return ShardingAlgorithms.AverageAllocation(instances, shards);
            }

            var reversed = new string[instances.Count];
            for (var i = 0; i < reversed.Length; i++)
            {
                reversed[i] = instances[instances.Count - 1 - i];
            }

            return ShardingAlgorithms.AverageAllocation(reversed, shards);
        }
    }

    /// <summary>
    /// ElasticJob's <c>ROUND_ROBIN</c>: <c>offset = |hash(jobName)| mod n</c>, the list rotated so that position <c>i</c>
    /// holds instance <c>(i + offset) mod n</c>, then average allocation. See <see cref="ShardingAlgorithms.RoundRobinOffset"/>
    /// for the one hash (<see cref="int.MinValue"/>) where ElasticJob itself fails and what we do instead.
    /// </summary>
    public sealed class RoundRobinByNameStrategy : IShardingStrategy
    {
        /// <inheritdoc/>
        public string Name => ShardingStrategies.RoundRobinByName;

        /// <inheritdoc/>
        public IReadOnlyDictionary<string, IReadOnlyList<int>> Assign(IReadOnlyList<string> instances, string jobName, int shards)
        {
            ShardingAlgorithms.CheckArguments(instances, jobName, shards);
            var n = instances.Count;
            if (n == 0)
            {
                return ShardingAlgorithms.AverageAllocation(instances, shards);
            }

            var offset = ShardingAlgorithms.RoundRobinOffset(ShardingAlgorithms.JavaStringHashCode(jobName), n);
            var rotated = new string[n];
            for (var i = 0; i < n; i++)
            {
                rotated[i] = instances[(i + offset) % n];
            }

            return ShardingAlgorithms.AverageAllocation(rotated, shards);
        }
    }

    /// <summary>The arithmetic shared by the built-in strategies, kept exactly as ElasticJob computes it.</summary>
    internal static class ShardingAlgorithms
    {
        /// <summary>Java's <c>String.hashCode()</c>: <c>h = 31·h + c</c> over the UTF-16 code units, in wrapping 32-bit arithmetic.</summary>
        internal static int JavaStringHashCode(string s)
        {
            ArgumentNullException.ThrowIfNull(s);
            var h = 0;
            foreach (var c in s)
            {
                h = unchecked((31 * h) + c);
            }

            return h;
        }

        /// <summary>
        /// ElasticJob's rotation offset, <c>Math.abs(hash) % n</c>, for <paramref name="n"/> ≥ 1; always in <c>0..n-1</c>.
        /// </summary>
        /// <remarks>
        /// In Java, <c>Math.abs(Integer.MIN_VALUE)</c> is still <c>Integer.MIN_VALUE</c>, so for a job name whose hash is
        /// <c>Integer.MIN_VALUE</c> (e.g. <c>"polygenelubricants"</c>) the offset is <c>-(2^31 mod n)</c>: 0 when <c>n</c> is a
        /// power of two (no rotation), otherwise negative, and ElasticJob's rotation then fails with an index out of bounds,
        /// so that job is never sharded. We take the absolute value in 64 bits instead — the documented formula
        /// <c>|hash| mod n</c> without the overflow — giving <c>2^31 mod n</c>. This equals ElasticJob's offset for every other
        /// hash and, for <c>Integer.MIN_VALUE</c>, wherever ElasticJob produces a result at all (<c>n</c> a power of two: 0);
        /// e.g. 3 instances → offset 2, 5 instances → offset 3.
        /// </remarks>
        internal static int RoundRobinOffset(int hash, int n)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
            return (int)(Math.Abs((long)hash) % n);
        }

        /// <summary>The average allocation over <paramref name="order"/>, as ElasticJob computes it; empty order → empty result.</summary>
        internal static Dictionary<string, IReadOnlyList<int>> AverageAllocation(IReadOnlyList<string> order, int shards)
        {
            var n = order.Count;
            var result = new Dictionary<string, IReadOnlyList<int>>(n, StringComparer.Ordinal);
            if (n == 0)
            {
                return result;
            }

            var perInstance = shards / n;
            var leftovers = shards % n;
            for (var k = 0; k < n; k++)
            {
                var items = new int[perInstance + (k < leftovers ? 1 : 0)];
                for (var j = 0; j < perInstance; j++)
                {
                    items[j] = (k * perInstance) + j;
                }

                if (k < leftovers)
                {
                    items[perInstance] = (perInstance * n) + k;
                }

                result.Add(order[k], items);
            }

            return result;
        }

        /// <summary>Rejects what no caller of a strategy may pass: null lists or ids, duplicate ids, a negative item count.</summary>
        internal static void CheckArguments(IReadOnlyList<string> instances, string jobName, int shards)
        {
            ArgumentNullException.ThrowIfNull(instances);
            ArgumentNullException.ThrowIfNull(jobName);
            ArgumentOutOfRangeException.ThrowIfNegative(shards);
            var seen = new HashSet<string>(instances.Count, StringComparer.Ordinal);
            for (var i = 0; i < instances.Count; i++)
            {
                var instance = instances[i] ?? throw new ArgumentException($"The instance list has a null id at position {i}.", nameof(instances));
                if (!seen.Add(instance))
                {
                    throw new ArgumentException($"The instance list names '{instance}' more than once; each available instance must appear exactly once.", nameof(instances));
                }
            }
        }
    }
}
