using System.Linq;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using ShardedJobs.CodeAnalysis;

namespace ShardedJobs.Generators;

/// <summary>
/// Reads one <c>[ShardedJob]</c> class into a <see cref="JobModel"/>: every constructor and named argument (constants and
/// <c>nameof</c> arrive folded), the job interface and its data type, names for the generated code. Returns no job for a
/// class the analyzers reject (SJ0003–SJ0007), so the user sees one clear diagnostic and no compiler errors from generated code.
/// </summary>
internal static class JobParser
{
    public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetSymbol is not INamedTypeSymbol type || context.Attributes.IsDefaultOrEmpty)
        {
            return new ParseResult(null);
        }

        cancellationToken.ThrowIfCancellationRequested();
        var attribute = context.Attributes[0];
        var jobClass = JobClass.Of(type);
        if (jobClass.Shape == JobShape.Invalid || attribute.ConstructorArguments.Length < 1)
        {
            return new ParseResult(null);
        }

        var cron = attribute.ConstructorArguments[0].Value as string;
        var shards = attribute.ConstructorArguments.Length > 1 && attribute.ConstructorArguments[1].Value is int given ? given : 1;
        var named = attribute.NamedArguments.ToDictionary(a => a.Key, a => a.Value.Value);
        T Named<T>(string name, T fallback) => named.TryGetValue(name, out var value) && value is T typed ? typed : fallback;
        string? NamedString(string name) => named.TryGetValue(name, out var value) ? value as string : null;

        var itemParameters = NamedString("ItemParameters");
        var timeZone = NamedString("TimeZone");
        if (ShardedJobRules.Problems(cron, shards, itemParameters, timeZone).Any())
        {
            return new ParseResult(null);
        }

        var job = new JobModel(
            Name: NamedString("Name") ?? type.Name,
            Identifier: IdentifierFor(type),
            TypeName: type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            TypeDisplayName: type.ToDisplayString(SymbolDisplayFormat.CSharpErrorMessageFormat),
            DataTypeName: jobClass.DataType?.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            Cron: cron!,
            Shards: shards,
            Failover: Named("Failover", false),
            MonitorExecution: Named("MonitorExecution", true),
            Misfire: Named("Misfire", true),
            ItemParameters: itemParameters,
            JobParameter: NamedString("JobParameter"),
            TimeZone: timeZone,
            ShardingStrategy: NamedString("ShardingStrategy") ?? "AverageAllocation",
            Description: NamedString("Description"),
            Disabled: Named("Disabled", false),
            Overwrite: Named("Overwrite", false),
            MaxTimeDiffSeconds: Named("MaxTimeDiffSeconds", -1),
            ReconcileIntervalMinutes: Named("ReconcileIntervalMinutes", 10),
            Streaming: Named("Streaming", false));
        return new ParseResult(job);
    }

    /// <summary>
    /// A C# identifier unique per type: the full metadata name with '_' doubled and '.' or '+' (nesting) turned into '_', so
    /// <c>A_B.C</c> and <c>A.B_C</c> stay apart.
    /// </summary>
    internal static string IdentifierFor(INamedTypeSymbol type)
    {
        var name = new StringBuilder();
        for (ISymbol? symbol = type; symbol is INamedTypeSymbol current; symbol = current.ContainingType)
        {
            name.Insert(0, current.MetadataName.Replace("_", "__") + (name.Length > 0 ? "_" : ""));
        }

        if (!type.ContainingNamespace.IsGlobalNamespace)
        {
            name.Insert(0, type.ContainingNamespace.ToDisplayString().Replace("_", "__").Replace('.', '_') + "_");
        }

        return name.ToString();
    }
}
