using System.Numerics;
using ShardedJobs.Cluster;
using Xunit;

namespace ShardedJobs.Tests.Cluster;

public sealed class ShardingStrategyTests
{
    private static readonly string[] CBA = ["C", "B", "A"];

    private static readonly IReadOnlyDictionary<string, IReadOnlyList<int>> Empty = new Dictionary<string, IReadOnlyList<int>>();

    // Job names covering both parities, several rotation offsets and the Integer.MIN_VALUE hash.
    public static readonly TheoryData<string> JobNames = ["order-sync", "simpleJob", "polygenelubricants", "jobA", "a", ""];

    // ---- ElasticJob's literal examples (reference §3.4, scenarios 1-3); layouts are written in input order ----

    [Theory]
    [InlineData(9, "C[0,1,2] B[3,4,5] A[6,7,8]")]
    [InlineData(8, "C[0,1,6] B[2,3,7] A[4,5]")]
    [InlineData(10, "C[0,1,2,9] B[3,4,5] A[6,7,8]")]
    [InlineData(2, "C[0] B[1] A[]")]
    [InlineData(0, "C[] B[] A[]")]
    public void Scenario_1_average_allocation(int shards, string expected)
    {
        Assert.Equal(expected, Layout(new AverageAllocationStrategy().Assign(CBA, "order-sync", shards), CBA));
    }

    [Fact]
    public void Scenario_1_no_instances_give_an_empty_result()
    {
        Assert.Empty(new AverageAllocationStrategy().Assign([], "order-sync", 9));
        Assert.Empty(new OddEvenByNameStrategy().Assign([], "order-sync", 9));
        Assert.Empty(new RoundRobinByNameStrategy().Assign([], "order-sync", 9));
    }

    [Fact]
    public void Java_hashes_of_the_reference_job_names()
    {
        // Checked against a JVM: "x".hashCode().
        Assert.Equal(710219194, ShardingAlgorithms.JavaStringHashCode("order-sync"));
        Assert.Equal(-2124399445, ShardingAlgorithms.JavaStringHashCode("simpleJob"));
        Assert.Equal(int.MinValue, ShardingAlgorithms.JavaStringHashCode("polygenelubricants"));
        Assert.Equal(3267620, ShardingAlgorithms.JavaStringHashCode("jobA"));
        Assert.Equal(97, ShardingAlgorithms.JavaStringHashCode("a"));
        Assert.Equal(0, ShardingAlgorithms.JavaStringHashCode(""));
    }

    [Theory]
    [MemberData(nameof(JobNames))]
    public void Java_hash_matches_an_independent_computation(string jobName)
    {
        Assert.Equal(ReferenceJavaHash(jobName), ShardingAlgorithms.JavaStringHashCode(jobName));
    }

    [Fact]
    public void Scenario_2_odd_even()
    {
        var strategy = new OddEvenByNameStrategy();

        // order-sync: hash 710219194, even -> the list is reversed.
        Assert.Equal("C[] B[1] A[0]", Layout(strategy.Assign(CBA, "order-sync", 2), CBA));

        // simpleJob: hash -2124399445, odd (Java remainder -1) -> the list is kept.
        Assert.Equal("C[0] B[1] A[]", Layout(strategy.Assign(CBA, "simpleJob", 2), CBA));
    }

    [Fact]
    public void Scenario_3_round_robin()
    {
        var strategy = new RoundRobinByNameStrategy();

        // order-sync, 3 instances: offset 710219194 mod 3 = 1 -> [B, A, C].
        Assert.Equal(1, ShardingAlgorithms.RoundRobinOffset(710219194, 3));
        Assert.Equal("C[] B[0] A[1]", Layout(strategy.Assign(CBA, "order-sync", 2), CBA));
        Assert.Equal("C[6,7,8] B[0,1,2] A[3,4,5]", Layout(strategy.Assign(CBA, "order-sync", 9), CBA));
    }

    [Fact]
    public void Round_robin_with_an_Integer_MIN_VALUE_hash_uses_the_true_absolute_value()
    {
        // Java: Math.abs(MIN_VALUE) % n is -(2^31 mod n): ElasticJob fails (negative index) unless n is a power of two (offset 0).
        // We use |hash| in 64 bits: offset = 2^31 mod n, never negative, and equal to Java's where Java has a result.
        var strategy = new RoundRobinByNameStrategy();
        const string job = "polygenelubricants";

        Assert.Equal(0, ShardingAlgorithms.RoundRobinOffset(int.MinValue, 1));
        Assert.Equal(0, ShardingAlgorithms.RoundRobinOffset(int.MinValue, 2));
        Assert.Equal(2, ShardingAlgorithms.RoundRobinOffset(int.MinValue, 3));
        Assert.Equal(0, ShardingAlgorithms.RoundRobinOffset(int.MinValue, 4));
        Assert.Equal(3, ShardingAlgorithms.RoundRobinOffset(int.MinValue, 5));
        Assert.Equal(1, ShardingAlgorithms.RoundRobinOffset(int.MaxValue, 3));

        Assert.Equal("C[1] B[2] A[0]", Layout(strategy.Assign(CBA, job, 3), CBA));
        string[] four = ["D", "C", "B", "A"];
        Assert.Equal("D[0] C[1] B[2] A[3]", Layout(strategy.Assign(four, job, 4), four)); // what ElasticJob itself gives
        string[] five = ["E", "D", "C", "B", "A"];
        Assert.Equal("E[2] D[3] C[4] B[0] A[1]", Layout(strategy.Assign(five, job, 5), five));
    }

    [Fact]
    public void Instance_ids_are_used_in_the_order_given()
    {
        // Descending ordinal order puts 10.0.0.9 before 10.0.0.10: the strategy does not re-sort.
        string[] ids = ["10.0.0.9@-@77", "10.0.0.10@-@5"];
        Assert.True(string.CompareOrdinal(ids[0], ids[1]) > 0);

        Assert.Equal("10.0.0.9@-@77[0,1,4] 10.0.0.10@-@5[2,3]", Layout(new AverageAllocationStrategy().Assign(ids, "job", 5), ids));
    }

    // ---- full tables against an independent reference ----

    public static TheoryData<string, string, int> Tables()
    {
        var data = new TheoryData<string, string, int>();
        foreach (var strategy in new[] { ShardingStrategies.AverageAllocation, ShardingStrategies.OddEvenByName, ShardingStrategies.RoundRobinByName })
        {
            foreach (var jobName in (string[])["order-sync", "simpleJob", "polygenelubricants", "jobA", "a", ""])
            {
                for (var instances = 1; instances <= 5; instances++)
                {
                    data.Add(strategy, jobName, instances);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Tables))]
    public void Every_layout_for_1_to_10_items_matches_the_reference(string strategyName, string jobName, int instanceCount)
    {
        var strategy = new ShardingStrategyResolver().Resolve(strategyName);
        var instances = "EDCBA"[(5 - instanceCount)..].Select(c => c.ToString()).ToArray(); // descending, as ElasticJob passes them
        var before = instances.ToArray();

        for (var shards = 0; shards <= 10; shards++)
        {
            var actual = strategy.Assign(instances, jobName, shards);
            var expected = ReferenceAssign(strategyName, instances, jobName, shards);

            Assert.Equal(Layout(expected, instances), Layout(actual, instances));
            AssertInvariants(actual, instances, shards);
            Assert.Equal(Layout(actual, instances), Layout(ShardingAssignment.Assign(strategy, instances, jobName, shards), instances));
        }

        Assert.Equal(before, instances); // never reversed or rotated in place (ElasticJob's odd-even reverses the caller's list)
    }

    [Fact]
    public void A_literal_table_for_five_instances()
    {
        string[] five = ["E", "D", "C", "B", "A"];

        Assert.Equal("E[0,5] D[1,6] C[2] B[3] A[4]", Layout(new AverageAllocationStrategy().Assign(five, "x", 7), five));
        Assert.Equal("E[0,1] D[2,3] C[4,5] B[6,7] A[8,9]", Layout(new AverageAllocationStrategy().Assign(five, "x", 10), five));

        // order-sync: even -> reversed [A, B, C, D, E].
        Assert.Equal("E[] D[] C[] B[1] A[0]", Layout(new OddEvenByNameStrategy().Assign(five, "order-sync", 2), five));

        // order-sync over 5: offset 710219194 mod 5 = 4 -> [A, E, D, C, B].
        Assert.Equal("E[1] D[2] C[3] B[4] A[0,5]", Layout(new RoundRobinByNameStrategy().Assign(five, "order-sync", 6), five));

        // simpleJob over 5: offset 2124399445 mod 5 = 0 -> no rotation.
        Assert.Equal("E[0,5] D[1] C[2] B[3] A[4]", Layout(new RoundRobinByNameStrategy().Assign(five, "simpleJob", 6), five));
    }

    [Fact]
    public void Names_are_the_public_constants()
    {
        Assert.Equal("AverageAllocation", new AverageAllocationStrategy().Name);
        Assert.Equal("OddEvenByName", new OddEvenByNameStrategy().Name);
        Assert.Equal("RoundRobinByName", new RoundRobinByNameStrategy().Name);
        Assert.Equal(ShardingStrategies.AverageAllocation, new AverageAllocationStrategy().Name);
        Assert.Equal(ShardingStrategies.OddEvenByName, new OddEvenByNameStrategy().Name);
        Assert.Equal(ShardingStrategies.RoundRobinByName, new RoundRobinByNameStrategy().Name);
    }

    [Fact]
    public void Invalid_arguments_are_rejected()
    {
        IShardingStrategy strategy = new AverageAllocationStrategy();

        Assert.Throws<ArgumentOutOfRangeException>(() => strategy.Assign(CBA, "job", -1));
        Assert.Throws<ArgumentNullException>(() => strategy.Assign(null!, "job", 1));
        Assert.Throws<ArgumentNullException>(() => strategy.Assign(CBA, null!, 1));
        var duplicate = Assert.Throws<ArgumentException>(() => new OddEvenByNameStrategy().Assign(["B", "A", "B"], "job", 3));
        Assert.Contains("'B' more than once", duplicate.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new RoundRobinByNameStrategy().Assign(["B", null!], "job", 3));
    }

    // ---- resolver ----

    [Theory]
    [InlineData("AverageAllocation", typeof(AverageAllocationStrategy))]
    [InlineData("OddEvenByName", typeof(OddEvenByNameStrategy))]
    [InlineData("RoundRobinByName", typeof(RoundRobinByNameStrategy))]
    [InlineData("AVG_ALLOCATION", typeof(AverageAllocationStrategy))]
    [InlineData("ODEVITY", typeof(OddEvenByNameStrategy))]
    [InlineData("ROUND_ROBIN", typeof(RoundRobinByNameStrategy))]
    [InlineData("", typeof(AverageAllocationStrategy))]
    [InlineData(null, typeof(AverageAllocationStrategy))]
    public void Resolver_knows_the_built_ins_and_ElasticJobs_names(string? name, Type expected)
    {
        var resolver = new ShardingStrategyResolver([new FixedStrategy("Custom", _ => Empty)]);

        Assert.True(resolver.TryResolve(name, out var strategy, out var error));
        Assert.IsType(expected, strategy);
        Assert.Null(error);
        Assert.IsType(expected, resolver.Resolve(name));
    }

    [Fact]
    public void Resolver_finds_custom_strategies_by_name()
    {
        var first = new FixedStrategy("ByRegion", _ => Empty);
        var second = new FixedStrategy("ByWeight", _ => Empty);
        var resolver = new ShardingStrategyResolver([first, second]);

        Assert.Same(first, resolver.Resolve("ByRegion"));
        Assert.Same(second, resolver.Resolve("ByWeight"));
        Assert.Equal(new[] { "AverageAllocation", "OddEvenByName", "RoundRobinByName", "ByRegion", "ByWeight" }, resolver.KnownNames);
    }

    [Fact]
    public void Unknown_names_are_reported_with_the_known_ones()
    {
        var resolver = new ShardingStrategyResolver([new FixedStrategy("ByRegion", _ => Empty)]);

        Assert.False(resolver.TryResolve("Weighted", out var strategy, out var error));
        Assert.Null(strategy);
        Assert.Contains("Unknown sharding strategy 'Weighted'", error, StringComparison.Ordinal);
        Assert.Contains("Known strategies: AverageAllocation, OddEvenByName, RoundRobinByName, ByRegion", error, StringComparison.Ordinal);
        Assert.Contains("AVG_ALLOCATION, ODEVITY, ROUND_ROBIN", error, StringComparison.Ordinal);
        Assert.Contains("register it in DI as IShardingStrategy with Name 'Weighted'", error, StringComparison.Ordinal);

        var thrown = Assert.Throws<InvalidOperationException>(() => resolver.Resolve("Weighted"));
        Assert.Equal(error, thrown.Message);
    }

    [Theory]
    [InlineData("averageallocation", "AverageAllocation")]
    [InlineData("byregion", "ByRegion")]
    [InlineData("round_robin", "ROUND_ROBIN")]
    public void Names_are_case_sensitive_with_a_hint(string name, string hint)
    {
        var resolver = new ShardingStrategyResolver([new FixedStrategy("ByRegion", _ => Empty)]);

        Assert.False(resolver.TryResolve(name, out _, out var error));
        Assert.Contains($"Unknown sharding strategy '{name}'. Did you mean '{hint}'?", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_custom_names_are_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            new ShardingStrategyResolver([new FixedStrategy("ByRegion", _ => Empty), new OtherStrategy("ByRegion")]));

        Assert.Contains("'ByRegion'", error.Message, StringComparison.Ordinal);
        Assert.Contains(typeof(FixedStrategy).FullName!, error.Message, StringComparison.Ordinal);
        Assert.Contains(typeof(OtherStrategy).FullName!, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("AverageAllocation")]
    [InlineData("OddEvenByName")]
    [InlineData("RoundRobinByName")]
    [InlineData("AVG_ALLOCATION")]
    [InlineData("ODEVITY")]
    [InlineData("ROUND_ROBIN")]
    public void A_custom_strategy_cannot_take_a_built_in_name(string name)
    {
        var error = Assert.Throws<ArgumentException>(() => new ShardingStrategyResolver([new FixedStrategy(name, _ => Empty)]));

        Assert.Contains($"named '{name}' reuses the name of a built-in strategy", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData(" ByRegion")]
    [InlineData(null)]
    public void A_custom_strategy_needs_a_usable_name(string? name)
    {
        var error = Assert.Throws<ArgumentException>(() => new ShardingStrategyResolver([new FixedStrategy(name!, _ => Empty)]));

        Assert.Contains("Give it a non-empty name", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Built_in_instances_registered_in_DI_are_accepted()
    {
        var resolver = new ShardingStrategyResolver([new AverageAllocationStrategy(), new RoundRobinByNameStrategy()]);

        Assert.Equal(new[] { "AverageAllocation", "OddEvenByName", "RoundRobinByName" }, resolver.KnownNames);
    }

    // ---- validation of what a strategy returns ----

    [Fact]
    public void A_valid_custom_assignment_is_normalised()
    {
        // Leaves A out and lists items unordered: both allowed, and normalised.
        var strategy = new FixedStrategy("Reverse", _ => new Dictionary<string, IReadOnlyList<int>> { ["B"] = [2, 0], ["C"] = [1] });

        var result = ShardingAssignment.Assign(strategy, CBA, "job", 3);

        Assert.Equal("C[1] B[0,2] A[]", Layout(result, CBA));
        Assert.Equal(CBA, result.Keys);
    }

    [Theory]
    [InlineData("missing", "it assigned no instance to items: 2")]
    [InlineData("duplicate", "it assigned items more than once: 1 (on 'C' and 'B')")]
    [InlineData("twice", "it assigned items more than once: 0 (twice on 'C')")]
    [InlineData("unknown", "it names instances that were not given: 'D' (only these are available: 'C', 'B', 'A')")]
    [InlineData("negative", "it assigned items outside 0..2: -1 (on 'A')")]
    [InlineData("beyond", "it assigned items outside 0..2: 3 (on 'A')")]
    [InlineData("nullList", "it returned null instead of an item list for instances: 'A'")]
    [InlineData("null", "it returned null instead of an assignment")]
    public void A_bad_custom_assignment_is_refused_with_the_strategy_and_the_problem(string kind, string problem)
    {
        IReadOnlyDictionary<string, IReadOnlyList<int>>? Bad(IReadOnlyList<string> _) => kind switch
        {
            "missing" => new Dictionary<string, IReadOnlyList<int>> { ["C"] = [0], ["B"] = [1] },
            "duplicate" => new Dictionary<string, IReadOnlyList<int>> { ["C"] = [0, 1], ["B"] = [1, 2] },
            "twice" => new Dictionary<string, IReadOnlyList<int>> { ["C"] = [0, 0, 1], ["B"] = [2] },
            "unknown" => new Dictionary<string, IReadOnlyList<int>> { ["C"] = [0, 1], ["D"] = [2] },
            "negative" => new Dictionary<string, IReadOnlyList<int>> { ["C"] = [0, 1, 2], ["A"] = [-1] },
            "beyond" => new Dictionary<string, IReadOnlyList<int>> { ["C"] = [0, 1, 2], ["A"] = [3] },
            "nullList" => new Dictionary<string, IReadOnlyList<int>> { ["C"] = [0, 1, 2], ["A"] = null! },
            _ => null,
        };

        var error = Assert.Throws<InvalidOperationException>(() => ShardingAssignment.Assign(new FixedStrategy("Broken", Bad), CBA, "order-sync", 3));

        Assert.StartsWith($"The sharding strategy 'Broken' ({typeof(FixedStrategy).FullName}) returned an invalid assignment for job 'order-sync' (3 items over 3 instances): ", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.EndsWith("A strategy must give every item of 0..2 to exactly one of the given instances; the assignment was not applied.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_problem_is_reported_at_once_and_long_lists_are_cut()
    {
        var strategy = new FixedStrategy("Lazy", _ => new Dictionary<string, IReadOnlyList<int>> { ["C"] = [0, 0], ["Z"] = [1] });

        var error = Assert.Throws<InvalidOperationException>(() => ShardingAssignment.Assign(strategy, CBA, "job", 20));

        Assert.Contains("not given: 'Z'", error.Message, StringComparison.Ordinal);
        Assert.Contains("more than once: 0 (twice on 'C')", error.Message, StringComparison.Ordinal);
        Assert.Contains("no instance to items: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 9 more", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_throwing_strategy_is_named()
    {
        var strategy = new FixedStrategy("Throws", _ => throw new DivideByZeroException("boom"));

        var error = Assert.Throws<InvalidOperationException>(() => ShardingAssignment.Assign(strategy, CBA, "job", 3));

        Assert.Contains("'Throws'", error.Message, StringComparison.Ordinal);
        Assert.Contains("threw while sharding job 'job'", error.Message, StringComparison.Ordinal);
        Assert.IsType<DivideByZeroException>(error.InnerException);
    }

    [Fact]
    public void No_instances_give_an_empty_assignment_without_calling_the_strategy()
    {
        var strategy = new FixedStrategy("Throws", _ => throw new InvalidOperationException("called"));

        Assert.Empty(ShardingAssignment.Assign(strategy, [], "job", 3));
    }

    // ---- helpers and the independent reference ----

    /// <summary>"C[0,1,2] B[3,4,5] A[6,7,8]": every given instance in the given order; fails if the result has other keys.</summary>
    private static string Layout(IReadOnlyDictionary<string, IReadOnlyList<int>> result, IReadOnlyList<string> instances)
    {
        Assert.Equal(instances.Order(StringComparer.Ordinal), result.Keys.Order(StringComparer.Ordinal));
        return string.Join(" ", instances.Select(i => $"{i}[{string.Join(",", result[i])}]"));
    }

    private static void AssertInvariants(IReadOnlyDictionary<string, IReadOnlyList<int>> result, IReadOnlyList<string> instances, int shards)
    {
        Assert.Equal(instances.Count, result.Count);
        Assert.All(instances, instance => Assert.True(result.ContainsKey(instance), instance));
        Assert.All(result.Values, items => Assert.Equal(items.Order(), items));
        Assert.Equal(Enumerable.Range(0, shards), result.Values.SelectMany(items => items).Order());
    }

    /// <summary>Java's String.hashCode as the polynomial sum s[i]·31^(len-1-i) reduced mod 2^32, in arbitrary precision.</summary>
    private static int ReferenceJavaHash(string s)
    {
        var sum = BigInteger.Zero;
        for (var i = 0; i < s.Length; i++)
        {
            sum += s[i] * BigInteger.Pow(31, s.Length - 1 - i);
        }

        var low32 = (uint)(sum % (BigInteger.One << 32));
        return unchecked((int)low32);
    }

    /// <summary>The spec, written per item rather than per instance.</summary>
    private static Dictionary<string, IReadOnlyList<int>> ReferenceAssign(string strategy, IReadOnlyList<string> instances, string jobName, int shards)
    {
        var n = instances.Count;
        var hash = ReferenceJavaHash(jobName);
        IReadOnlyList<string> order = strategy switch
        {
            ShardingStrategies.AverageAllocation => instances,
            ShardingStrategies.OddEvenByName => (hash & 1) == 0 ? instances.Reverse().ToList() : instances, // even, negative ones included
            ShardingStrategies.RoundRobinByName => Rotate(instances, (int)(BigInteger.Abs(hash) % n)),
            _ => throw new ArgumentOutOfRangeException(nameof(strategy)),
        };

        var perInstance = shards / n;
        var owner = new Func<int, string>(item => item < perInstance * n ? order[item / perInstance] : order[item - (perInstance * n)]);
        var lists = instances.ToDictionary(i => i, _ => new List<int>(), StringComparer.Ordinal);
        for (var item = 0; item < shards; item++)
        {
            lists[owner(item)].Add(item);
        }

        return lists.ToDictionary(p => p.Key, p => (IReadOnlyList<int>)p.Value, StringComparer.Ordinal);
    }

    private static List<string> Rotate(IReadOnlyList<string> list, int offset) => [.. list.Skip(offset), .. list.Take(offset)];

    private sealed class FixedStrategy(string name, Func<IReadOnlyList<string>, IReadOnlyDictionary<string, IReadOnlyList<int>>?> assign) : IShardingStrategy
    {
        public string Name => name;

        public IReadOnlyDictionary<string, IReadOnlyList<int>> Assign(IReadOnlyList<string> instances, string jobName, int shards) => assign(instances)!;
    }

    private sealed class OtherStrategy(string name) : IShardingStrategy
    {
        public string Name => name;

        public IReadOnlyDictionary<string, IReadOnlyList<int>> Assign(IReadOnlyList<string> instances, string jobName, int shards) =>
            new AverageAllocationStrategy().Assign(instances, jobName, shards);
    }
}
