using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ShardedJobs.Coordination;

/// <summary>Who runs (or compensates) an item, for which fire time and task id: <c>sharding/{item}/running</c> and <c>sharding/{item}/failover</c>.</summary>
/// <param name="Instance">The instance that runs (or claimed) it.</param>
/// <param name="FireTime">The fire the run belongs to.</param>
/// <param name="TaskId">The execution's task id.</param>
/// <param name="MissedFireTime">On a failover claim only: the flag's <see cref="FailoverFlag.MissedFireTime"/>, kept with the claim
/// so that a claimant that leaves before it has run both fires hands the later one on too; optional.</param>
/// <param name="FireCompleted">On a failover claim only: the interrupted run it compensates completed after all (it outlived its
/// session, ignoring the cancellation) while the claim was held. The compensation is not started, and one that ends without
/// completing is not handed on: only <paramref name="MissedFireTime"/> is still owed. A line <c>"fireCompleted": true</c>;
/// absent otherwise.</param>
public sealed record ItemMarker(string Instance, DateTimeOffset FireTime, string TaskId, DateTimeOffset? MissedFireTime = null, bool FireCompleted = false);

/// <summary>An item waiting for compensation: <c>leader/failover/items/{item}</c>.</summary>
/// <param name="CrashedInstance">The instance that did not finish it.</param>
/// <param name="FireTime">The interrupted fire: the compensation runs with this <see cref="ShardContext.FireTime"/>.</param>
/// <param name="TaskId">The interrupted execution's task id (or, for an item that never started, a synthetic one naming the fire).</param>
/// <param name="FlaggedAt">When the crash was handled, by the flagging instance's clock (for the failover latency); optional.</param>
/// <param name="MissedFireTime">A later fire of the item that came while the crashed instance still held it (its session outlived
/// that fire): the instance would have run it as a misfire right after, so the compensation runs it too, after
/// <paramref name="FireTime"/>; optional.</param>
public sealed record FailoverFlag(string CrashedInstance, DateTimeOffset FireTime, string TaskId, DateTimeOffset? FlaggedAt = null,
    DateTimeOffset? MissedFireTime = null);

/// <summary>The fire an instance last started: <c>progress/{instanceId}</c>.</summary>
public sealed record InstanceProgress(DateTimeOffset FireTime, string TaskId)
{
    private const string RegisteredTaskId = "registered";

    /// <summary>
    /// The record of an instance incarnation that has started nothing yet: it answers for the fires due after
    /// <paramref name="at"/> only. (An earlier incarnation with the same id answered for the fires before; dating the fresh
    /// record back would make this incarnation's departure flag those fires a second time.)
    /// </summary>
    public static InstanceProgress Registered(DateTimeOffset at) => new(at, RegisteredTaskId);

    /// <summary>The record of <see cref="Registered"/>: its incarnation has started no fire yet.</summary>
    public bool StartedNothing => TaskId == RegisteredTaskId;
}

/// <summary>What <c>instances/{instanceId}</c> says about a live instance.</summary>
/// <param name="InstanceId">The instance.</param>
/// <param name="ServerIp">Its server (IP), whose <c>servers/{ip}</c> state applies to it.</param>
/// <param name="Disabled">An operator disabled this one instance (a third line <c>disabled: true</c>, absent otherwise).</param>
/// <param name="FiresAfter">
/// The instant this incarnation's trigger started from (a line <c>firesAfter: …</c>, ISO 8601): it runs the fires strictly after
/// it, never one at or before it. An instance that registers just after a fire came due (or on its very instant) can still be
/// in the assignment the leader makes at that fire; the leader reads this to know that fire will not be run by its owner, and
/// runs those items itself. Absent (null) in registrations written by older versions: such an instance is taken to run every fire.
/// </param>
public sealed record InstanceRegistration(string InstanceId, string ServerIp, bool Disabled = false, DateTimeOffset? FiresAfter = null);

/// <summary>A node's data could not be read as its documented format. Carries the path, so an operator can find and repair it.</summary>
public sealed class RegistryDataException(string path, string problem, Exception? innerException = null)
    : RegistryException(RegistryErrorCode.Other, path,
        $"The registry node '{path}' holds data that is not in its documented format ({problem}). Repair or delete the node; the job treats it as absent meanwhile.",
        innerException);

/// <summary>
/// The data formats of <see cref="JobNodes"/>, in one place: encoders, and decoders that report corrupt data as a
/// <see cref="RegistryDataException"/> naming the path (or, through the <c>TryDecode</c> forms, as an error string the caller
/// logs), never as a crash. JSON is written and read with <see cref="Utf8JsonWriter"/>/<see cref="Utf8JsonReader"/>: no reflection.
/// </summary>
public static class JobNodeData
{
    public static byte[] Encode(ItemMarker marker) =>
        WriteObject(w =>
        {
            Write(w, ("instance", marker.Instance), ("fireTime", marker.FireTime), ("taskId", marker.TaskId));
            if (marker.MissedFireTime is { } missed)
            {
                w.WriteNumber("missedFireTime", missed.ToUnixTimeMilliseconds());
            }

            if (marker.FireCompleted)
            {
                w.WriteBoolean("fireCompleted", true);
            }
        });

    public static byte[] Encode(FailoverFlag flag) =>
        WriteObject(w =>
        {
            Write(w, ("crashedInstance", flag.CrashedInstance), ("fireTime", flag.FireTime), ("taskId", flag.TaskId));
            if (flag.FlaggedAt is { } flaggedAt)
            {
                w.WriteNumber("flaggedAt", flaggedAt.ToUnixTimeMilliseconds());
            }

            if (flag.MissedFireTime is { } missed)
            {
                w.WriteNumber("missedFireTime", missed.ToUnixTimeMilliseconds());
            }
        });

    public static byte[] Encode(InstanceProgress progress) =>
        WriteObject(w => Write(w, ("fireTime", progress.FireTime), ("taskId", progress.TaskId)));

    /// <summary>ElasticJob's two YAML lines, so operators' tools read it unchanged.</summary>
    public static byte[] Encode(InstanceRegistration registration) =>
        Encoding.UTF8.GetBytes($"jobInstanceId: {registration.InstanceId}\nserverIp: {registration.ServerIp}\n{(registration.Disabled ? "disabled: true\n" : "")}"
            + (registration.FiresAfter is { } firesAfter ? $"firesAfter: {firesAfter.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)}\n" : ""));

    /// <summary>The <c>config</c> node: JSON with ElasticJob's key names (<c>shardingTotalCount</c>, <c>jobShardingStrategyType</c>, …).</summary>
    public static byte[] Encode(JobConfig config) =>
        WriteObject(w =>
        {
            w.WriteString("jobName", config.JobName);
            w.WriteString("cron", config.Cron);
            w.WriteNumber("shardingTotalCount", config.Shards);
            WriteOptional(w, "shardingItemParameters", config.ItemParameters);
            WriteOptional(w, "jobParameter", config.JobParameter);
            w.WriteBoolean("failover", config.Failover);
            w.WriteBoolean("monitorExecution", config.MonitorExecution);
            w.WriteBoolean("misfire", config.Misfire);
            w.WriteBoolean("disabled", config.Disabled);
            WriteOptional(w, "timeZone", config.TimeZone);
            w.WriteString("jobShardingStrategyType", config.ShardingStrategy);
            WriteOptional(w, "description", config.Description);
            w.WriteNumber("maxTimeDiffSeconds", config.MaxTimeDiffSeconds);
            w.WriteNumber("reconcileIntervalMinutes", config.ReconcileIntervalMinutes);
        });

    /// <summary>The <c>sharding</c> node: what the last sharding was computed from.</summary>
    public static byte[] Encode(ShardingStamp stamp) =>
        WriteObject(w =>
        {
            w.WriteStartArray("instances");
            foreach (var instance in stamp.Instances)
            {
                w.WriteStringValue(instance);
            }

            w.WriteEndArray();
            w.WriteNumber("shardingTotalCount", stamp.Shards);
            w.WriteString("strategy", stamp.Strategy);
            w.WriteString("leader", stamp.Leader);
            w.WriteNumber("shardedAt", stamp.ShardedAt.ToUnixTimeMilliseconds());
        });

    /// <summary>Decodes a <c>config</c> node. Missing keys take ShardedJobs' defaults (not ElasticJob's, which silently turn
    /// <c>monitorExecution</c> and <c>misfire</c> off); unknown keys are ignored.</summary>
    public static JobConfig DecodeConfig(string path, byte[] data) => Decode(path, data, ReadConfig);

    public static bool TryDecodeConfig(string path, byte[] data, out JobConfig? config, out RegistryDataException? error) =>
        TryDecode(path, data, ReadConfig, out config, out error);

    /// <summary>Decodes the <c>sharding</c> node; empty data (a node created before any sharding) is null.</summary>
    public static bool TryDecodeStamp(string path, byte[] data, out ShardingStamp? stamp, out RegistryDataException? error)
    {
        if (data.Length == 0)
        {
            stamp = null;
            error = null;
            return true;
        }

        return TryDecode(path, data, ReadStamp, out stamp, out error);
    }

    public static ItemMarker DecodeItemMarker(string path, byte[] data) => Decode(path, data, ReadItemMarker);

    public static FailoverFlag DecodeFailoverFlag(string path, byte[] data) => Decode(path, data, ReadFailoverFlag);

    public static InstanceProgress DecodeProgress(string path, byte[] data) => Decode(path, data, ReadProgress);

    public static InstanceRegistration DecodeRegistration(string path, byte[] data) => Decode(path, data, ReadRegistration);

    public static bool TryDecodeRegistration(string path, byte[] data, out InstanceRegistration? registration, out RegistryDataException? error)
    {
        try
        {
            registration = DecodeRegistration(path, data);
            error = null;
            return true;
        }
        catch (RegistryDataException e)
        {
            registration = null;
            error = e;
            return false;
        }
    }

    /// <summary>Decodes without throwing: false with <paramref name="error"/> (naming the path) for corrupt data.</summary>
    public static bool TryDecodeItemMarker(string path, byte[] data, out ItemMarker? marker, out RegistryDataException? error) =>
        TryDecode(path, data, ReadItemMarker, out marker, out error);

    public static bool TryDecodeProgress(string path, byte[] data, out InstanceProgress? progress, out RegistryDataException? error) =>
        TryDecode(path, data, ReadProgress, out progress, out error);

    public static bool TryDecodeFailoverFlag(string path, byte[] data, out FailoverFlag? flag, out RegistryDataException? error) =>
        TryDecode(path, data, ReadFailoverFlag, out flag, out error);

    private static JobConfig ReadConfig(Dictionary<string, JsonElement> fields)
    {
        var defaults = new JobConfig { JobName = "", Cron = "" };
        return new JobConfig
        {
            JobName = RequiredString(fields, "jobName"),
            Cron = RequiredString(fields, "cron"),
            Shards = OptionalInt(fields, "shardingTotalCount") ?? defaults.Shards,
            ItemParameters = OptionalString(fields, "shardingItemParameters"),
            JobParameter = OptionalString(fields, "jobParameter"),
            Failover = OptionalBool(fields, "failover") ?? defaults.Failover,
            MonitorExecution = OptionalBool(fields, "monitorExecution") ?? defaults.MonitorExecution,
            Misfire = OptionalBool(fields, "misfire") ?? defaults.Misfire,
            Disabled = OptionalBool(fields, "disabled") ?? defaults.Disabled,
            TimeZone = OptionalString(fields, "timeZone"),
            ShardingStrategy = OptionalString(fields, "jobShardingStrategyType") ?? defaults.ShardingStrategy,
            Description = OptionalString(fields, "description"),
            MaxTimeDiffSeconds = OptionalInt(fields, "maxTimeDiffSeconds") ?? defaults.MaxTimeDiffSeconds,
            ReconcileIntervalMinutes = OptionalInt(fields, "reconcileIntervalMinutes") ?? defaults.ReconcileIntervalMinutes,
        };
    }

    private static ShardingStamp ReadStamp(Dictionary<string, JsonElement> fields)
    {
        if (!fields.TryGetValue("instances", out var array) || array.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("missing array field 'instances'");
        }

        var instances = new List<string>();
        foreach (var element in array.EnumerateArray())
        {
            instances.Add(element.ValueKind == JsonValueKind.String && element.GetString() is { Length: > 0 } id
                ? id
                : throw new FormatException("'instances' holds something that is not an instance id"));
        }

        return new ShardingStamp(instances, OptionalInt(fields, "shardingTotalCount") ?? throw new FormatException("missing integer field 'shardingTotalCount'"),
            RequiredString(fields, "strategy"), RequiredString(fields, "leader"), RequiredTime(fields, "shardedAt"));
    }

    private static ItemMarker ReadItemMarker(Dictionary<string, JsonElement> fields) =>
        new(RequiredString(fields, "instance"), RequiredTime(fields, "fireTime"), RequiredString(fields, "taskId"),
            fields.ContainsKey("missedFireTime") ? RequiredTime(fields, "missedFireTime") : null,
            OptionalBool(fields, "fireCompleted") ?? false);

    private static FailoverFlag ReadFailoverFlag(Dictionary<string, JsonElement> fields) =>
        new(RequiredString(fields, "crashedInstance"), RequiredTime(fields, "fireTime"), RequiredString(fields, "taskId"),
            fields.ContainsKey("flaggedAt") ? RequiredTime(fields, "flaggedAt") : null,
            fields.ContainsKey("missedFireTime") ? RequiredTime(fields, "missedFireTime") : null);

    private static InstanceProgress ReadProgress(Dictionary<string, JsonElement> fields) =>
        new(RequiredTime(fields, "fireTime"), RequiredString(fields, "taskId"));

    private static InstanceRegistration ReadRegistration(string text)
    {
        string? id = null, ip = null;
        var disabled = false;
        DateTimeOffset? firesAfter = null;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }

            // The instance id itself contains ':'-free "@-@" separators, so the first colon ends the key.
            var (key, value) = (line[..colon].Trim(), line[(colon + 1)..].Trim());
            if (key == "jobInstanceId")
            {
                id = value;
            }
            else if (key == "serverIp")
            {
                ip = value;
            }
            else if (key == "firesAfter")
            {
                firesAfter = DateTimeOffset.Parse(value, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
            }
            else if (key == "disabled")
            {
                disabled = value switch
                {
                    "true" => true,
                    "false" => false,
                    _ => throw new FormatException($"'disabled: {value}' is neither true nor false"),
                };
            }
        }

        return new InstanceRegistration(
            string.IsNullOrEmpty(id) ? throw new FormatException("no 'jobInstanceId:' line") : id,
            string.IsNullOrEmpty(ip) ? throw new FormatException("no 'serverIp:' line") : ip,
            disabled,
            firesAfter);
    }

    private static T Decode<T>(string path, byte[] data, Func<Dictionary<string, JsonElement>, T> read)
        where T : class =>
        TryDecode(path, data, read, out var value, out var error) ? value! : throw error!;

    private static T Decode<T>(string path, byte[] data, Func<string, T> read)
        where T : class
    {
        try
        {
            return read(Encoding.UTF8.GetString(data));
        }
        catch (FormatException e)
        {
            throw new RegistryDataException(path, e.Message, e);
        }
    }

    private static bool TryDecode<T>(string path, byte[] data, Func<Dictionary<string, JsonElement>, T> read, out T? value, out RegistryDataException? error)
        where T : class
    {
        try
        {
            using var document = JsonDocument.Parse(data);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException($"expected a JSON object, found {document.RootElement.ValueKind}");
            }

            var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                fields[property.Name] = property.Value.Clone();
            }

            value = read(fields);
            error = null;
            return true;
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            value = null;
            error = new RegistryDataException(path, $"{e.Message}; content: '{Preview(data)}'", e);
            return false;
        }
    }

    private static string RequiredString(Dictionary<string, JsonElement> fields, string name) =>
        fields.TryGetValue(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw new FormatException($"missing or empty string field '{name}'");

    private static DateTimeOffset RequiredTime(Dictionary<string, JsonElement> fields, string name) =>
        fields.TryGetValue(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var ms)
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
            : throw new FormatException($"missing or non-integer field '{name}' (Unix milliseconds)");

    private static string? OptionalString(Dictionary<string, JsonElement> fields, string name) =>
        !fields.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()
        : throw new FormatException($"field '{name}' must be a string");

    private static int? OptionalInt(Dictionary<string, JsonElement> fields, string name) =>
        !fields.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null ? null
        : value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) ? number
        : throw new FormatException($"field '{name}' must be a 32-bit integer");

    private static bool? OptionalBool(Dictionary<string, JsonElement> fields, string name) =>
        !fields.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null ? null
        : value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean()
        : throw new FormatException($"field '{name}' must be true or false");

    private static void WriteOptional(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }

    private static byte[] WriteObject(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void Write(Utf8JsonWriter writer, params (string Name, object Value)[] fields)
    {
        foreach (var (name, value) in fields)
        {
            switch (value)
            {
                case DateTimeOffset time:
                    writer.WriteNumber(name, time.ToUnixTimeMilliseconds());
                    break;
                default:
                    writer.WriteString(name, (string)value);
                    break;
            }
        }
    }

    private static string Preview(byte[] data)
    {
        var text = Encoding.UTF8.GetString(data, 0, Math.Min(data.Length, 80));
        return data.Length > 80 ? text + "…" : text;
    }
}
