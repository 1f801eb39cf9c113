using Xunit;

namespace ShardedJobs.TestSupport.Tests;

public sealed class ZooKeeperInstallationTests
{
    [Fact]
    public void Missing_zookeeper_fails_under_CI_with_install_instructions()
    {
        var error = Assert.Throws<InvalidOperationException>(() => ZooKeeperInstallation.Require(classPath: null, isCi: true));

        Assert.Contains("apt-get install -y zookeeper", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_directory_without_zookeeper_jar_is_not_an_installation()
    {
        var empty = Directory.CreateTempSubdirectory("no-zk-").FullName;
        try
        {
            Assert.Null(ZooKeeperInstallation.FindClassPath(empty));
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    [Fact]
    public void The_debian_installation_puts_the_server_jar_and_its_config_on_the_class_path()
    {
        var classPath = ZooKeeperInstallation.Require();

        Assert.Contains("/usr/share/java/zookeeper.jar", classPath.Split(':'));
        Assert.Equal("/etc/zookeeper/conf", classPath.Split(':')[0]);
    }
}
