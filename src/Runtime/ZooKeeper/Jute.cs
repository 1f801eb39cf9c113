using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace ShardedJobs.ZooKeeper;

/// <summary>Writes jute's binary encoding (big-endian ints and longs, length-prefixed buffers, -1 for null).</summary>
internal sealed class JuteWriter
{
    private readonly ArrayBufferWriter<byte> _buffer;

    public JuteWriter(int initialCapacity = 256) => _buffer = new ArrayBufferWriter<byte>(initialCapacity);

    public int Length => _buffer.WrittenCount;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.WrittenSpan;

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    public void Clear() => _buffer.Clear();

    public void WriteInt(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
    }

    public void WriteLong(long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
    }

    public void WriteBool(bool value)
    {
        _buffer.GetSpan(1)[0] = value ? (byte)1 : (byte)0;
        _buffer.Advance(1);
    }

    public void WriteBuffer(ReadOnlySpan<byte> value)
    {
        WriteInt(value.Length);
        value.CopyTo(_buffer.GetSpan(value.Length));
        _buffer.Advance(value.Length);
    }

    public void WriteNullBuffer() => WriteInt(-1);

    /// <summary>Bytes as they are, without a length prefix (an already encoded record).</summary>
    public void WriteRaw(ReadOnlySpan<byte> value)
    {
        value.CopyTo(_buffer.GetSpan(value.Length));
        _buffer.Advance(value.Length);
    }

    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteInt(-1);
            return;
        }

        var byteCount = Encoding.UTF8.GetByteCount(value);
        WriteInt(byteCount);
        Encoding.UTF8.GetBytes(value, _buffer.GetSpan(byteCount));
        _buffer.Advance(byteCount);
    }

    public void WriteStrings(IReadOnlyCollection<string> values)
    {
        WriteInt(values.Count);
        foreach (var value in values)
        {
            WriteString(value);
        }
    }

    public void WriteAcls(IReadOnlyList<ZooKeeperAcl> acls)
    {
        WriteInt(acls.Count);
        foreach (var acl in acls)
        {
            WriteInt((int)acl.Permissions);
            WriteString(acl.Scheme);
            WriteString(acl.Id);
        }
    }
}

/// <summary>Reads jute's binary encoding; any read past the end is a <see cref="ZooKeeperProtocolException"/>, never an index error.</summary>
internal ref struct JuteReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    public JuteReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    public readonly int Remaining => _data.Length - _position;

    public readonly int Position => _position;

    public int ReadInt() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public long ReadLong() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    public bool ReadBool() => Take(1)[0] != 0;

    /// <summary>A length-prefixed buffer; null (length -1) is returned as null.</summary>
    public byte[]? ReadBuffer()
    {
        var length = ReadLength();
        return length < 0 ? null : Take(length).ToArray();
    }

    public string? ReadString()
    {
        var length = ReadLength();
        return length < 0 ? null : Encoding.UTF8.GetString(Take(length));
    }

    public List<string> ReadStrings()
    {
        var count = ReadLength();
        var result = new List<string>(Math.Max(0, Math.Min(count, Remaining / 4)));
        for (var i = 0; i < count; i++)
        {
            result.Add(ReadString() ?? throw new ZooKeeperProtocolException("A null string inside a string list."));
        }

        return result;
    }

    public ZooKeeperStat ReadStat() => new(
        Czxid: ReadLong(),
        Mzxid: ReadLong(),
        Ctime: ReadLong(),
        Mtime: ReadLong(),
        Version: ReadInt(),
        Cversion: ReadInt(),
        Aversion: ReadInt(),
        EphemeralOwner: ReadLong(),
        DataLength: ReadInt(),
        NumChildren: ReadInt(),
        Pzxid: ReadLong());

    public List<ZooKeeperAcl> ReadAcls()
    {
        var count = ReadLength();
        var result = new List<ZooKeeperAcl>(Math.Min(count, 64));
        for (var i = 0; i < count; i++)
        {
            var perms = (ZooKeeperPermissions)ReadInt();
            result.Add(new ZooKeeperAcl(perms, ReadString() ?? "", ReadString() ?? ""));
        }

        return result;
    }

    public readonly void EnsureConsumed(string record)
    {
        if (Remaining != 0)
        {
            throw new ZooKeeperProtocolException($"{Remaining} unexpected trailing bytes after {record}.");
        }
    }

    private int ReadLength()
    {
        var length = ReadInt();
        if (length < -1 || length > Remaining)
        {
            throw new ZooKeeperProtocolException($"Length {length} at offset {_position - 4} does not fit the {Remaining} remaining bytes.");
        }

        return length;
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > Remaining)
        {
            throw new ZooKeeperProtocolException($"Truncated record: needed {count} bytes at offset {_position}, {Remaining} left.");
        }

        var slice = _data.Slice(_position, count);
        _position += count;
        return slice;
    }
}
