namespace ShardedJobs;

/// <summary>
/// A loop on the thread pool that runs until it is stopped: stopping cancels its token and waits for the loop to end (an
/// <see cref="OperationCanceledException"/> from that token is the normal way out). One shape for the runtime's loops.
/// </summary>
internal sealed class BackgroundLoop : IAsyncDisposable
{
    // Never disposed: it owns no timer, and loops and callbacks may still read its token after the stop.
    private readonly CancellationTokenSource _stop = new();
    private Task _task = Task.CompletedTask;
    private int _stopped;

    /// <summary>Cancelled when the loop is asked to stop.</summary>
    public CancellationToken Token => _stop.Token;

    public bool IsStopping => _stop.IsCancellationRequested;

    public void Start(Func<CancellationToken, Task> body) => _task = Task.Run(() => body(_stop.Token));

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
