using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;
using ShardedJobs.Coordination;
using Xunit;

namespace ShardedJobs.Tests.Coordination;

/// <summary>The embedded registry's fault hooks on fake time: no sleeping, exact session-timeout boundaries.</summary>
public sealed class InMemoryRegistryFaultTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-24T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public async Task Suspension_shorter_than_the_session_timeout_keeps_the_session()
    {
        var server = new InMemoryRegistryServer(_time, TimeSpan.FromSeconds(10));
        await using var registry = server.Connect();
        await using var observer = server.Connect();
        await registry.CreateAsync("/e", Array.Empty<byte>(), NodeKind.Ephemeral, Ct);
        var session = registry.SessionId;

        registry.Suspend();
        var failure = await Assert.ThrowsAsync<RegistryException>(() => registry.ExistsAsync("/e", cancellationToken: Ct));
        Assert.Equal(RegistryErrorCode.ConnectionLoss, failure.Code);
        Assert.True(failure.IsTransient);
        _time.Advance(TimeSpan.FromSeconds(9.9));
        registry.Resume();

        Assert.Equal(session, registry.SessionId);
        Assert.NotNull(await observer.ExistsAsync("/e", cancellationToken: Ct));
    }

    [Fact]
    public async Task Suspension_reaching_the_session_timeout_expires_the_session_and_deletes_its_ephemerals()
    {
        var server = new InMemoryRegistryServer(_time, TimeSpan.FromSeconds(10));
        await using var registry = server.Connect();
        await using var observer = server.Connect();
        await registry.CreateAsync("/e", Array.Empty<byte>(), NodeKind.Ephemeral, Ct);
        await registry.KeepEphemeralAsync("/kept", "k"u8.ToArray(), Ct);
        var events = Channel.CreateUnbounded<RegistrySessionEvent>();
        registry.SessionChanged += e => events.Writer.TryWrite(e);
        var session = registry.SessionId;

        registry.Suspend();
        _time.Advance(TimeSpan.FromSeconds(10));

        // Expired on the server while still disconnected: peers see the ephemerals go at once.
        Assert.Null(await observer.ExistsAsync("/e", cancellationToken: Ct));
        Assert.Null(await observer.ExistsAsync("/kept", cancellationToken: Ct));

        registry.Resume();
        Assert.Equal(RegistrySessionEventKind.Suspended, (await events.Reader.ReadAsync(Ct)).Kind);
        Assert.Equal(RegistrySessionEventKind.SessionLost, (await events.Reader.ReadAsync(Ct)).Kind);
        Assert.Equal(RegistrySessionEventKind.NewSession, (await events.Reader.ReadAsync(Ct)).Kind);
        Assert.NotEqual(session, registry.SessionId);
        Assert.Equal(registry.SessionId, (await observer.ExistsAsync("/kept", cancellationToken: Ct))!.EphemeralOwner);
    }

    [Fact]
    public async Task Drop_connection_for_a_while_runs_on_the_servers_clock()
    {
        var server = new InMemoryRegistryServer(_time, TimeSpan.FromSeconds(10));
        await using var registry = server.Connect();

        var drop = registry.DropConnectionAsync(TimeSpan.FromSeconds(3), Ct);
        Assert.Equal(RegistryState.Suspended, registry.State);
        _time.Advance(TimeSpan.FromSeconds(3));
        await drop;

        Assert.Equal(RegistryState.Connected, registry.State);
    }

    [Fact]
    public async Task Watch_delivery_delay_holds_events_until_the_clock_moves()
    {
        var server = new InMemoryRegistryServer(_time);
        await using var registry = server.Connect();
        registry.WatchDeliveryDelay = TimeSpan.FromSeconds(1);
        var fired = new TaskCompletionSource<RegistryWatchEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        await registry.ExistsAsync("/n", e => fired.TrySetResult(e), Ct);

        await registry.CreateAsync("/n", Array.Empty<byte>(), cancellationToken: Ct);
        await Task.Delay(50, Ct);
        Assert.False(fired.Task.IsCompleted);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(new RegistryWatchEvent(RegistryEventType.NodeCreated, "/n"), await fired.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct));
    }

    [Fact]
    public async Task Watch_events_that_happen_while_suspended_arrive_after_the_resume()
    {
        var server = new InMemoryRegistryServer(_time);
        await using var registry = server.Connect();
        await using var writer = server.Connect();
        var fired = new TaskCompletionSource<RegistryWatchEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        await registry.ExistsAsync("/n", e => fired.TrySetResult(e), Ct);

        registry.Suspend();
        await writer.CreateAsync("/n", Array.Empty<byte>(), cancellationToken: Ct);
        await Task.Delay(50, Ct);
        Assert.False(fired.Task.IsCompleted);

        registry.Resume();
        Assert.Equal(RegistryEventType.NodeCreated, (await fired.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct)).Type);
    }
}
