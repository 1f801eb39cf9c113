using Xunit;

namespace ShardedJobs.TestSupport;

/// <summary>
/// Where the Debian ZooKeeper package put its server, and how a test asks for it.
/// Outside CI a missing installation skips the test; under CI (the <c>CI</c> variable set) it fails it,
/// so a broken install step can never turn into a green run that tested nothing.
/// </summary>
public static class ZooKeeperInstallation
{
    public const string InstallHint =
        "ZooKeeper is not installed. Install it with `sudo apt-get update && sudo apt-get install -y zookeeper` " +
        "(Debian/Ubuntu), or run ./eng/test.sh, which installs it when missing.";

    private static readonly Lazy<string?> s_classPath = new(FindClassPath);

    /// <summary>True when <c>CI</c> is set to anything but empty/false.</summary>
    public static bool IsCi =>
        Environment.GetEnvironmentVariable("CI") is { Length: > 0 } ci && !ci.Equals("false", StringComparison.OrdinalIgnoreCase);

    /// <summary>The JVM class path that runs ZooKeeper's QuorumPeerMain, or null when ZooKeeper is not installed.</summary>
    public static string? ClassPath => s_classPath.Value;

    public static string JavaExecutable =>
        Environment.GetEnvironmentVariable("JAVA_HOME") is { Length: > 0 } home && File.Exists(Path.Combine(home, "bin", "java"))
            ? Path.Combine(home, "bin", "java")
            : "java";

    /// <summary>Returns the class path, or fails (CI) / skips (local) the calling test with install instructions.</summary>
    public static string Require() => Require(ClassPath, IsCi);

    internal static string Require(string? classPath, bool isCi)
    {
        if (classPath is not null)
        {
            return classPath;
        }

        if (isCi)
        {
            throw new InvalidOperationException(InstallHint);
        }

        Assert.Skip(InstallHint);
        return null!; // unreachable: Assert.Skip throws
    }

    private static string? FindClassPath() => FindClassPath(Environment.GetEnvironmentVariable("ZOOKEEPER_JAVA_DIR") ?? "/usr/share/java");

    internal static string? FindClassPath(string javaDir)
    {
        var serverJar = Path.Combine(javaDir, "zookeeper.jar");
        if (!File.Exists(serverJar))
        {
            return null;
        }

        // The Debian package spreads ZooKeeper's dependencies (netty, slf4j, logging, jute...) over /usr/share/java.
        var jars = Directory.GetFiles(javaDir, "*.jar").Order(StringComparer.Ordinal);
        var confDir = Directory.Exists("/etc/zookeeper/conf") ? "/etc/zookeeper/conf" : null;
        return string.Join(':', (confDir is null ? jars : jars.Prepend(confDir)));
    }
}
