// This file is also compiled into the netstandard2.0 analyzers (to validate time zone ids at compile time), so it uses
// only APIs that exist there and spells out its usings.
using System;
using System.Diagnostics.CodeAnalysis;
using System.Security;

namespace ShardedJobs.Scheduling;

/// <summary>Finds the time zone a job's schedule follows, from the id users write in <c>TimeZone</c>.</summary>
public static class TimeZones
{
    /// <summary>
    /// Null or empty is <see cref="TimeZoneInfo.Local"/>; otherwise an IANA id (<c>Asia/Shanghai</c>) or a Windows id
    /// (<c>China Standard Time</c>), matched as <see cref="TimeZoneInfo.FindSystemTimeZoneById"/> matches them (on
    /// .NET 6 and later either kind works on every OS, given ICU), ignoring case on every OS.
    /// False with <paramref name="error"/> naming the id and suggesting the fix when the zone is not found.
    /// </summary>
    public static bool TryFind(string? id, [NotNullWhen(true)] out TimeZoneInfo? zone, [NotNullWhen(false)] out string? error)
    {
        if (id is null || id.Length == 0)
        {
            zone = TimeZoneInfo.Local;
            error = null;
            return true;
        }

        zone = null;
        if (id.Trim().Length != id.Length)
        {
            error = $"Time zone '{id}' has white space around it; remove it (e.g. 'Asia/Shanghai').";
            return false;
        }

        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(id);
            error = null;
            return true;
        }
        catch (TimeZoneNotFoundException)
        {
            // Zone files are found by path on Linux and macOS, where "asia/shanghai" misses "Asia/Shanghai" unless that
            // zone happens to be cached already (the cache ignores case). Windows ignores case always; so do we, to
            // give the same answer everywhere and every time.
            zone = FindIgnoringCase(id);
            if (zone is not null)
            {
                error = null;
                return true;
            }

            error = $"Time zone '{id}' is not known on this machine; use an IANA id such as 'Asia/Shanghai' or 'America/New_York', " +
                "or a Windows id such as 'China Standard Time' (leave it empty for the machine's local zone). " +
                "If the id is right, install the time zone data (the tzdata package on Linux).";
        }
        catch (InvalidTimeZoneException exception)
        {
            error = $"Time zone '{id}' was found but its data is corrupt ({exception.Message}); reinstall the time zone data (tzdata) or use another id.";
        }
        catch (SecurityException exception)
        {
            error = $"Time zone '{id}' could not be read ({exception.Message}); check the process's access to the time zone data.";
        }

        return false;
    }

    /// <summary>As <see cref="TryFind"/>, but throws.</summary>
    /// <exception cref="TimeZoneNotFoundException">The zone was not found; the message names the id and suggests the fix.</exception>
    public static TimeZoneInfo Find(string? id) =>
        TryFind(id, out var zone, out var error) ? zone : throw new TimeZoneNotFoundException(error);

    private static TimeZoneInfo? FindIgnoringCase(string id)
    {
        foreach (var known in TimeZoneInfo.GetSystemTimeZones())
        {
            if (string.Equals(known.Id, id, StringComparison.OrdinalIgnoreCase))
            {
                return known;
            }
        }

        return null;
    }
}
