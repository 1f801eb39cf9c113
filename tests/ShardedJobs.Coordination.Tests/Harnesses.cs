using ShardedJobs.Coordination;
using ShardedJobs.TestSupport;
using ShardedJobs.ZooKeeper;
using Xunit;

namespace ShardedJobs.Coordination.Tests;

/// <summary>What the contract suite needs from a registry implementation: sessions on one shared store, and fault hooks.</summary>
public interface IRegistryHarness : IAsyncLifetime
{
    /// <summary>The session timeout every registry of the harness runs with.</summary>
    TimeSpan SessionTimeout { get; }

    /// <summary>A new registry (its own session) on the harness's shared store.</summary>
    Task<IRegistry> ConnectAsync();

    /// <summary>Ends the registry's session from outside, as an expiry after a long partition would.</summary>
    Task ExpireSessionAsync(IRegistry registry);

    /// <summary>Cuts the registry's connection for <paramref name="duration"/> (shorter than the session timeout), then restores it.</summary>
    Task DropConnectionAsync(IRegistry registry, TimeSpan duration);
}

public sealed class InMemoryHarness : IRegistryHarness
{
    private readonly InMemoryRegistryServer _server = new(TimeProvider.System, TimeSpan.FromSeconds(2));

    public TimeSpan SessionTimeout => _server.SessionTimeout;

    public Task<IRegistry> ConnectAsync() => Task.FromResult<IRegistry>(_server.Connect());

    public Task ExpireSessionAsync(IRegistry registry)
    {
        ((InMemoryRegistry)registry).ExpireSession();
        return Task.CompletedTask;
    }

    public Task DropConnectionAsync(IRegistry registry, TimeSpan duration) => ((InMemoryRegistry)registry).DropConnectionAsync(duration);

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public sealed class ZooKeeperHarness : IRegistryHarness
{
    private readonly Dictionary<IRegistry, TcpProxy> _proxies = [];
    private ZooKeeperServer _server = null!;

    public TimeSpan SessionTimeout => TimeSpan.FromSeconds(2);

    public async ValueTask InitializeAsync() => _server = await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions { TickTimeMs = 200 });

    public async Task<IRegistry> ConnectAsync()
    {
        // Each registry talks through its own proxy, so a test can cut one registry's connection and no other's.
        var proxy = new TcpProxy(_server.ClientPort);
        var registry = await ZooKeeperRegistry.ConnectAsync(new ZooKeeperRegistryOptions
        {
            ConnectionString = proxy.ConnectionString,
            Namespace = "contract",
            SessionTimeout = SessionTimeout,
            ConnectionTimeout = TimeSpan.FromSeconds(15),
        });
        lock (_proxies)
        {
            _proxies[registry] = proxy;
        }

        return registry;
    }

    /// <summary>Attaches a second connection to the session and closes it: the server ends the session and kicks the original connection.</summary>
    public async Task ExpireSessionAsync(IRegistry registry)
    {
        var client = ((ZooKeeperRegistry)registry).Client;
        await using var killer = await ZooKeeperClient.ConnectAsync(new ZooKeeperClientOptions
        {
            ConnectionString = _server.ConnectionString,
            SessionTimeout = SessionTimeout,
            ExistingSession = (client.SessionId, client.SessionPassword),
        });
        await killer.CloseAsync();
    }

    public async Task DropConnectionAsync(IRegistry registry, TimeSpan duration)
    {
        TcpProxy proxy;
        lock (_proxies)
        {
            proxy = _proxies[registry];
        }

        proxy.Partition();
        await Task.Delay(duration);
        proxy.Heal();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var proxy in _proxies.Values)
        {
            await proxy.DisposeAsync();
        }

        await _server.DisposeAsync();
    }
}

public sealed class InMemoryRegistryContractTests(InMemoryHarness harness) : RegistryContractTests<InMemoryHarness>(harness);

public sealed class ZooKeeperRegistryContractTests(ZooKeeperHarness harness) : RegistryContractTests<ZooKeeperHarness>(harness);

public sealed class ZooKeeperRegistryStartupTests
{
    [Fact]
    public async Task Unreachable_zookeeper_gives_one_clear_error_naming_the_connection_string_and_timeout()
    {
        var port = FreePorts.Take(1)[0];

        var error = await Assert.ThrowsAsync<RegistryException>(() => ZooKeeperRegistry.ConnectAsync(new ZooKeeperRegistryOptions
        {
            ConnectionString = $"127.0.0.1:{port}",
            Namespace = "shop",
            ConnectionTimeout = TimeSpan.FromSeconds(1),
        }, TestContext.Current.CancellationToken));

        Assert.Equal(RegistryErrorCode.ConnectionLoss, error.Code);
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.Contains("within 1 s", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    public async Task Namespace_must_be_one_node_name(string ns)
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => ZooKeeperRegistry.ConnectAsync(new ZooKeeperRegistryOptions
        {
            ConnectionString = "127.0.0.1:1",
            Namespace = ns,
        }, TestContext.Current.CancellationToken));

        Assert.Contains("namespace", error.Message, StringComparison.Ordinal);
    }
}

public sealed class ZooKeeperRegistryBackgroundStartTests
{
    [Fact]
    public async Task With_retry_in_background_an_unreachable_start_returns_suspended_and_connects_when_zookeeper_appears()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ZooKeeperServer.StartAsync(cancellationToken: ct);
        await using var proxy = new TcpProxy(server.ClientPort);
        proxy.RefuseConnections();

        await using var registry = await ZooKeeperRegistry.ConnectAsync(new ZooKeeperRegistryOptions
        {
            ConnectionString = proxy.ConnectionString,
            Namespace = "late",
            SessionTimeout = TimeSpan.FromSeconds(2),
            ConnectionTimeout = TimeSpan.FromMilliseconds(500),
            RetryInBackground = true,
        }, ct);
        var connected = new TaskCompletionSource<RegistrySessionEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        registry.SessionChanged += e => connected.TrySetResult(e);

        Assert.Equal(RegistryState.Suspended, registry.State);
        var early = await Assert.ThrowsAsync<RegistryException>(() => registry.ExistsAsync("/x", cancellationToken: ct));
        Assert.Equal(RegistryErrorCode.ConnectionLoss, early.Code);
        Assert.Contains(proxy.ConnectionString, early.Message, StringComparison.Ordinal);

        proxy.Heal();

        Assert.Equal(RegistrySessionEventKind.NewSession, (await connected.Task.WaitAsync(TimeSpan.FromSeconds(30), ct)).Kind);
        Assert.Equal(RegistryState.Connected, registry.State);
        await registry.CreateAsync("/x", "1"u8.ToArray(), cancellationToken: ct);
        Assert.Equal("/late", registry.Chroot);
        Assert.Equal("1", await JavaCli.GetDataAsync(server.ConnectionString, "/late/x"));
    }
}
