namespace ShardedJobs.ZooKeeper;

/// <summary>The session handshake's two records.</summary>
internal readonly record struct ConnectRequest(long LastZxidSeen, int TimeoutMs, long SessionId, byte[] Password)
{
    /// <summary>The whole 49-byte frame, length prefix included. readOnly is always false: a read-only server is skipped like a dead one.</summary>
    public byte[] ToFrame()
    {
        var writer = new JuteWriter(49);
        writer.WriteInt(45);
        writer.WriteInt(0); // protocol version
        writer.WriteLong(LastZxidSeen);
        writer.WriteInt(TimeoutMs);
        writer.WriteLong(SessionId);
        writer.WriteBuffer(Password);
        writer.WriteBool(false);
        return writer.ToArray();
    }
}

internal readonly record struct ConnectResponse(int ProtocolVersion, int TimeoutMs, long SessionId, byte[] Password, bool ReadOnly)
{
    /// <summary>Expired, closed or unknown sessions are answered with a non-positive timeout.</summary>
    public bool SessionIsGone => TimeoutMs <= 0;

    /// <summary>Parses the payload (without length prefix). Shorter than 36 bytes means the server is unusable (e.g. a read-only server's bare error header).</summary>
    public static ConnectResponse Parse(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < ProtocolLimits.ConnectResponseMinLength)
        {
            throw new ZooKeeperProtocolException($"ConnectResponse of {payload.Length} bytes; at least {ProtocolLimits.ConnectResponseMinLength} expected.");
        }

        var reader = new JuteReader(payload);
        var version = reader.ReadInt();
        var timeout = reader.ReadInt();
        var sessionId = reader.ReadLong();
        var password = reader.ReadBuffer() ?? [];
        var readOnly = reader.Remaining > 0 && reader.ReadBool();
        return new ConnectResponse(version, timeout, sessionId, password, readOnly);
    }
}

/// <summary>Request bodies, frames and reply bodies of the operations: the one place that knows their byte layout.</summary>
internal static class ZooKeeperRequests
{
    /// <summary>A request frame: length, RequestHeader(xid, op), body.</summary>
    public static void WriteFrame(JuteWriter writer, int xid, OpCode op, ReadOnlySpan<byte> body)
    {
        writer.WriteInt(8 + body.Length);
        writer.WriteInt(xid);
        writer.WriteInt((int)op);
        writer.WriteRaw(body);
    }

    public static byte[] Frame(int xid, OpCode op, ReadOnlySpan<byte> body)
    {
        var writer = new JuteWriter(12 + body.Length);
        WriteFrame(writer, xid, op, body);
        return writer.ToArray();
    }

    public static byte[] CreateBody(string serverPath, ReadOnlySpan<byte> data, IReadOnlyList<ZooKeeperAcl> acl, CreateMode mode)
    {
        var writer = new JuteWriter();
        WriteCreate(writer, serverPath, data, acl, mode);
        return writer.ToArray();
    }

    public static void WriteCreate(JuteWriter writer, string serverPath, ReadOnlySpan<byte> data, IReadOnlyList<ZooKeeperAcl> acl, CreateMode mode)
    {
        writer.WriteString(serverPath);
        writer.WriteBuffer(data);
        writer.WriteAcls(acl);
        writer.WriteInt((int)mode);
    }

    /// <summary>exists, getData, getChildren, getChildren2.</summary>
    public static byte[] PathAndWatchBody(string serverPath, bool watch)
    {
        var writer = new JuteWriter();
        writer.WriteString(serverPath);
        writer.WriteBool(watch);
        return writer.ToArray();
    }

    /// <summary>sync, getACL.</summary>
    public static byte[] PathBody(string serverPath)
    {
        var writer = new JuteWriter();
        writer.WriteString(serverPath);
        return writer.ToArray();
    }

    public static byte[] DeleteBody(string serverPath, int version)
    {
        var writer = new JuteWriter();
        writer.WriteString(serverPath);
        writer.WriteInt(version);
        return writer.ToArray();
    }

    public static byte[] SetDataBody(string serverPath, ReadOnlySpan<byte> data, int version)
    {
        var writer = new JuteWriter();
        writer.WriteString(serverPath);
        writer.WriteBuffer(data);
        writer.WriteInt(version);
        return writer.ToArray();
    }

    public static byte[] AuthBody(string scheme, ReadOnlySpan<byte> auth)
    {
        var writer = new JuteWriter();
        writer.WriteInt(0);
        writer.WriteString(scheme);
        writer.WriteBuffer(auth);
        return writer.ToArray();
    }

    public static byte[] SetWatchesBody(long relativeZxid, IReadOnlyCollection<string> data, IReadOnlyCollection<string> exist, IReadOnlyCollection<string> child)
    {
        var writer = new JuteWriter();
        writer.WriteLong(relativeZxid);
        writer.WriteStrings(data);
        writer.WriteStrings(exist);
        writer.WriteStrings(child);
        return writer.ToArray();
    }

    public static byte[] MultiBody(IReadOnlyList<ZooKeeperOp> ops, Func<string, string> toServerPath)
    {
        var writer = new JuteWriter();
        WriteMulti(writer, ops, toServerPath);
        return writer.ToArray();
    }

    /// <summary>Every op's MultiHeader(type, done=false, err=-1) and body, then the terminator (-1, true, -1).</summary>
    public static void WriteMulti(JuteWriter writer, IReadOnlyList<ZooKeeperOp> ops, Func<string, string> toServerPath)
    {
        foreach (var op in ops)
        {
            writer.WriteInt((int)op.Code);
            writer.WriteBool(false);
            writer.WriteInt(-1);
            op.WriteBody(writer, toServerPath(op.Path));
        }

        writer.WriteInt(-1);
        writer.WriteBool(true);
        writer.WriteInt(-1);
    }

    /// <summary>Reads a multi reply body. The result type is the server's choice (a create2 op comes back as type 1).</summary>
    public static List<OpResult> ReadMultiResults(ReadOnlySpan<byte> body, Func<string, string> toClientPath)
    {
        var reader = new JuteReader(body);
        return ReadMultiResults(ref reader, toClientPath);
    }

    public static List<OpResult> ReadMultiResults(ref JuteReader reader, Func<string, string> toClientPath)
    {
        var results = new List<OpResult>();
        while (true)
        {
            var type = reader.ReadInt();
            var done = reader.ReadBool();
            var err = reader.ReadInt();
            if (done)
            {
                break;
            }

            results.Add(type switch
            {
                (int)OpCode.Create => new OpResult.Created(toClientPath(ReadPath(ref reader)), null),
                (int)OpCode.Create2 or (int)OpCode.CreateContainer => new OpResult.Created(toClientPath(ReadPath(ref reader)), reader.ReadStat()),
                (int)OpCode.Delete => new OpResult.Deleted(),
                (int)OpCode.SetData => new OpResult.DataSet(reader.ReadStat()),
                (int)OpCode.Check => new OpResult.Checked(),
                -1 => new OpResult.Error((ZooKeeperErrorCode)reader.ReadInt()),
                _ => throw new ZooKeeperProtocolException($"Unknown multi result type {type} (err {err})."),
            });
        }

        reader.EnsureConsumed("multi reply");
        return results;
    }

    public static string ReadPath(ref JuteReader reader) =>
        reader.ReadString() ?? throw new ZooKeeperProtocolException("The server returned a null path.");
}
