namespace ShardedJobs.ZooKeeper;

/// <summary>One operation of an atomic <see cref="ZooKeeperClient.MultiAsync"/>.</summary>
public abstract record ZooKeeperOp(string Path)
{
    internal abstract OpCode Code { get; }

    internal abstract void WriteBody(JuteWriter writer, string serverPath);

    public static ZooKeeperOp Create(string path, ReadOnlyMemory<byte> data, CreateMode mode = CreateMode.Persistent, IReadOnlyList<ZooKeeperAcl>? acl = null) =>
        new CreateOp(path, data, mode, acl ?? ZooKeeperAcl.OpenUnsafe);

    public static ZooKeeperOp Delete(string path, int version = -1) => new DeleteOp(path, version);

    public static ZooKeeperOp SetData(string path, ReadOnlyMemory<byte> data, int version = -1) => new SetDataOp(path, data, version);

    /// <summary>Fails the multi unless the node exists with <paramref name="version"/> (-1: any version).</summary>
    public static ZooKeeperOp Check(string path, int version) => new CheckOp(path, version);
}

public sealed record CreateOp(string Path, ReadOnlyMemory<byte> Data, CreateMode Mode, IReadOnlyList<ZooKeeperAcl> Acl) : ZooKeeperOp(Path)
{
    internal override OpCode Code => Mode == CreateMode.Container ? OpCode.CreateContainer : OpCode.Create;

    internal override void WriteBody(JuteWriter writer, string serverPath) => ZooKeeperRequests.WriteCreate(writer, serverPath, Data.Span, Acl, Mode);
}

public sealed record DeleteOp(string Path, int Version) : ZooKeeperOp(Path)
{
    internal override OpCode Code => OpCode.Delete;

    internal override void WriteBody(JuteWriter writer, string serverPath) => writer.WriteRaw(ZooKeeperRequests.DeleteBody(serverPath, Version));
}

public sealed record SetDataOp(string Path, ReadOnlyMemory<byte> Data, int Version) : ZooKeeperOp(Path)
{
    internal override OpCode Code => OpCode.SetData;

    internal override void WriteBody(JuteWriter writer, string serverPath) => writer.WriteRaw(ZooKeeperRequests.SetDataBody(serverPath, Data.Span, Version));
}

public sealed record CheckOp(string Path, int Version) : ZooKeeperOp(Path)
{
    internal override OpCode Code => OpCode.Check;

    // Same record as delete's body (path, version).
    internal override void WriteBody(JuteWriter writer, string serverPath) => writer.WriteRaw(ZooKeeperRequests.DeleteBody(serverPath, Version));
}

/// <summary>The result of one operation of a multi.</summary>
public abstract record OpResult
{
    /// <summary>A create: the actual path (with any sequence suffix); <see cref="Stat"/> only for containers (the server sends none otherwise).</summary>
    public sealed record Created(string Path, ZooKeeperStat? Stat) : OpResult;

    public sealed record Deleted : OpResult;

    public sealed record DataSet(ZooKeeperStat Stat) : OpResult;

    public sealed record Checked : OpResult;

    /// <summary>In a failed multi: <see cref="ZooKeeperErrorCode.Ok"/> for the operations before the failing one,
    /// its code for the failing one, <see cref="ZooKeeperErrorCode.RuntimeInconsistency"/> after it.</summary>
    public sealed record Error(ZooKeeperErrorCode Code) : OpResult;
}
