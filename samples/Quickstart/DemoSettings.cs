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
}

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

/// <summary>
/// The execution log the integration tests read: one tab-separated line per item start and end, appended by every process that
/// shares the file: <c>start|end, time (UTC, ISO 8601), instance, job, item, fire time, task id, failover (0/1), outcome
/// (- | ok | failed | cancelled)</c>. .NET's append mode keeps its own file position (it does not open with O_APPEND), so
/// processes appending to one file would overwrite each other's lines: each line is written under an exclusive lock on the
/// file, at its current end.
/// </summary>
public sealed class ExecutionLogFile : IDisposable
{
    private readonly FileStream? _file;
    private readonly TimeProvider _time;

    public ExecutionLogFile(IOptions<DemoSettings> settings, TimeProvider time)
    {
        _time = time;
        if (settings.Value.LogFile is { Length: > 0 } path)
        {
            _file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        }
    }

    public void Started(ShardContext shard) => Write("start", shard, "-");

    public void Ended(ShardContext shard, string outcome) => Write("end", shard, outcome);

    public void Dispose() => _file?.Dispose();

    private void Write(string what, ShardContext shard, string outcome)
    {
        if (_file is null)
        {
            return;
        }

        var line = string.Join('\t', what, _time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture), shard.InstanceId, shard.JobName,
            shard.Item.ToString(CultureInfo.InvariantCulture), shard.FireTime.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
            shard.TaskId, shard.IsFailover ? "1" : "0", outcome) + "\n";
        var bytes = System.Text.Encoding.UTF8.GetBytes(line);
        lock (_file)
        {
            // macOS has no FileStream.Lock: there, processes should not share one log file.
            var locked = !OperatingSystem.IsMacOS() && LockFile();
            try
            {
                _file.Seek(0, SeekOrigin.End);
                _file.Write(bytes);
                _file.Flush();
            }
            finally
            {
                if (locked && !OperatingSystem.IsMacOS())
                {
                    _file.Unlock(0, long.MaxValue);
                }
            }
        }
    }

    /// <summary>Takes the whole-file lock other processes hold while they append (a POSIX record lock; it does not block, so retry).</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("macos")]
    private bool LockFile()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                _file!.Lock(0, long.MaxValue);
                return true;
            }
            catch (IOException) when (attempt < 1000)
            {
                Thread.Sleep(1);
            }
        }
    }
}
