using System.Globalization;

namespace ShardedJobs.TestSupport.Runtime;

/// <summary>One line of the sample's <c>--log</c> file (see the sample's <c>ExecutionLogFile</c> for the format).</summary>
public sealed record LogLine(string Event, DateTimeOffset Time, string Instance, string Job, int Item, DateTimeOffset FireTime, string TaskId, bool IsFailover, string Outcome, long FencingToken = 0);

/// <summary>Reads the execution log that sample processes append to; the oracle of the process-level tests.</summary>
public static class ExecutionLogFileReader
{
    /// <summary>The log's complete lines; only <paramref name="job"/>'s when given (the sample runs more than one job).</summary>
    public static IReadOnlyList<LogLine> Read(string path, string? job = null)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var lines = new List<LogLine>();
        while (reader.ReadLine() is { } line)
        {
            var f = line.Split('\t');
            if (f.Length is not (9 or 10))
            {
                continue; // a line being written right now
            }

            if (job is not null && f[3] != job)
            {
                continue;
            }

            lines.Add(new LogLine(f[0], DateTimeOffset.Parse(f[1], CultureInfo.InvariantCulture), f[2], f[3], int.Parse(f[4], CultureInfo.InvariantCulture),
                DateTimeOffset.Parse(f[5], CultureInfo.InvariantCulture), f[6], f[7] == "1", f[8], f.Length == 10 && long.TryParse(f[9], CultureInfo.InvariantCulture, out var token) ? token : 0));
        }

        return lines;
    }
}
