using System;
using System.Text;

namespace ShardedJobs.Generators;

/// <summary>Writes C# with indentation handled in one place: <see cref="Indent"/> opens a level that disposing closes.</summary>
internal sealed class SourceWriter
{
    private const string Tab = "    ";
    private readonly StringBuilder _text = new();
    private int _depth;

    public SourceWriter Line(string line = "")
    {
        if (line.Length > 0)
        {
            for (var i = 0; i < _depth; i++)
            {
                _text.Append(Tab);
            }

            _text.Append(line);
        }

        _text.Append('\n');
        return this;
    }

    /// <summary>Writes <paramref name="opening"/> (if any) and <c>{</c>; disposing writes <c>}</c> plus <paramref name="closingSuffix"/>.</summary>
    public IDisposable Block(string? opening = null, string closingSuffix = "")
    {
        if (opening is not null)
        {
            Line(opening);
        }

        Line("{");
        _depth++;
        return new Closer(this, closingSuffix);
    }

    public IDisposable Indent()
    {
        _depth++;
        return new Closer(this, null);
    }

    public override string ToString() => _text.ToString();

    private sealed class Closer(SourceWriter writer, string? closingSuffix) : IDisposable
    {
        public void Dispose()
        {
            writer._depth--;
            if (closingSuffix is not null)
            {
                writer.Line("}" + closingSuffix);
            }
        }
    }
}
