using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;

namespace ShardedJobs.Analyzers.Tests;

/// <summary>
/// The one package a user adds: <c>dotnet pack</c> of src/Runtime, consumed by a fresh project outside the repository, gets
/// the runtime, the generated <c>AddShardedJobs()</c> and the analyzers' diagnostics in a plain <c>dotnet build</c>.
/// </summary>
public sealed class PackageTests
{
    private static readonly string Configuration = typeof(PackageTests).Assembly.GetCustomAttributes<AssemblyConfigurationAttribute>().Single().Configuration;

    [Fact]
    public async Task A_project_consuming_the_packed_package_gets_the_generator_and_the_analyzers()
    {
        var ct = TestContext.Current.CancellationToken;
        // A version no cache has seen, so NuGet cannot hand back an older build of the package.
        var version = $"0.0.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        var work = Directory.CreateTempSubdirectory("shardedjobs-pack-");
        try
        {
            var feed = Directory.CreateDirectory(Path.Combine(work.FullName, "feed")).FullName;
            var pack = await Dotnet(SampleTests.RepositoryRoot, ct, "pack", "src/Runtime/ShardedJobs.csproj", "--no-build", "-c", Configuration, "-o", feed, $"-p:Version={version}", "-nologo");
            Assert.True(pack.ExitCode == 0, pack.Output);
            using (var package = System.IO.Compression.ZipFile.OpenRead(Path.Combine(feed, $"ShardedJobs.{version}.nupkg")))
            {
                var entries = package.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
                foreach (var expected in new[] { "lib/net10.0/ShardedJobs.dll", "analyzers/dotnet/cs/ShardedJobs.Generators.dll", "analyzers/dotnet/cs/ShardedJobs.Analyzers.dll", "analyzers/dotnet/cs/ShardedJobs.CodeFixes.dll", "analyzers/dotnet/cs/NCrontab.dll" })
                {
                    Assert.Contains(expected, entries);
                }
            }

            var project = Directory.CreateDirectory(Path.Combine(work.FullName, "consumer")).FullName;
            await File.WriteAllTextAsync(Path.Combine(project, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="shardedjobs-under-test" value="{feed}" />
                  </packageSources>
                </configuration>
                """, ct);
            await File.WriteAllTextAsync(Path.Combine(project, "Consumer.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="ShardedJobs" Version="{version}" />
                    <PackageReference Include="Microsoft.Extensions.DependencyInjection" Version="10.0.0" />
                  </ItemGroup>
                </Project>
                """, ct);
            await File.WriteAllTextAsync(Path.Combine(project, "Program.cs"), """
                using Microsoft.Extensions.DependencyInjection;
                using ShardedJobs;

                var services = new ServiceCollection().AddShardedJobs();
                Console.WriteLine(services.Count > 0 ? "registered" : "nothing");

                [ShardedJob("0 0/30 * * * ?", shards: 3, Failover = true)]
                public sealed class OrderSync : IShardedJob
                {
                    public Task ExecuteAsync(ShardContext shard, CancellationToken ct) => Task.CompletedTask;
                }
                """, ct);

            var good = await Dotnet(project, ct, "build", "-nologo");
            Assert.True(good.ExitCode == 0, good.Output);
            Assert.DoesNotContain("SJ000", good.Output, StringComparison.Ordinal);

            await File.WriteAllTextAsync(Path.Combine(project, "Broken.cs"), """
                using ShardedJobs;

                [ShardedJob("0 0 * * * ?", shards: 0)]
                public sealed class NoShards : IShardedJob
                {
                    public Task ExecuteAsync(ShardContext shard, CancellationToken ct) => Task.CompletedTask;
                }

                [ShardedJob("0 0 * * * ?", Failover = true, MonitorExecution = false)]
                public sealed class Unmonitored : IShardedJob
                {
                    public Task ExecuteAsync(ShardContext shard, CancellationToken ct) => Task.CompletedTask;
                }
                """, ct);
            var broken = await Dotnet(project, ct, "build", "-nologo");
            Assert.NotEqual(0, broken.ExitCode);
            Assert.True(Regex.IsMatch(broken.Output, @"Broken\.cs\(3,36\): error SJ0004: Job 'NoShards': shards is 0"), broken.Output);
            Assert.True(Regex.IsMatch(broken.Output, @"Broken\.cs\(9,64\): warning SJ0001: Job 'Unmonitored' has Failover = true but MonitorExecution = false"), broken.Output);
        }
        finally
        {
            work.Delete(recursive: true);
            var cached = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"), "shardedjobs", version);
            if (Directory.Exists(cached))
            {
                Directory.Delete(cached, recursive: true);
            }
        }
    }

    private static async Task<(int ExitCode, string Output)> Dotnet(string directory, CancellationToken ct, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // The consumer is a user's project: not this repository's CI build, and no build server left behind.
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, $"dotnet {string.Join(' ', arguments)} (exit {process.ExitCode}):\n{await output}\n{await error}");
    }
}
