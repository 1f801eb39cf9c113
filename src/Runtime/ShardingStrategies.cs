namespace ShardedJobs;

/// <summary>Names of the built-in sharding strategies (ElasticJob's assignments, exactly).</summary>
public static class ShardingStrategies
{
    /// <summary>Contiguous blocks per instance, leftovers one each to the first instances (ElasticJob <c>AVG_ALLOCATION</c>).</summary>
    public const string AverageAllocation = "AverageAllocation";

    /// <summary>Average allocation over the instance list reversed when the job name's hash is even (ElasticJob <c>ODEVITY</c>).</summary>
    public const string OddEvenByName = "OddEvenByName";

    /// <summary>Average allocation over the instance list rotated by the job name's hash (ElasticJob <c>ROUND_ROBIN</c>).</summary>
    public const string RoundRobinByName = "RoundRobinByName";
}
