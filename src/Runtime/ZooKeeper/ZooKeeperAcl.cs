using System.Security.Cryptography;
using System.Text;

namespace ShardedJobs.ZooKeeper;

/// <summary>One access-control entry: <paramref name="Permissions"/> for the identity <paramref name="Scheme"/>:<paramref name="Id"/>.</summary>
public sealed record ZooKeeperAcl(ZooKeeperPermissions Permissions, string Scheme, string Id)
{
    /// <summary>Everything for everyone (<c>world:anyone</c>): ZooKeeper's OPEN_ACL_UNSAFE.</summary>
    public static IReadOnlyList<ZooKeeperAcl> OpenUnsafe { get; } = [new(ZooKeeperPermissions.All, "world", "anyone")];

    /// <summary>Everything for the identities the creating connection authenticated with (needs a digest auth first).</summary>
    public static IReadOnlyList<ZooKeeperAcl> CreatorAll { get; } = [new(ZooKeeperPermissions.All, "auth", "")];

    /// <summary>Read-only for everyone.</summary>
    public static IReadOnlyList<ZooKeeperAcl> ReadUnsafe { get; } = [new(ZooKeeperPermissions.Read, "world", "anyone")];

    /// <summary>An entry for the digest identity of <c>user:password</c>, computed as the server does.</summary>
    public static ZooKeeperAcl Digest(string userAndPassword, ZooKeeperPermissions permissions = ZooKeeperPermissions.All) =>
        new(permissions, "digest", DigestId(userAndPassword));

    /// <summary><c>user:base64(sha1("user:password"))</c>: the identity the server forms for a digest auth.</summary>
    public static string DigestId(string userAndPassword)
    {
        ArgumentNullException.ThrowIfNull(userAndPassword);
        var colon = userAndPassword.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw new ArgumentException($"Digest credentials must look like 'user:password'; got '{Redact(userAndPassword)}'.", nameof(userAndPassword));
        }

        var hash = SHA1.HashData(Encoding.UTF8.GetBytes(userAndPassword));
        return userAndPassword[..colon] + ":" + Convert.ToBase64String(hash);
    }

    internal static string Redact(string userAndPassword)
    {
        var colon = userAndPassword.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? "***" : userAndPassword[..colon] + ":***";
    }
}
