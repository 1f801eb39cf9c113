using System.Globalization;

namespace ShardedJobs.ZooKeeper;

/// <summary>A parsed ZooKeeper connection string: <c>host:port[,host:port...][/chroot]</c> (port defaults to 2181).</summary>
public sealed record ZooKeeperConnectionString(IReadOnlyList<(string Host, int Port)> Servers, string? Chroot)
{
    public const int DefaultPort = 2181;

    public static ZooKeeperConnectionString Parse(string connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new FormatException("The ZooKeeper connection string is empty; expected 'host:port[,host:port...][/chroot]', e.g. '127.0.0.1:2181'.");
        }

        var text = connectionString.Trim();
        string? chroot = null;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            chroot = text[slash..];
            text = text[..slash];
            if (chroot == "/")
            {
                chroot = null;
            }
            else
            {
                ZooKeeperPaths.Validate(chroot, "chroot of connection string '" + connectionString + "'");
            }
        }

        var servers = new List<(string, int)>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (part.Length == 0)
            {
                throw new FormatException($"The ZooKeeper connection string '{connectionString}' has an empty server entry; remove the extra comma.");
            }

            // host, host:port, [v6]:port
            string host;
            var port = DefaultPort;
            var lastColon = part.LastIndexOf(':');
            if (part.StartsWith('[') && part.IndexOf(']', StringComparison.Ordinal) is var close and > 0)
            {
                host = part[1..close];
                if (close + 1 < part.Length)
                {
                    port = ParsePort(part[(close + 2)..], part, connectionString);
                }
            }
            else if (lastColon >= 0)
            {
                host = part[..lastColon];
                port = ParsePort(part[(lastColon + 1)..], part, connectionString);
            }
            else
            {
                host = part;
            }

            if (host.Length == 0)
            {
                throw new FormatException($"The ZooKeeper connection string '{connectionString}' has a server '{part}' without a host.");
            }

            servers.Add((host, port));
        }

        return new ZooKeeperConnectionString(servers, chroot);
    }

    private static int ParsePort(string text, string part, string connectionString) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? port
            : throw new FormatException($"The ZooKeeper connection string '{connectionString}' has server '{part}' with an invalid port '{text}'; expected 1-65535.");
}

/// <summary>Path rules shared by the client and its callers.</summary>
public static class ZooKeeperPaths
{
    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="path"/> is a valid absolute node path.</summary>
    public static void Validate(string path, string what = "path", bool sequential = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        var problem = Describe(path, sequential);
        if (problem is not null)
        {
            throw new ArgumentException($"Invalid ZooKeeper {what} '{path}': {problem}.", nameof(path));
        }
    }

    private static string? Describe(string path, bool sequential)
    {
        if (path.Length == 0 || path[0] != '/')
        {
            return "it must start with '/'";
        }

        if (path.Length == 1)
        {
            return null;
        }

        if (path[^1] == '/' && !sequential)
        {
            return "it must not end with '/'";
        }

        var segments = path.Split('/');
        for (var i = 1; i < segments.Length; i++)
        {
            var segment = segments[i];
            if (segment.Length == 0 && !(sequential && i == segments.Length - 1))
            {
                return "it has an empty segment ('//')";
            }

            if (segment is "." or "..")
            {
                return "relative segments ('.' and '..') are not allowed";
            }
        }

        foreach (var c in path)
        {
            if (c == '\0' || (c > '\u0000' && c <= '\u001f') || (c >= '\u007f' && c <= '\u009f') || (c >= '\ud800' && c <= '\uf8ff') || c >= '\ufff0')
            {
                return $"it contains the character U+{(int)c:X4}, which ZooKeeper rejects";
            }
        }

        return null;
    }

    /// <summary>The parent of <paramref name="path"/> (<c>/</c> for top-level nodes).</summary>
    public static string Parent(string path)
    {
        var slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }

    /// <summary>Joins a parent path and a child name.</summary>
    public static string Combine(string parent, string child) => parent == "/" ? "/" + child : parent + "/" + child;
}
