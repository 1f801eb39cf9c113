using ShardedJobs.TestSupport;
using Xunit;

namespace ShardedJobs.ZooKeeper.Tests;

/// <summary>One real ZooKeeper server per test class (classes run in parallel); tests isolate themselves under unique paths.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public ZooKeeperServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Server = await ZooKeeperServer.StartAsync(new ZooKeeperServerOptions
        {
            TickTimeMs = 200,
            SystemProperties = new Dictionary<string, string> { ["znode.container.checkIntervalMs"] = "300" },
        });

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    public Task<ZooKeeperClient> ConnectAsync(string? chroot = null, TimeSpan? sessionTimeout = null, string? digest = null, string? connectionString = null) =>
        ZooKeeperClient.ConnectAsync(new ZooKeeperClientOptions
        {
            ConnectionString = (connectionString ?? Server.ConnectionString) + chroot,
            SessionTimeout = sessionTimeout ?? TimeSpan.FromSeconds(4),
            ConnectionTimeout = TimeSpan.FromSeconds(15),
            Digest = digest,
        }, TestContext.Current.CancellationToken);

    public static string UniqueRoot() => "/t-" + Guid.NewGuid().ToString("N")[..12];
}

internal static class Bytes
{
    public static byte[] Of(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    public static string Text(byte[] bytes) => System.Text.Encoding.UTF8.GetString(bytes);
}

/// <summary>Collects watch events for assertions, with a bounded wait.</summary>
internal sealed class EventRecorder
{
    private readonly System.Threading.Channels.Channel<WatchedEvent> _events = System.Threading.Channels.Channel.CreateUnbounded<WatchedEvent>();

    public Action<WatchedEvent> Watcher => e => _events.Writer.TryWrite(e);

    public async Task<WatchedEvent> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(15));
        return await _events.Reader.ReadAsync(cts.Token);
    }

    /// <summary>Waits <paramref name="quiet"/> and asserts nothing arrived.</summary>
    public async Task AssertNoneAsync(TimeSpan quiet)
    {
        await Task.Delay(quiet, TestContext.Current.CancellationToken);
        Assert.False(_events.Reader.TryRead(out var unexpected), $"unexpected event {unexpected}");
    }
}
