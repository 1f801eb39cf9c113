// Compiled into the source generator and the analyzers (netstandard2.0): the one definition of what a valid [ShardedJob] is,
// over the same cron grammar, item-parameter syntax and time-zone lookup as the runtime (whose files are linked beside this).
using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using ShardedJobs.Cluster;
using ShardedJobs.Scheduling;

namespace ShardedJobs.CodeAnalysis;

/// <summary>Metadata names the generator and analyzers recognise (they never reference the runtime assembly).</summary>
internal static class KnownNames
{
    public const string ShardedJobAttribute = "ShardedJobs.ShardedJobAttribute";
    public const string ShardedJob = "ShardedJobs.IShardedJob";
    public const string DataflowJob = "ShardedJobs.IDataflowJob`1";
}

/// <summary>What a job class is, as far as the generated code is concerned.</summary>
internal enum JobShape
{
    /// <summary>Implements <c>IShardedJob</c>.</summary>
    Simple,

    /// <summary>Implements exactly one <c>IDataflowJob&lt;T&gt;</c>.</summary>
    Dataflow,

    /// <summary>Cannot be a job (SJ0007): see <see cref="JobClass.Problem"/>.</summary>
    Invalid,
}

/// <summary>The class carrying <c>[ShardedJob]</c>: its shape, the dataflow item type, and why it cannot be a job.</summary>
internal readonly struct JobClass
{
    private JobClass(JobShape shape, ITypeSymbol? dataType, string? problem)
    {
        Shape = shape;
        DataType = dataType;
        Problem = problem;
    }

    public JobShape Shape { get; }

    public ITypeSymbol? DataType { get; }

    /// <summary>Why the class cannot be a job, phrased to follow "'{Class}' cannot be a sharded job: ", or null.</summary>
    public string? Problem { get; }

    public static JobClass Of(INamedTypeSymbol type)
    {
        if (type.TypeKind != TypeKind.Class)
        {
            return Invalid("it is not a class");
        }

        if (type.IsAbstract || type.IsStatic)
        {
            return Invalid($"it is {(type.IsStatic ? "static" : "abstract")}; make it a concrete class");
        }

        if (type.IsGenericType)
        {
            return Invalid("it is generic; the generated code needs one closed type per job");
        }

        for (ISymbol? symbol = type; symbol is INamedTypeSymbol current; symbol = current.ContainingType)
        {
            if (current.DeclaredAccessibility is Accessibility.Private or Accessibility.Protected or Accessibility.ProtectedAndInternal)
            {
                return Invalid($"{(SymbolEqualityComparer.Default.Equals(current, type) ? "it" : $"its containing type '{current.Name}'")} is {Describe(current.DeclaredAccessibility)}; the generated code must be able to see it (make it internal or public)");
            }
        }

        if (type.AllInterfaces.Any(i => IsNamed(i, KnownNames.ShardedJob)))
        {
            return new JobClass(JobShape.Simple, null, null);
        }

        var dataflow = type.AllInterfaces.Where(i => IsNamed(i.OriginalDefinition, KnownNames.DataflowJob)).ToList();
        return dataflow.Count switch
        {
            1 => new JobClass(JobShape.Dataflow, dataflow[0].TypeArguments[0], null),
            0 => Invalid("it implements neither IShardedJob nor IDataflowJob<T>"),
            _ => Invalid("it implements IDataflowJob<T> for more than one T; a job fetches one kind of data"),
        };
    }

    private static JobClass Invalid(string problem) => new(JobShape.Invalid, null, problem);

    private static bool IsNamed(INamedTypeSymbol type, string metadataName)
    {
        var dot = metadataName.LastIndexOf('.');
        return type.MetadataName == metadataName.Substring(dot + 1) && type.ContainingNamespace?.ToDisplayString() == metadataName.Substring(0, dot);
    }

    private static string Describe(Accessibility accessibility) => accessibility switch
    {
        Accessibility.Private => "private",
        Accessibility.Protected => "protected",
        _ => "private protected",
    };
}

/// <summary>The rules on the attribute's values. Each returns null when the value is fine, else the problem and its fix.</summary>
internal static class ShardedJobRules
{
    public static string? CheckCron(string? cron) =>
        string.IsNullOrWhiteSpace(cron) ? "the cron expression is empty; give a Quartz cron such as '0 0/5 * * * ?'" : CronParser.Validate(cron);

    public static string? CheckShards(int shards) =>
        shards < 1 ? $"shards is {shards}; a job needs at least 1 item" : null;

    /// <summary>Only meaningful when <see cref="CheckShards"/> passed.</summary>
    public static string? CheckItemParameters(string? itemParameters, int shards) =>
        shards >= 1 && !ItemParameters.TryParse(itemParameters, shards, out _, out var error) ? error : null;

    public static string? CheckTimeZone(string? timeZone) =>
        timeZone is null || TimeZones.TryFind(timeZone, out _, out var error) ? null : error;

    /// <summary>Every rule a generated definition must pass (all but the name clash, which needs every job of the compilation).</summary>
    public static IEnumerable<string> Problems(string? cron, int shards, string? itemParameters, string? timeZone)
    {
        foreach (var problem in new[] { CheckCron(cron), CheckShards(shards), CheckItemParameters(itemParameters, shards), CheckTimeZone(timeZone) })
        {
            if (problem is not null)
            {
                yield return problem;
            }
        }
    }
}
