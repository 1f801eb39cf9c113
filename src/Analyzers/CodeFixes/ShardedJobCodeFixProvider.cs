using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Formatting;
using ShardedJobs.Analyzers;

namespace ShardedJobs.CodeFixes;

/// <summary>
/// SJ0001: set <c>MonitorExecution = true</c>. SJ0008: give the job a distinct <c>Name</c> (the one the analyzer found free:
/// the class's full name). Both edit one named argument of <c>[ShardedJob]</c>, replacing its value or adding it.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ShardedJobCodeFixProvider)), Shared]
public sealed class ShardedJobCodeFixProvider : CodeFixProvider
{
    private const string MonitorExecution = "MonitorExecution";
    private const string Name = "Name";

    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.FailoverWithoutMonitoring.Id,
        DiagnosticDescriptors.DuplicateJobName.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            var attribute = FindAttribute(root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true));
            if (attribute is null)
            {
                continue;
            }

            if (diagnostic.Id == DiagnosticDescriptors.FailoverWithoutMonitoring.Id)
            {
                context.RegisterCodeFix(
                    CodeAction.Create(
                        "Set MonitorExecution = true",
                        token => SetNamedArgument(context.Document, attribute, MonitorExecution, SyntaxFactory.LiteralExpression(SyntaxKind.TrueLiteralExpression), token),
                        equivalenceKey: diagnostic.Id),
                    diagnostic);
            }
            else if (diagnostic.Properties.TryGetValue(ShardedJobAnalyzer.SuggestedNameProperty, out var suggested) && suggested is not null)
            {
                context.RegisterCodeFix(
                    CodeAction.Create(
                        $"Name the job '{suggested}'",
                        token => SetNamedArgument(context.Document, attribute, Name, SyntaxFactory.LiteralExpression(SyntaxKind.StringLiteralExpression, SyntaxFactory.Literal(suggested)), token),
                        // Per diagnostic: each duplicate gets its own name, and Fix All gives every one of them its own.
                        equivalenceKey: diagnostic.Id),
                    diagnostic);
            }
        }
    }

    /// <summary>The <c>[ShardedJob]</c> the diagnostic is about: it sits on one of its arguments, or on the class's name.</summary>
    private static AttributeSyntax? FindAttribute(SyntaxNode node)
    {
        if (node.FirstAncestorOrSelf<AttributeSyntax>() is { } enclosing)
        {
            return enclosing;
        }

        // SJ0008 without a Name argument is reported on the class identifier: the attribute is the class's [ShardedJob].
        return node.FirstAncestorOrSelf<TypeDeclarationSyntax>()?.AttributeLists
            .SelectMany(list => list.Attributes)
            .FirstOrDefault(IsShardedJob);
    }

    private static bool IsShardedJob(AttributeSyntax attribute)
    {
        var name = attribute.Name switch
        {
            QualifiedNameSyntax qualified => qualified.Right.Identifier.ValueText,
            AliasQualifiedNameSyntax alias => alias.Name.Identifier.ValueText,
            SimpleNameSyntax simple => simple.Identifier.ValueText,
            _ => string.Empty,
        };
        return name is "ShardedJob" or "ShardedJobAttribute";
    }

    private static async Task<Document> SetNamedArgument(Document document, AttributeSyntax attribute, string name, ExpressionSyntax value, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return document;
        }

        var arguments = attribute.ArgumentList ?? SyntaxFactory.AttributeArgumentList();
        var existing = arguments.Arguments.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == name);
        var updated = existing is not null
            ? arguments.ReplaceNode(existing.Expression, value.WithTriviaFrom(existing.Expression))
            : arguments.AddArguments(SyntaxFactory.AttributeArgument(SyntaxFactory.NameEquals(name), null, value))
                .WithAdditionalAnnotations(Formatter.Annotation);
        return document.WithSyntaxRoot(root.ReplaceNode(attribute, attribute.WithArgumentList(updated)));
    }
}
