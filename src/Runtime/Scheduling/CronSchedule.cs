// This file is also compiled into the netstandard2.0 analyzers (to validate cron at compile time), so it uses only
// APIs that exist there (or that PolySharp polyfills) and spells out its usings.
using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using NCrontab;

namespace ShardedJobs.Scheduling;

/// <summary>
/// A Quartz-style cron schedule, as ElasticJob users write it, evaluated in a time zone.
/// </summary>
/// <remarks>
/// <para><b>Grammar.</b> Six or seven fields separated by white space:
/// <c>seconds minutes hours day-of-month month day-of-week [year]</c>.</para>
/// <list type="table">
///   <listheader><term>field</term><description>values</description></listheader>
///   <item><term>seconds</term><description>0-59</description></item>
///   <item><term>minutes</term><description>0-59</description></item>
///   <item><term>hours</term><description>0-23</description></item>
///   <item><term>day-of-month</term><description>1-31, or <c>?</c></description></item>
///   <item><term>month</term><description>1-12 or JAN-DEC</description></item>
///   <item><term>day-of-week</term><description>1-7 with 1 = SUN (Quartz numbering, not Unix's 0-6), or SUN-SAT, or <c>?</c></description></item>
///   <item><term>year (optional)</term><description>1970-2099; without the field, every year</description></item>
/// </list>
/// <para>Each field is <c>*</c> (every value), or a comma list of elements, each of them a value (<c>5</c>,
/// <c>MON</c>), a range <c>a-b</c>, or a step <c>*/n</c>, <c>a/n</c> (from a to the field's maximum) or
/// <c>a-b/n</c>. Names are case-insensitive and can stand wherever a number can. A range whose end is below its start
/// wraps around the field, as in Quartz: <c>FRI-MON</c> is FRI, SAT, SUN, MON and hours <c>22-2</c> are 22, 23, 0,
/// 1, 2; a step counts on across the wrap (<c>22-2/2</c> is 22, 0, 2). Year ranges do not wrap. A step goes from 1 to
/// the number of values of the field.</para>
/// <para><b>Day-of-month and day-of-week.</b> <c>?</c> ("no specific value", allowed only in these two fields) and
/// <c>*</c> both leave the day to the other field: <c>0 0 9-17 * * MON-FRI</c> fires hourly from 9:00 to 17:00 on
/// weekdays, <c>0 0 12 1 * ?</c> at noon on the first of each month. When neither of them is <c>?</c> or <c>*</c>
/// the expression is rejected, as Quartz rejects it: put <c>?</c> in one of them. Which fields restrict is read from
/// the text, so <c>1-31</c> or <c>*/1</c> restrict although they allow every day. Quartz insists on exactly one
/// <c>?</c>; ShardedJobs also takes <c>*</c> for it, and <c>?</c> or <c>*</c> in both fields as every day.</para>
/// <para><b>Not supported</b> (rejected with a message naming the feature): Quartz's <c>L</c> (last day of month,
/// <c>L-3</c>, last weekday <c>5L</c>), <c>W</c> (nearest weekday, <c>LW</c>) and <c>#</c> (nth weekday,
/// <c>6#3</c>). A day-of-month that never falls in the allowed months (<c>0 0 0 30 2 ?</c>) is rejected too,
/// because the schedule would never fire.</para>
/// <para><b>Time zones and daylight saving.</b> Fire times are wall-clock times in <see cref="TimeZone"/>, returned
/// with the zone's offset at that instant. A wall-clock time skipped by a spring-forward gap fires once, at the first
/// instant after the gap (every scheduled time inside one gap, and one exactly at its end, are that same single fire).
/// A wall-clock time repeated by a fall-back fires once, at its first occurrence; the repeated period's second pass
/// never fires.</para>
/// <para>Occurrences are searched with NCrontab over the six fields it understands (day-of-week translated to its
/// 0-6 numbering); the year field is applied on top, and the time-zone rules above on the wall-clock times it finds.</para>
/// </remarks>
public sealed class CronSchedule
{
    // Without a year field the search stops before the last year DateTime can hold, so adding a zone offset to any
    // occurrence stays representable.
    private static readonly DateTime UnboundedSearchEnd = new(9999, 1, 1);

    // `after` values earlier than this are searched from here: converting them to a zone west of UTC would underflow.
    private static readonly DateTimeOffset EarliestSearchStart = new(1, 1, 2, 0, 0, 0, TimeSpan.Zero);

    private readonly CrontabSchedule _wallClockSchedule;

    // Ascending; null when the expression has no year field (every year allowed).
    private readonly int[]? _years;

    // Exclusive end of the wall-clock search: the start of the year after the last allowed one.
    private readonly DateTime _searchEnd;

    private CronSchedule(string expression, TimeZoneInfo timeZone, CronFields fields)
    {
        Expression = expression;
        TimeZone = timeZone;
        WallClockExpression = fields.ToCrontabExpression();
        _wallClockSchedule = CrontabSchedule.Parse(WallClockExpression, new CrontabSchedule.ParseOptions { IncludingSeconds = true });
        _years = fields.Years;
        _searchEnd = _years is null ? UnboundedSearchEnd : new DateTime(_years[_years.Length - 1] + 1, 1, 1);
    }

    /// <summary>The expression as the user wrote it.</summary>
    public string Expression { get; }

    /// <summary>The zone whose wall clock the schedule follows.</summary>
    public TimeZoneInfo TimeZone { get; }

    /// <summary>The six-field NCrontab expression that searches the wall clock (day-of-week 0-6, every list explicit).</summary>
    internal string WallClockExpression { get; }

    /// <summary>Parses <paramref name="expression"/> (see the type's remarks for the grammar).</summary>
    /// <exception cref="CronFormatException">The expression is not valid; the message says why and what is allowed.</exception>
    public static CronSchedule Parse(string expression, TimeZoneInfo timeZone)
    {
        if (expression is null)
        {
            throw new ArgumentNullException(nameof(expression));
        }

        if (timeZone is null)
        {
            throw new ArgumentNullException(nameof(timeZone));
        }

        return new CronSchedule(expression, timeZone, CronParser.Parse(expression));
    }

    /// <summary>Parses without throwing for an invalid expression: false with the reason in <paramref name="error"/>.</summary>
    public static bool TryParse(
        string expression,
        TimeZoneInfo timeZone,
        [NotNullWhen(true)] out CronSchedule? schedule,
        [NotNullWhen(false)] out string? error)
    {
        if (timeZone is null)
        {
            throw new ArgumentNullException(nameof(timeZone));
        }

        try
        {
            schedule = new CronSchedule(expression ?? string.Empty, timeZone, CronParser.Parse(expression ?? string.Empty));
            error = null;
            return true;
        }
        catch (CronFormatException exception)
        {
            schedule = null;
            error = exception.Message;
            return false;
        }
    }

    /// <summary>Null when <paramref name="expression"/> is valid, otherwise the reason (as <see cref="Parse"/> would throw it).</summary>
    public static string? Validate(string expression) => CronParser.Validate(expression);

    /// <summary>
    /// The first fire time strictly after <paramref name="after"/> (given in any offset), with the zone's offset at
    /// that instant; null when the schedule never fires again (its year range is exhausted).
    /// </summary>
    public DateTimeOffset? GetNextOccurrence(DateTimeOffset after)
    {
        var searchFrom = after < EarliestSearchStart ? EarliestSearchStart : after;

        // Past the search's end in every zone (offsets stay within a day); nearer to it, the wall-clock search decides.
        if (searchFrom.UtcDateTime.AddDays(-1) >= _searchEnd)
        {
            return null;
        }

        var wallClock = TimeZoneInfo.ConvertTime(searchFrom, TimeZone).DateTime;
        while (true)
        {
            var candidate = NextWallClockOccurrence(wallClock);
            if (candidate is null)
            {
                return null;
            }

            var wallTime = candidate.Value;
            if (TimeZone.IsInvalidTime(wallTime))
            {
                // Skipped by a spring-forward gap: fire at the first instant after the gap. Every scheduled time in the
                // gap maps to that instant, and so does a scheduled time exactly at the gap's end; once it has fired,
                // the next search starts from the gap's end and finds none of them again.
                var gapEnd = FirstWallClockTimeAfterRun(wallTime, TimeZone.IsInvalidTime);
                var fire = new DateTimeOffset(gapEnd, TimeZone.GetUtcOffset(gapEnd));
                if (fire > after)
                {
                    return fire;
                }
            }
            else if (TimeZone.IsAmbiguousTime(wallTime))
            {
                // Repeated by a fall-back: fire at the first occurrence, which has the larger offset.
                var fire = new DateTimeOffset(wallTime, LargestOffset(TimeZone.GetAmbiguousTimeOffsets(wallTime)));
                if (fire > after)
                {
                    return fire;
                }

                // `after` lies in the second pass of the repeated period: every time left in it has fired in the first
                // pass, so continue from the period's end rather than visiting its times one by one.
                wallTime = FirstWallClockTimeAfterRun(wallTime, TimeZone.IsAmbiguousTime).AddTicks(-1);
            }
            else
            {
                var fire = new DateTimeOffset(wallTime, TimeZone.GetUtcOffset(wallTime));
                if (fire > after)
                {
                    return fire;
                }
            }

            wallClock = wallTime;
        }
    }

    /// <summary>The fire times after <paramref name="after"/>, in order, computed as they are enumerated.</summary>
    public IEnumerable<DateTimeOffset> GetOccurrences(DateTimeOffset after)
    {
        for (var next = GetNextOccurrence(after); next is not null; next = GetNextOccurrence(next.Value))
        {
            yield return next.Value;
        }
    }

    /// <summary>
    /// The shortest elapsed time between two consecutive fires among the first <paramref name="maxFires"/> fires after
    /// <paramref name="from"/>; null when fewer than two fires remain. Analyzers use it to judge how often a job runs:
    /// <c>0 0/5 * * * ?</c> gives 5 minutes, <c>0 0 9-17 * * MON-FRI</c> 1 hour, <c>0/10 * * * * ?</c> 10 seconds.
    /// </summary>
    public TimeSpan? ShortestGap(DateTimeOffset from, int maxFires = 1000)
    {
        if (maxFires < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(maxFires), maxFires, "A gap needs at least two fires.");
        }

        TimeSpan? shortest = null;
        var previous = GetNextOccurrence(from);
        for (var fires = 1; previous is not null && fires < maxFires; fires++)
        {
            var next = GetNextOccurrence(previous.Value);
            if (next is null)
            {
                break;
            }

            var gap = next.Value - previous.Value;
            if (shortest is null || gap < shortest.Value)
            {
                shortest = gap;
            }

            previous = next;
        }

        return shortest;
    }

    /// <inheritdoc/>
    public override string ToString() => Expression;

    /// <summary>The first wall-clock time strictly after <paramref name="wallClock"/> that the fields and the year allow.</summary>
    private DateTime? NextWallClockOccurrence(DateTime wallClock)
    {
        var searchBase = wallClock;
        while (searchBase < _searchEnd)
        {
            // NCrontab returns the end itself when nothing falls before it.
            var candidate = _wallClockSchedule.GetNextOccurrence(searchBase, _searchEnd);
            if (candidate >= _searchEnd)
            {
                return null;
            }

            if (_years is null || Array.BinarySearch(_years, candidate.Year) >= 0)
            {
                return candidate;
            }

            var nextYear = NextAllowedYear(candidate.Year);
            if (nextYear is null)
            {
                return null;
            }

            // NCrontab looks strictly after its base, to the second: starting one second before New Year lets the
            // year's first second itself match.
            searchBase = new DateTime(nextYear.Value, 1, 1).AddSeconds(-1);
        }

        return null;
    }

    private int? NextAllowedYear(int year)
    {
        foreach (var allowed in _years!)
        {
            if (allowed > year)
            {
                return allowed;
            }
        }

        return null;
    }

    /// <summary>
    /// The first wall-clock time after <paramref name="inside"/> for which <paramref name="isInRun"/> is false, where
    /// <paramref name="inside"/> is in the run (a daylight-saving gap or repeated period). Found by bisection to the
    /// tick, so it is exact whatever the zone's transition times are (Lord Howe moves its clocks by 30 minutes).
    /// </summary>
    private static DateTime FirstWallClockTimeAfterRun(DateTime inside, Func<DateTime, bool> isInRun)
    {
        // Runs last at most a day (Samoa skipped 30 Dec 2011); widen the window until it reaches past the run.
        var lastInside = inside.Ticks;
        var step = TimeSpan.FromMinutes(30).Ticks;
        long firstOutside;
        while (true)
        {
            firstOutside = lastInside + step;
            if (firstOutside >= UnboundedSearchEnd.Ticks || !isInRun(new DateTime(firstOutside)))
            {
                break;
            }

            lastInside = firstOutside;
            step *= 2;
        }

        while (firstOutside - lastInside > 1)
        {
            var middle = lastInside + ((firstOutside - lastInside) / 2);
            if (isInRun(new DateTime(middle)))
            {
                lastInside = middle;
            }
            else
            {
                firstOutside = middle;
            }
        }

        return new DateTime(firstOutside);
    }

    private static TimeSpan LargestOffset(TimeSpan[] offsets)
    {
        var largest = offsets[0];
        foreach (var offset in offsets)
        {
            if (offset > largest)
            {
                largest = offset;
            }
        }

        return largest;
    }
}
