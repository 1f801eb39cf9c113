using System.Buffers;
using System.Text;
using System.Text.Json;

namespace ShardedJobs.Coordination;

/// <summary>Who runs (or compensates) an item, for which fire time and task id: <c>sharding/{item}/running</c> and <c>sharding/{item}/failover</c>.</summary>
public sealed record ItemMarker(string Instance, DateTimeOffset FireTime, string TaskId);

/// <summary>An item waiting for compensation: <c>leader/failover/items/{item}</c>.</summary>
public sealed record FailoverFlag(string CrashedInstance, DateTimeOffset FireTime, string TaskId);

/// <summary>The fire an instance last started: <c>progress/{instanceId}</c>.</summary>
public sealed record InstanceProgress(DateTimeOffset FireTime, string TaskId);

/// <summary>What <c>instances/{instanceId}</c> says about a live instance.</summary>
public sealed record InstanceRegistration(string InstanceId, string ServerIp);

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
        WriteObject(w => Write(w, ("instance", marker.Instance), ("fireTime", marker.FireTime), ("taskId", marker.TaskId)));

    public static byte[] Encode(FailoverFlag flag) =>
        WriteObject(w => Write(w, ("crashedInstance", flag.CrashedInstance), ("fireTime", flag.FireTime), ("taskId", flag.TaskId)));

    public static byte[] Encode(InstanceProgress progress) =>
        WriteObject(w => Write(w, ("fireTime", progress.FireTime), ("taskId", progress.TaskId)));

    /// <summary>ElasticJob's two YAML lines, so operators' tools read it unchanged.</summary>
    public static byte[] Encode(InstanceRegistration registration) =>
        Encoding.UTF8.GetBytes($"jobInstanceId: {registration.InstanceId}\nserverIp: {registration.ServerIp}\n");

    public static ItemMarker DecodeItemMarker(string path, byte[] data) => Decode(path, data, ReadItemMarker);

    public static FailoverFlag DecodeFailoverFlag(string path, byte[] data) => Decode(path, data, ReadFailoverFlag);

    public static InstanceProgress DecodeProgress(string path, byte[] data) => Decode(path, data, ReadProgress);

    public static InstanceRegistration DecodeRegistration(string path, byte[] data) => Decode(path, data, ReadRegistration);

    /// <summary>Decodes without throwing: false with <paramref name="error"/> (naming the path) for corrupt data.</summary>
    public static bool TryDecodeItemMarker(string path, byte[] data, out ItemMarker? marker, out RegistryDataException? error) =>
        TryDecode(path, data, ReadItemMarker, out marker, out error);

    public static bool TryDecodeFailoverFlag(string path, byte[] data, out FailoverFlag? flag, out RegistryDataException? error) =>
        TryDecode(path, data, ReadFailoverFlag, out flag, out error);

    private static ItemMarker ReadItemMarker(Dictionary<string, JsonElement> fields) =>
        new(RequiredString(fields, "instance"), RequiredTime(fields, "fireTime"), RequiredString(fields, "taskId"));

    private static FailoverFlag ReadFailoverFlag(Dictionary<string, JsonElement> fields) =>
        new(RequiredString(fields, "crashedInstance"), RequiredTime(fields, "fireTime"), RequiredString(fields, "taskId"));

    private static InstanceProgress ReadProgress(Dictionary<string, JsonElement> fields) =>
        new(RequiredTime(fields, "fireTime"), RequiredString(fields, "taskId"));

    private static InstanceRegistration ReadRegistration(string text)
    {
        string? id = null, ip = null;
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
        }

        return new InstanceRegistration(
            string.IsNullOrEmpty(id) ? throw new FormatException("no 'jobInstanceId:' line") : id,
            string.IsNullOrEmpty(ip) ? throw new FormatException("no 'serverIp:' line") : ip);
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
