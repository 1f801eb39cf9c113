using Microsoft.Extensions.Logging;
using Xunit;

namespace ShardedJobs.TestSupport.Runtime;

/// <summary>Writes log lines to the running test's output (shown for failed tests), prefixed with the node's name.</summary>
public sealed class TestOutputLoggerProvider(string node) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(node);

    public void Dispose()
    {
    }

    private sealed class Logger(string node) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                TestContext.Current.TestOutputHelper?.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} [{node}] {logLevel}: {formatter(state, exception)}{(exception is null ? "" : " " + exception.GetType().Name + ": " + exception.Message)}");
            }
            catch (InvalidOperationException)
            {
                // the test has finished; nobody reads this any more
            }
        }
    }
}
