// This file is also compiled into the analyzers (netstandard2.0): netstandard2.0 APIs only, and every using spelled out.
using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace ShardedJobs.Cluster;

/// <summary>
/// A job's item parameters (<c>"0=Beijing,1=Shanghai,2=Guangzhou"</c>), parsed once, when the configuration is validated
/// (ElasticJob re-parses them at every fire, so a malformed string makes every fire fail).
/// </summary>
/// <remarks>
/// Grammar: null, empty or white space means no parameters. Otherwise pieces separated by <c>,</c>; each piece, trimmed, is
/// <c>item=value</c> with exactly one <c>=</c>; <c>item</c> (trimmed) is a decimal number without sign in <c>0..shards-1</c>;
/// <c>value</c> is trimmed and must not be empty. So values cannot contain <c>,</c> or <c>=</c>. Stricter than ElasticJob, which
/// lets a repeated item's last value win, ignores items out of range and tolerates a trailing comma: here each of those is an error,
/// reported when the configuration is validated (analyzer SJ0005 at build time, options validation at start-up).
/// </remarks>
public sealed class ItemParameters
{
    private const string Expected = "Item parameters are item=value pairs separated by commas, e.g. \"0=Beijing,1=Shanghai,2=Guangzhou\".";

    private readonly Dictionary<int, string> byItem;

    private ItemParameters(int shards, Dictionary<int, string> byItem)
    {
        Shards = shards;
        this.byItem = byItem;
        View = new ReadOnlyDictionary<int, string>(byItem);
    }

    /// <summary>The job's item count these parameters were checked against: items are <c>0..Shards-1</c>.</summary>
    public int Shards { get; }

    /// <summary>How many items have a parameter.</summary>
    public int Count => byItem.Count;

    private IReadOnlyDictionary<int, string> View { get; }

    /// <summary>The parameter of <paramref name="item"/>, or null when it has none.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="item"/> is not in <c>0..Shards-1</c>.</exception>
    public string? this[int item]
    {
        get
        {
            if (item < 0 || item >= Shards)
            {
                throw new ArgumentOutOfRangeException(nameof(item), item, $"The job's items are 0..{Shards - 1}.");
            }

            return byItem.TryGetValue(item, out var value) ? value : null;
        }
    }

    /// <summary>The items that have a parameter, with their parameters, in ascending item order (read-only).</summary>
    public IReadOnlyDictionary<int, string> AsDictionary() => View;

    /// <summary>Parses item parameters for a job with <paramref name="shards"/> items.</summary>
    /// <exception cref="FormatException">The text is malformed; the message names the text, the offending piece and the fix.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="shards"/> is less than 1.</exception>
    public static ItemParameters Parse(string? text, int shards) =>
        TryParse(text, shards, out var parameters, out var error) ? parameters : throw new FormatException(error);

    /// <summary>Parses item parameters for a job with <paramref name="shards"/> items, reporting a malformed text as <paramref name="error"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="shards"/> is less than 1 (validate the item count first).</exception>
    public static bool TryParse(string? text, int shards, [NotNullWhen(true)] out ItemParameters? parameters, [NotNullWhen(false)] out string? error)
    {
        if (shards < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(shards), shards, "A job has at least 1 item.");
        }

        parameters = null;
        var found = new Dictionary<int, string>();
        var pieceOf = new Dictionary<int, string>();
        if (text is not null && !string.IsNullOrWhiteSpace(text))
        {
            foreach (var raw in text.Split(','))
            {
                var piece = raw.Trim();
                if (piece.Length == 0)
                {
                    error = Error(text, raw, "is empty", "Remove the extra comma (two commas in a row, or one at the start or the end).");
                    return false;
                }

                var parts = piece.Split('=');
                if (parts.Length != 2)
                {
                    error = parts.Length < 2
                        ? Error(text, piece, "has no '='", "Write it as item=value, e.g. \"0=Beijing\".")
                        : Error(text, piece, "has more than one '='", "Write it as item=value with a single '='; a value cannot contain ',' or '='.");
                    return false;
                }

                var key = parts[0].Trim();
                var value = parts[1].Trim();
                if (key.Length == 0)
                {
                    error = Error(text, piece, "has no item number before '='", $"Put the item number (0..{shards - 1}) before '='.");
                    return false;
                }

                if (!IsDigits(key))
                {
                    error = Error(text, piece, $"has '{key}' where an item number belongs", $"Use an item number from 0 to {shards - 1} (decimal digits, no sign).");
                    return false;
                }

                if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var item) || item >= shards)
                {
                    error = Error(text, piece, $"names item {key}, outside 0..{shards - 1} (the job has {shards} item{(shards == 1 ? string.Empty : "s")})", $"Remove the piece, or raise the job's shards above {key}.");
                    return false;
                }

                if (value.Length == 0)
                {
                    error = Error(text, piece, $"gives item {item} an empty value", $"Write a value after '=', or leave item {item} out (it then has no parameter).");
                    return false;
                }

                if (pieceOf.TryGetValue(item, out var first))
                {
                    error = Error(text, piece, $"gives item {item} a second parameter (the first is \"{first}\")", $"Keep one parameter per item: remove one of \"{first}\" and \"{piece}\".");
                    return false;
                }

                found.Add(item, value);
                pieceOf.Add(item, piece);
            }
        }

        var items = new List<int>(found.Keys);
        items.Sort();
        var ordered = new Dictionary<int, string>(items.Count);
        foreach (var item in items)
        {
            ordered.Add(item, found[item]);
        }

        parameters = new ItemParameters(shards, ordered);
        error = null;
        return true;
    }

    private static bool IsDigits(string s)
    {
        foreach (var c in s)
        {
            if (c < '0' || c > '9')
            {
                return false;
            }
        }

        return true;
    }

    private static string Error(string text, string piece, string problem, string fix) =>
        $"Invalid item parameters \"{text}\": the piece \"{piece}\" {problem}. {fix} {Expected}";
}
