using System.Reflection;
using System.Text;
using Xunit;

namespace ShardedJobs.Generators.Tests;

/// <summary>
/// Approved-file snapshots (Verify is not available): <c>Snapshots/&lt;Test&gt;.&lt;Case&gt;#&lt;File&gt;.verified.cs</c> beside the
/// tests. A difference fails the test and prints a unified diff; set <c>SHARDEDJOBS_ACCEPT_SNAPSHOTS=1</c> to write the
/// received text as the new approved file (then review it in the diff of the commit).
/// </summary>
internal static class Snapshot
{
    public const string AcceptVariable = "SHARDEDJOBS_ACCEPT_SNAPSHOTS";

    // The project writes its own directory into the assembly: [CallerFilePath] would be "/_/…" in a CI (deterministic) build.
    private static readonly string Directory = typeof(Snapshot).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(attribute => attribute.Key == "SnapshotDirectory").Value!;

    public static void Verify(string received, string test, string @case, string file)
    {
        var path = Path.Combine(Directory, $"{test}.{@case}#{file}.verified.cs");
        received = received.Replace("\r\n", "\n", StringComparison.Ordinal).TrimStart('\uFEFF');
        if (Environment.GetEnvironmentVariable(AcceptVariable) == "1")
        {
            File.WriteAllText(path, received);
            return;
        }

        if (!File.Exists(path))
        {
            Assert.Fail($"No approved snapshot {path}. Run the tests with {AcceptVariable}=1 to write it, then review it.\nReceived:\n{received}");
        }

        var approved = File.ReadAllText(path).Replace("\r\n", "\n", StringComparison.Ordinal);
        if (approved != received)
        {
            Assert.Fail($"Generated {file} differs from {Path.GetFileName(path)} (- approved, + received); {AcceptVariable}=1 accepts it:\n{UnifiedDiff(approved, received)}");
        }
    }

    /// <summary>A unified diff (longest common subsequence of lines) with three lines of context.</summary>
    internal static string UnifiedDiff(string before, string after)
    {
        var a = before.Split('\n');
        var b = after.Split('\n');
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (var i = a.Length - 1; i >= 0; i--)
        {
            for (var j = b.Length - 1; j >= 0; j--)
            {
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            }
        }

        var lines = new List<(char Kind, string Text)>();
        int x = 0, y = 0;
        while (x < a.Length || y < b.Length)
        {
            if (x < a.Length && y < b.Length && a[x] == b[y])
            {
                lines.Add((' ', a[x++]));
                y++;
            }
            else if (x < a.Length && (y == b.Length || lcs[x + 1, y] >= lcs[x, y + 1]))
            {
                lines.Add(('-', a[x++]));
            }
            else
            {
                lines.Add(('+', b[y++]));
            }
        }

        var text = new StringBuilder();
        var shown = new bool[lines.Count];
        for (var k = 0; k < lines.Count; k++)
        {
            if (lines[k].Kind != ' ')
            {
                for (var c = Math.Max(0, k - 3); c <= Math.Min(lines.Count - 1, k + 3); c++)
                {
                    shown[c] = true;
                }
            }
        }

        for (var k = 0; k < lines.Count; k++)
        {
            if (shown[k])
            {
                text.Append(lines[k].Kind).Append(lines[k].Text).Append('\n');
            }
            else if (k > 0 && shown[k - 1])
            {
                text.Append("@@\n");
            }
        }

        return text.ToString();
    }
}
