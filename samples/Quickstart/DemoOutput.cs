using System.Globalization;
using ShardedJobs;

namespace Quickstart;

/// <summary>One node of the demo as the demo sees it: what it is running, and whether it has crashed.</summary>
public sealed class DemoNode(string name)
{
    private readonly Lock _gate = new();
    private readonly List<DemoRun> _open = [];
    private bool _crashed;

    public string Name { get; } = name;

    /// <summary>A crashed process writes nothing more: its console lines, log lines and logs stop here.</summary>
    public bool IsCrashed
    {
        get
        {
            lock (_gate)
            {
                return _crashed;
            }
        }
    }

    /// <summary>How many items this node is running now.</summary>
    public int Running()
    {
        lock (_gate)
        {
            return _open.Count;
        }
    }

    /// <summary>Crashes the node if it is running items of <paramref name="job"/>, and returns them (null when it runs none). Atomic
    /// with the node's output: what it printed is exactly what happened before the crash.</summary>
    public IReadOnlyList<DemoRun>? CrashIfRunning(string job)
    {
        lock (_gate)
        {
            var running = _open.Where(r => r.Job == job).ToList();
            if (running.Count == 0 || _crashed)
            {
                return null;
            }

            _crashed = true;
            return running;
        }
    }

    /// <summary>Runs <paramref name="write"/> (the node's output for one item start or end) unless the node has crashed.</summary>
    internal void Record(DemoRun run, bool started, Action write)
    {
        lock (_gate)
        {
            if (_crashed)
            {
                return;
            }

            if (started)
            {
                _open.Add(run);
            }
            else
            {
                _open.Remove(run);
            }

            write();
        }
    }
}

/// <summary>One item run on a node: job, item, fire time, and whether it is a compensation.</summary>
public sealed record DemoRun(string Job, int Item, DateTimeOffset FireTime, bool IsFailover);

/// <summary>
/// What the jobs print: a readable console line per item start and end (time, instance, job, item, parameter, fire time,
/// FAILOVER for compensations), the same as a line of the execution log (<c>--log</c>), and, in the multi-node demo, the
/// timeline its summary is made from.
/// </summary>
public sealed class DemoOutput(DemoNode node, ExecutionLogFile log, TimeProvider time, DemoTimeline? timeline = null)
{
    private DemoNode Node => node;

    private ExecutionLogFile Log => log;

    private TimeProvider Time => time;

    private DemoTimeline? Timeline => timeline;

    public Execution Start(ShardContext shard, CancellationToken cancellationToken = default)
    {
        var execution = new Execution(this, shard, cancellationToken);
        execution.Write("start", "-", null);
        return execution;
    }

    /// <summary>One item's run: <see cref="Succeeded"/> when it did its work; disposing it ends it either way.</summary>
    public sealed class Execution : IDisposable
    {
        private readonly DemoOutput _output;
        private readonly ShardContext _shard;
        private readonly CancellationToken _cancellationToken;
        private readonly DemoRun _run;
        private string? _detail;
        private bool _succeeded;
        private bool _ended;

        internal Execution(DemoOutput output, ShardContext shard, CancellationToken cancellationToken)
        {
            _output = output;
            _shard = shard;
            _cancellationToken = cancellationToken;
            _run = new DemoRun(shard.JobName, shard.Item, shard.FireTime, shard.IsFailover);
        }

        public void Succeeded(string? detail = null)
        {
            _succeeded = true;
            _detail = detail;
        }

        public void Dispose()
        {
            if (_ended)
            {
                return;
            }

            _ended = true;
            Write("end", _succeeded ? "ok" : _cancellationToken.IsCancellationRequested ? "cancelled" : "failed", _detail);
        }

        internal void Write(string what, string outcome, string? detail) => _output.Node.Record(_run, started: what == "start", () =>
        {
            var now = _output.Time.GetLocalNow();
            var shown = what == "start" ? "start" : detail is null ? outcome : $"{outcome} ({detail})";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{now:HH:mm:ss.fff}  {_shard.InstanceId,-8} {_shard.JobName,-9} item {_shard.Item} ({_shard.ItemParameter})  fire {_shard.FireTime.ToLocalTime():HH:mm:ss}  {shown}{(_shard.IsFailover ? "  FAILOVER" : "")}"));
            _output.Log.Write(what, _shard, outcome);
            _output.Timeline?.Add(new DemoEvent(now, _shard.InstanceId, _shard.JobName, _shard.Item, _shard.FireTime, _shard.IsFailover, what, outcome));
        });
    }
}

/// <summary>
/// The execution log the integration tests read: one tab-separated line per item start and end, appended by every process that
/// shares the file: <c>start|end, time (UTC, ISO 8601), instance, job, item, fire time, task id, failover (0/1), outcome
/// (- | ok | failed | cancelled), fencing token</c> (<see cref="ShardContext.FencingToken"/>: a sink would reject a run whose
/// token is below the largest it has seen for the item). .NET's append mode keeps its own file position (it does not open with O_APPEND), so
/// processes appending to one file would overwrite each other's lines: each line is written under an exclusive lock on the
/// file, at its current end. In one process, share one instance.
/// </summary>
public sealed class ExecutionLogFile : IDisposable
{
    private readonly FileStream? _file;
    private readonly TimeProvider _time;

    public ExecutionLogFile(string? path, TimeProvider time)
    {
        _time = time;
        if (!string.IsNullOrEmpty(path))
        {
            _file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        }
    }

    public void Dispose() => _file?.Dispose();

    public void Write(string what, ShardContext shard, string outcome)
    {
        if (_file is null)
        {
            return;
        }

        var line = string.Join('\t', what, _time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture), shard.InstanceId, shard.JobName,
            shard.Item.ToString(CultureInfo.InvariantCulture), shard.FireTime.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
            shard.TaskId, shard.IsFailover ? "1" : "0", outcome, shard.FencingToken.ToString(CultureInfo.InvariantCulture)) + "\n";
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
