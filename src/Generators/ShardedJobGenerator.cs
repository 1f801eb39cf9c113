using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using ShardedJobs.CodeAnalysis;

namespace ShardedJobs.Generators;

/// <summary>
/// Turns every <c>[ShardedJob]</c> class into a typed <c>ShardedJobDefinition</c> with a dispatcher, and writes the
/// assembly's <c>AddShardedJobs()</c>. Incremental end to end: the parse step yields value-equatable models, each job's
/// source depends only on its own model (and on the set of clashing names), and the catalog only on names and types.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class ShardedJobGenerator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var parsed = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.ShardedJobAttribute,
                static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.ClassDeclarationSyntax or Microsoft.CodeAnalysis.CSharp.Syntax.RecordDeclarationSyntax,
                JobParser.Parse)
            .WithTrackingName(StepNames.Parse);

        var jobs = parsed
            .Where(static result => result.Job is not null)
            .Select(static (result, _) => result.Job!)
            .WithTrackingName(StepNames.Jobs);

        // SJ0008: a name used twice is rejected for every class using it; knowing which needs all the jobs at once.
        var clashes = jobs
            .Select(static (job, _) => job.Name)
            .Collect()
            .Select(static (names, _) => names.GroupBy(n => n, System.StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key)
                .OrderBy(n => n, System.StringComparer.Ordinal).ToEquatableArray())
            .WithTrackingName(StepNames.Clashes);

        var emitted = jobs
            .Combine(clashes)
            .Where(static pair => !pair.Right.Contains(pair.Left.Name))
            .Select(static (pair, _) => pair.Left)
            .WithTrackingName(StepNames.Emitted);

        context.RegisterSourceOutput(emitted, static (output, job) => output.AddSource(JobEmitter.HintName(job.Identifier), JobEmitter.Job(job)));

        // The catalog appears as soon as one class carries the attribute (even a rejected one), so a call to AddShardedJobs()
        // never adds "not found" to the analyzers' diagnostic.
        var anyAttribute = parsed.Collect().Select(static (all, _) => all.Length > 0).WithTrackingName(StepNames.AnyJob);
        var catalog = emitted
            .Select(static (job, _) => new CatalogEntry(job.Name, job.Identifier, job.TypeName))
            .Collect()
            .Select(static (entries, _) => entries.OrderBy(e => e.Name, System.StringComparer.Ordinal).ToEquatableArray())
            .Combine(anyAttribute)
            .WithTrackingName(StepNames.Catalog);

        context.RegisterSourceOutput(catalog, static (output, pair) =>
        {
            if (pair.Right)
            {
                output.AddSource(JobEmitter.CatalogHintName, JobEmitter.Catalog(pair.Left));
            }
        });
    }
}

/// <summary>The tracked steps' names (incremental-caching tests assert on them).</summary>
public static class StepNames
{
    public const string Parse = "ShardedJobs.Parse";
    public const string Jobs = "ShardedJobs.Jobs";
    public const string Clashes = "ShardedJobs.Clashes";
    public const string Emitted = "ShardedJobs.Emitted";
    public const string AnyJob = "ShardedJobs.AnyJob";
    public const string Catalog = "ShardedJobs.Catalog";
}
