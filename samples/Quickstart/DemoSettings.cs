using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using ShardedJobs;

namespace Quickstart;

/// <summary>The demo's own settings (configuration section <c>Demo</c>).</summary>
public sealed class DemoSettings
{
    /// <summary>How long an item runs.</summary>
    public double WorkSeconds { get; set; } = 2;

    /// <summary>Per-item durations overriding <see cref="WorkSeconds"/>, <c>"2=1,3=6"</c> (item=seconds).</summary>
    public string? WorkByItem { get; set; }

    /// <summary>How long <paramref name="item"/> runs.</summary>
    public TimeSpan WorkFor(int item)
    {
        foreach (var pair in (WorkByItem ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = pair.Split('=', StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var key) && key == item
                && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
            {
                return TimeSpan.FromSeconds(seconds);
            }
        }

        return TimeSpan.FromSeconds(WorkSeconds);
    }

    /// <summary>Where to append one line per item start and end; none when empty.</summary>
    public string? LogFile { get; set; }

    /// <summary>How many instances to run in this process (on one embedded registry); 1 by default.</summary>
    public int Nodes { get; set; } = 1;

    /// <summary>When to crash one node (<c>12s</c>, <c>1m</c>, <c>00:00:12</c>): the first node then running an item.</summary>
    public string? KillAfter { get; set; }

    /// <summary>When to stop on its own; by default never (Ctrl+C), or 30 s after the crash with <see cref="KillAfter"/>.</summary>
    public string? StopAfter { get; set; }
}

/// <summary>The demo's durations: <c>12s</c>, <c>500ms</c>, <c>1.5m</c>, or a TimeSpan such as <c>00:00:12</c>.</summary>
public static class DemoDuration
{
    public static TimeSpan? Parse(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var value = text.Trim();
        (string Suffix, double Seconds)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (suffix, seconds) in units)
        {
            if (value.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(value[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && number >= 0)
            {
                return TimeSpan.FromSeconds(number * seconds);
            }
        }

        return TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var span) && span >= TimeSpan.Zero
            ? span
            : throw new DemoUsageException($"{option} '{text}' is not a duration: write it as 12s, 500ms, 1.5m or 00:00:12.");
    }
}

/// <summary>A command-line mistake: the demo prints the message and exits with code 2.</summary>
public sealed class DemoUsageException(string message) : Exception(message);

/// <summary>The demo's command line: short options mapped onto configuration keys; everything else passes through.</summary>
public static class DemoArguments
{
    private static readonly Dictionary<string, string> Switches = new(StringComparer.Ordinal)
    {
        ["--zookeeper"] = "ShardedJobs:ZooKeeper:ConnectionString",
        ["--session-timeout"] = "ShardedJobs:ZooKeeper:SessionTimeout",
        ["--instance-id"] = "ShardedJobs:InstanceId",
        ["--log"] = "Demo:LogFile",
        ["--work"] = "Demo:WorkSeconds",
        ["--work-by-item"] = "Demo:WorkByItem",
        ["--nodes"] = "Demo:Nodes",
        ["--kill-after"] = "Demo:KillAfter",
        ["--stop-after"] = "Demo:StopAfter",
    };

    public static HostApplicationBuilderSettings ToConfiguration(string[] args)
    {
        var mapped = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (Switches.TryGetValue(args[i], out var key) && i + 1 < args.Length)
            {
                mapped.Add($"--{key}={args[++i]}");
            }
            else
            {
                mapped.Add(args[i]);
            }
        }

        return new HostApplicationBuilderSettings { Args = [.. mapped] };
    }
}
