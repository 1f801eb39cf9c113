using Xunit;

namespace ShardedJobs.ZooKeeper.Tests;

public sealed class ConcurrencyTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Many_callers_pipelining_on_one_client_each_get_their_own_replies()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);

        // 32 callers x 100 operations, all in flight together on one connection; every reply must reach its own caller.
        var callers = Enumerable.Range(0, 32).Select(caller => Task.Run(async () =>
        {
            var path = $"{root}/c{caller}";
            await zk.CreateAsync(path, Bytes.Of("0"), cancellationToken: Ct);
            for (var i = 1; i <= 100; i++)
            {
                var stat = await zk.SetDataAsync(path, Bytes.Of(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), version: i - 1, Ct);
                Assert.Equal(i, stat.Version);
                Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), Bytes.Text((await zk.GetDataAsync(path, cancellationToken: Ct)).Data));
            }
        }, Ct)).ToArray();
        await Task.WhenAll(callers);

        Assert.Equal(32, (await zk.GetChildrenAsync(root, cancellationToken: Ct)).Count);
    }

    [Fact]
    public async Task Thousands_of_unawaited_requests_complete_in_order()
    {
        await using var zk = await fixture.ConnectAsync();
        var root = ServerFixture.UniqueRoot();
        await zk.CreateAsync(root, Bytes.Of(""), cancellationToken: Ct);

        var creates = Enumerable.Range(0, 2000).Select(i => zk.CreateAsync($"{root}/s-", Bytes.Of(""), CreateMode.PersistentSequential, cancellationToken: Ct)).ToArray();
        var paths = await Task.WhenAll(creates);

        // Sent in this order, applied in this order: the sequence suffixes prove both the pipelining and the FIFO matching.
        Assert.Equal(Enumerable.Range(0, 2000).Select(i => $"{root}/s-{i:D10}"), paths);
    }

    [Fact]
    public async Task Concurrent_version_checked_increments_from_many_clients_lose_no_update()
    {
        var clients = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => fixture.ConnectAsync()));
        var root = ServerFixture.UniqueRoot();
        await clients[0].CreateAsync(root, Bytes.Of("0"), cancellationToken: Ct);

        await Task.WhenAll(clients.Select(zk => Task.Run(async () =>
        {
            for (var done = 0; done < 20;)
            {
                var current = await zk.GetDataAsync(root, cancellationToken: Ct);
                var next = int.Parse(Bytes.Text(current.Data), System.Globalization.CultureInfo.InvariantCulture) + 1;
                try
                {
                    await zk.SetDataAsync(root, Bytes.Of(next.ToString(System.Globalization.CultureInfo.InvariantCulture)), current.Stat.Version, Ct);
                    done++;
                }
                catch (BadVersionException)
                {
                    // someone else won this round; read again
                }
            }
        }, Ct)));

        Assert.Equal("100", Bytes.Text((await clients[0].GetDataAsync(root, cancellationToken: Ct)).Data));
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }
}
