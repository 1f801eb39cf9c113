using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;

namespace ShardedJobs.Generators;

/// <summary>
/// One job as the generated code needs it: plain values only (no symbols, syntax or locations), so equal models stop the
/// pipeline and an edit elsewhere regenerates nothing.
/// </summary>
internal sealed record JobModel(
    string Name,
    string Identifier,
    string TypeName,
    string TypeDisplayName,
    string? DataTypeName,
    string Cron,
    int Shards,
    bool Failover,
    bool MonitorExecution,
    bool Misfire,
    string? ItemParameters,
    string? JobParameter,
    string? TimeZone,
    string ShardingStrategy,
    string? Description,
    bool Disabled,
    bool Overwrite,
    int MaxTimeDiffSeconds,
    int ReconcileIntervalMinutes,
    bool Streaming)
{
    public bool IsDataflow => DataTypeName is not null;
}

/// <summary>What the parse step found for one attributed class: a job to emit, or nothing (the analyzers say why).</summary>
internal sealed record ParseResult(JobModel? Job);

/// <summary>One line of the assembly's catalog: enough to list and register the job, nothing that changes with its settings.</summary>
internal sealed record CatalogEntry(string Name, string Identifier, string TypeName);

/// <summary>An immutable array compared by its elements, so models holding collections stay value-equatable.</summary>
internal readonly struct EquatableArray<T> : IEquatable<EquatableArray<T>>, IEnumerable<T>
    where T : IEquatable<T>
{
    private readonly ImmutableArray<T> _items;

    public EquatableArray(ImmutableArray<T> items) => _items = items;

    public static EquatableArray<T> Empty => new(ImmutableArray<T>.Empty);

    public int Length => _items.IsDefault ? 0 : _items.Length;

    public T this[int index] => _items[index];

    public bool Equals(EquatableArray<T> other) => AsArray().SequenceEqual(other.AsArray());

    public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);

    public override int GetHashCode()
    {
        var hash = 17;
        foreach (var item in AsArray())
        {
            hash = unchecked((hash * 31) + (item?.GetHashCode() ?? 0));
        }

        return hash;
    }

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)AsArray()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private ImmutableArray<T> AsArray() => _items.IsDefault ? ImmutableArray<T>.Empty : _items;
}

internal static class EquatableArray
{
    public static EquatableArray<T> ToEquatableArray<T>(this IEnumerable<T> items)
        where T : IEquatable<T> => new(items.ToImmutableArray());
}
