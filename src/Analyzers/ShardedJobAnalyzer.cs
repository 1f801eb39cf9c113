using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using ShardedJobs.CodeAnalysis;
using ShardedJobs.Scheduling;

namespace ShardedJobs.Analyzers;

/// <summary>
/// SJ0001–SJ0008 on <c>[ShardedJob]</c> classes, each reported on the argument it is about (the class name for SJ0007, the
/// <c>Name</c> argument or the class name for SJ0008). The value rules are the runtime's own code (cron grammar and next-fire
/// search, item parameters, time zones), compiled into this assembly, so the analyzer accepts exactly what the runtime runs.
/// </summary>
[DiagnosticAnalyzer(Microsoft.CodeAnalysis.LanguageNames.CSharp)]
public sealed class ShardedJobAnalyzer : DiagnosticAnalyzer
{
    /// <summary>The .editorconfig key of SJ0002's threshold, in seconds (default 60).</summary>
    public const string ThresholdKey = "shardedjobs.failover_min_interval_seconds";

    public static readonly TimeSpan DefaultThreshold = TimeSpan.FromSeconds(60);

    /// <summary>Gaps are measured over the schedule from this instant, in UTC (time zones only shift a schedule).</summary>
    private static readonly DateTimeOffset GapSearchStart = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>One search per distinct cron per process: the IDE re-analyses on every keystroke.</summary>
    private static readonly ConcurrentDictionary<string, TimeSpan?> ShortestGaps = new(StringComparer.Ordinal);

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.FailoverWithoutMonitoring,
        DiagnosticDescriptors.FailoverOnShortInterval,
        DiagnosticDescriptors.InvalidCron,
        DiagnosticDescriptors.InvalidShards,
        DiagnosticDescriptors.InvalidItemParameters,
        DiagnosticDescriptors.UnknownTimeZone,
        DiagnosticDescriptors.NotAJobClass,
        DiagnosticDescriptors.DuplicateJobName);

    public override void Initialize(AnalysisContext context)
    {
        // Generated code never declares jobs (ours is marked auto-generated); every callback is thread-safe.
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var attributeType = start.Compilation.GetTypeByMetadataName(KnownNames.ShardedJobAttribute);
            if (attributeType is null)
            {
                return; // the runtime is not referenced: nothing to check
            }

            // SJ0008 is reported by each job itself (not at compilation end), so the IDE shows it as you type, without
            // full-solution analysis, and its code fix applies like any other.
            var jobNames = new JobNameIndex(start.Compilation, attributeType);
            start.RegisterSymbolAction(symbol => AnalyzeType(symbol, attributeType, jobNames), SymbolKind.NamedType);
        });
    }

    private static void AnalyzeType(SymbolAnalysisContext context, INamedTypeSymbol attributeType, JobNameIndex jobNames)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        var attribute = type.GetAttributes().FirstOrDefault(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, attributeType));
        if (attribute?.ApplicationSyntaxReference?.GetSyntax(context.CancellationToken) is not AttributeSyntax syntax)
        {
            return;
        }

        var job = JobAttribute.Read(attribute, syntax, type);
        var jobClass = JobClass.Of(type);
        if (jobClass.Problem is { } problem)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.NotAJobClass, job.ClassLocation, type.Name, problem));
        }

        var cronProblem = ShardedJobRules.CheckCron(job.Cron);
        if (cronProblem is not null)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InvalidCron, job.Location("cron"), job.Name, cronProblem));
        }

        if (ShardedJobRules.CheckShards(job.Shards) is not null)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InvalidShards, job.Location("shards"), job.Name, job.Shards.ToString(CultureInfo.InvariantCulture)));
        }
        else if (ShardedJobRules.CheckItemParameters(job.String("ItemParameters"), job.Shards) is { } parameterProblem)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InvalidItemParameters, job.Location("ItemParameters"), job.Name, parameterProblem));
        }

        if (ShardedJobRules.CheckTimeZone(job.String("TimeZone")) is { } zoneProblem)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.UnknownTimeZone, job.Location("TimeZone"), job.Name, zoneProblem));
        }

        if (job.Bool("Failover", false))
        {
            if (!job.Bool("MonitorExecution", true))
            {
                context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.FailoverWithoutMonitoring, job.Location("MonitorExecution"), job.Name));
            }

            var threshold = Threshold(context.Options, syntax.SyntaxTree);
            if (cronProblem is null && ShortestGap(job.Cron!) is { } gap && gap < threshold)
            {
                context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.FailoverOnShortInterval, job.Location("cron"),
                    job.Name, job.Cron, Describe(gap), Describe(threshold)));
            }
        }

        var classesByName = jobNames.Get(context.CancellationToken);
        if (classesByName.TryGetValue(job.Name, out var classes) && classes.Count > 1)
        {
            var properties = ImmutableDictionary<string, string?>.Empty.Add(SuggestedNameProperty, SuggestName(type.ToDisplayString(), classesByName.Keys));
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.DuplicateJobName, job.NameLocation, properties,
                job.Name, ListOf(classes)));
        }
    }

    /// <summary>'A' and 'B'; 'A', 'B' and 'C'.</summary>
    private static string ListOf(IReadOnlyList<string> classes) =>
        string.Join(", ", classes.Take(classes.Count - 1).Select(c => $"'{c}'")) + $" and '{classes[classes.Count - 1]}'";

    /// <summary>SJ0008's property for its code fix: a name no job of the compilation uses, from the class's full name.</summary>
    public const string SuggestedNameProperty = "SuggestedName";

    /// <summary>The class's full name (namespace and containing types), numbered when some job already has it.</summary>
    internal static string SuggestName(string fullClassName, IEnumerable<string> taken)
    {
        var used = new HashSet<string>(taken, StringComparer.Ordinal);
        var candidate = fullClassName;
        for (var n = 2; used.Contains(candidate); n++)
        {
            candidate = fullClassName + n.ToString(CultureInfo.InvariantCulture);
        }

        return candidate;
    }

    /// <summary>The shortest time between two consecutive fires, over the schedule's first 500 fires (enough to see a day, a
    /// week and a month pattern of every schedule that fires at least hourly, which is where a gap can be short).</summary>
    internal static TimeSpan? ShortestGap(string cron) =>
        ShortestGaps.GetOrAdd(cron, c => CronSchedule.TryParse(c, TimeZoneInfo.Utc, out var schedule, out _) ? schedule!.ShortestGap(GapSearchStart, maxFires: 500) : null);

    private static TimeSpan Threshold(AnalyzerOptions options, SyntaxTree tree) =>
        options.AnalyzerConfigOptionsProvider.GetOptions(tree).TryGetValue(ThresholdKey, out var text)
        && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0
            ? TimeSpan.FromSeconds(seconds)
            : DefaultThreshold;

    internal static string Describe(TimeSpan span) =>
        span.TotalDays >= 1 && span.TotalDays % 1 == 0 ? Plural(span.TotalDays, "day")
        : span.TotalHours >= 1 && span.TotalHours % 1 == 0 ? Plural(span.TotalHours, "h")
        : span.TotalMinutes >= 1 && span.TotalMinutes % 1 == 0 ? Plural(span.TotalMinutes, "min")
        : Plural(span.TotalSeconds, "s");

    private static string Plural(double value, string unit) =>
        value.ToString("0.###", CultureInfo.InvariantCulture) + (unit == "day" ? (value == 1 ? " day" : " days") : " " + unit);
}

/// <summary>The values of one <c>[ShardedJob]</c> and where each argument stands in the source.</summary>
internal sealed class JobAttribute
{
    private readonly AttributeData _data;
    private readonly AttributeSyntax _syntax;
    private readonly Dictionary<string, TypedConstant> _named;

    private JobAttribute(AttributeData data, AttributeSyntax syntax, INamedTypeSymbol type)
    {
        _data = data;
        _syntax = syntax;
        _named = data.NamedArguments.ToDictionary(a => a.Key, a => a.Value, StringComparer.Ordinal);
        Cron = data.ConstructorArguments.Length > 0 ? data.ConstructorArguments[0].Value as string : null;
        Shards = data.ConstructorArguments.Length > 1 && data.ConstructorArguments[1].Value is int shards ? shards : 1;
        Name = NameOf(data, type);
        ClassLocation = syntax.Parent?.Parent is BaseTypeDeclarationSyntax declaration ? declaration.Identifier.GetLocation() : syntax.GetLocation();
        NameLocation = Argument("Name")?.Expression.GetLocation() ?? ClassLocation;
    }

    public string? Cron { get; }

    public int Shards { get; }

    public string Name { get; }

    public Location ClassLocation { get; }

    public Location NameLocation { get; }

    public static JobAttribute Read(AttributeData data, AttributeSyntax syntax, INamedTypeSymbol type) => new(data, syntax, type);

    /// <summary>The job's name: the <c>Name</c> argument, else the class's simple name (as the generator names it).</summary>
    public static string NameOf(AttributeData data, INamedTypeSymbol type) =>
        data.NamedArguments.FirstOrDefault(a => a.Key == "Name").Value.Value as string ?? type.Name;

    public string? String(string name) => _named.TryGetValue(name, out var value) ? value.Value as string : null;

    public bool Bool(string name, bool fallback) => _named.TryGetValue(name, out var value) && value.Value is bool flag ? flag : fallback;

    /// <summary>The argument's expression (<c>cron</c> and <c>shards</c> are the constructor's parameters); the attribute when absent.</summary>
    public Location Location(string name) => Argument(name)?.Expression.GetLocation() ?? _syntax.GetLocation();

    private AttributeArgumentSyntax? Argument(string name)
    {
        var arguments = _syntax.ArgumentList?.Arguments ?? default;
        var named = arguments.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == name || a.NameColon?.Name.Identifier.ValueText == name);
        if (named is not null)
        {
            return named;
        }

        var position = name switch { "cron" => 0, "shards" => 1, _ => -1 };
        var positional = arguments.Where(a => a.NameEquals is null && a.NameColon is null).ToList();
        return position >= 0 && position < positional.Count ? positional[position] : null;
    }
}

/// <summary>Every job of the compilation by name (with the classes that use it), built once per compilation on first use.</summary>
internal sealed class JobNameIndex
{
    private readonly Compilation _compilation;
    private readonly INamedTypeSymbol _attributeType;
    private readonly object _gate = new();
    private Dictionary<string, List<string>>? _classesByName;

    public JobNameIndex(Compilation compilation, INamedTypeSymbol attributeType)
    {
        _compilation = compilation;
        _attributeType = attributeType;
    }

    /// <summary>Job name → the full names of its classes, sorted. A cancelled build leaves nothing behind: the next call redoes it.</summary>
    public IReadOnlyDictionary<string, List<string>> Get(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return _classesByName ??= Build(cancellationToken);
        }
    }

    private Dictionary<string, List<string>> Build(CancellationToken cancellationToken)
    {
        var index = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var pending = new Stack<INamespaceOrTypeSymbol>();
        pending.Push(_compilation.Assembly.GlobalNamespace);
        while (pending.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var current = pending.Pop();
            if (current is INamespaceSymbol ns)
            {
                foreach (var member in ns.GetMembers())
                {
                    pending.Push(member);
                }

                continue;
            }

            var type = (INamedTypeSymbol)current;
            foreach (var nested in type.GetTypeMembers())
            {
                pending.Push(nested);
            }

            var attribute = type.GetAttributes().FirstOrDefault(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, _attributeType));
            if (attribute is not null)
            {
                var name = JobAttribute.NameOf(attribute, type);
                if (!index.TryGetValue(name, out var classes))
                {
                    index[name] = classes = [];
                }

                classes.Add(type.ToDisplayString());
            }
        }

        foreach (var classes in index.Values)
        {
            classes.Sort(StringComparer.Ordinal);
        }

        return index;
    }
}
