using AotSample;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// Runs its jobs on the embedded registry until each item of one fire has run once, then exits 0 (used by the AOT test).
var builder = Host.CreateApplicationBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSingleton<Progress>();
builder.Services.AddShardedJobs(options => options.InstanceId = "aot");
var host = builder.Build();
var progress = host.Services.GetRequiredService<Progress>();
await host.RunAsync();
return progress.Done ? 0 : 1;
