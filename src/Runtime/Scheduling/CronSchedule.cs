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
    public static string? Validate(string expression)
    {
        try
        {
            CronParser.Parse(expression ?? string.Empty);
            return null;
        }
        catch (CronFormatException exception)
        {
            return exception.Message;
        }
    }

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

/// <summary>A cron expression is not valid. The message starts with <c>Cron '&lt;expression&gt;': </c> and names the
/// field, the offending token and what is allowed.</summary>
public sealed class CronFormatException : FormatException
{
    public CronFormatException(string expression, string message)
        : base(message)
    {
        Expression = expression;
    }

    /// <summary>The expression that failed to parse.</summary>
    public string Expression { get; }
}

/// <summary>The parsed value sets of one expression.</summary>
internal sealed class CronFields
{
    public CronFields(
        bool[] seconds, bool[] minutes, bool[] hours, bool[]? daysOfMonth, bool[] months, bool[]? daysOfWeek, int[]? years)
    {
        Seconds = seconds;
        Minutes = minutes;
        Hours = hours;
        DaysOfMonth = daysOfMonth;
        Months = months;
        DaysOfWeek = daysOfWeek;
        Years = years;
    }

    // Each array is indexed by value minus the field's minimum.
    public bool[] Seconds { get; }

    public bool[] Minutes { get; }

    public bool[] Hours { get; }

    /// <summary>Null when the field is <c>*</c> or <c>?</c>: it leaves the day to day-of-week.</summary>
    public bool[]? DaysOfMonth { get; }

    public bool[] Months { get; }

    /// <summary>Null when the field is <c>*</c> or <c>?</c>: it leaves the day to day-of-month. Quartz numbering, 1 = SUN.</summary>
    public bool[]? DaysOfWeek { get; }

    /// <summary>Ascending; null without a year field.</summary>
    public int[]? Years { get; }

    /// <summary>
    /// NCrontab's six fields with explicit lists, so NCrontab only searches and never interprets Quartz syntax. With
    /// one of the day fields <c>*</c>, NCrontab (which requires both day fields to match) restricts by the other alone.
    /// </summary>
    public string ToCrontabExpression() =>
        string.Join(" ", new[]
        {
            ToCrontabField(Seconds, 0),
            ToCrontabField(Minutes, 0),
            ToCrontabField(Hours, 0),
            DaysOfMonth is null ? "*" : ToCrontabField(DaysOfMonth, 1),
            ToCrontabField(Months, 1),
            // NCrontab counts days of week 0-6 from Sunday, Quartz 1-7 from Sunday.
            DaysOfWeek is null ? "*" : ToCrontabField(DaysOfWeek, 0),
        });

    /// <param name="allowed">Allowed values, from the field's minimum on.</param>
    /// <param name="crontabMinimum">What NCrontab calls the field's minimum.</param>
    private static string ToCrontabField(bool[] allowed, int crontabMinimum)
    {
        if (Array.IndexOf(allowed, false) < 0)
        {
            return "*";
        }

        var values = new List<string>();
        for (var index = 0; index < allowed.Length; index++)
        {
            if (allowed[index])
            {
                values.Add((index + crontabMinimum).ToString(CultureInfo.InvariantCulture));
            }
        }

        return string.Join(",", values);
    }
}

/// <summary>Parses Quartz-style expressions into <see cref="CronFields"/>; every error is a <see cref="CronFormatException"/>.</summary>
internal sealed class CronParser
{
    // Declared before the fields that use them: static initializers run in text order.
    private static readonly string[] MonthNames = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
    private static readonly string[] DayNames = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT" };
    private static readonly string[] Ordinals = { "1st", "2nd", "3rd", "4th", "5th" };

    private static readonly CronField Seconds = new("seconds", 0, 59, "0-59");
    private static readonly CronField Minutes = new("minutes", 0, 59, "0-59");
    private static readonly CronField Hours = new("hours", 0, 23, "0-23");
    private static readonly CronField DayOfMonth = new("day-of-month", 1, 31, "1-31, or '?'", acceptsNoSpecificValue: true);
    private static readonly CronField Month = new("month", 1, 12, "1-12 or JAN-DEC", MonthNames);
    private static readonly CronField DayOfWeek = new("day-of-week", 1, 7, "1-7 (1 = SUN) or SUN-SAT, or '?'", DayNames, acceptsNoSpecificValue: true);
    private static readonly CronField Year = new("year", 1970, 2099, "1970-2099");

    // The longest each month can be (February in a leap year), for rejecting days that never come.
    private static readonly int[] LongestMonth = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    private const string ElementForms = "a value, a range a-b, a step */n, a/n or a-b/n, or a comma list of these";

    private readonly string _expression;

    private CronParser(string expression) => _expression = expression;

    public static CronFields Parse(string expression) => new CronParser(expression).Parse();

    private CronFields Parse()
    {
        var texts = _expression.Split(new[] { ' ', '\t', '\r', '\n' }, StringSplitOptions.RemoveEmptyEntries);
        if (texts.Length == 0)
        {
            throw Fail("the expression is empty; write 6 or 7 fields: seconds minutes hours day-of-month month day-of-week [year] (e.g. '0 0/30 * * * ?').");
        }

        if (texts.Length != 6 && texts.Length != 7)
        {
            var unixHint = texts.Length == 5
                ? " A 5-field Unix cron has no seconds: put '0 ' in front, and note that day-of-week here is 1-7 with 1 = SUN."
                : string.Empty;
            throw Fail($"has {texts.Length} fields, but 6 or 7 are required: seconds minutes hours day-of-month month day-of-week [year] (e.g. '0 0/30 * * * ?').{unixHint}");
        }

        var seconds = ParseField(Seconds, texts[0]);
        var minutes = ParseField(Minutes, texts[1]);
        var hours = ParseField(Hours, texts[2]);
        var daysOfMonth = ParseField(DayOfMonth, texts[3]);
        var months = ParseField(Month, texts[4]);
        var daysOfWeek = ParseField(DayOfWeek, texts[5]);
        var years = texts.Length == 7 ? ParseField(Year, texts[6]) : null;

        var dayOfMonthRestricts = Restricts(texts[3]);
        var dayOfWeekRestricts = Restricts(texts[5]);
        if (dayOfMonthRestricts && dayOfWeekRestricts)
        {
            throw Fail(
                $"day-of-month '{texts[3]}' and day-of-week '{texts[5]}' are both restricted, which Quartz does not support; " +
                $"put '?' in one of them, e.g. '{WithField(texts, 5, "?")}' or '{WithField(texts, 3, "?")}'.");
        }

        var yearList = years is null ? null : ToValues(years, Year.Minimum);
        if (dayOfMonthRestricts && !AnyDayExists(daysOfMonth, months, yearList))
        {
            var inYears = yearList is null ? string.Empty : $" of year '{texts[6]}'";
            throw Fail(
                $"day-of-month '{texts[3]}' never falls in month '{texts[4]}'{inYears}, so the schedule would never fire; " +
                "a month has at most 29 days in FEB (29 only in leap years), 30 in APR, JUN, SEP and NOV, 31 in the others.");
        }

        return new CronFields(
            seconds,
            minutes,
            hours,
            dayOfMonthRestricts ? daysOfMonth : null,
            months,
            dayOfWeekRestricts ? daysOfWeek : null,
            yearList?.ToArray());
    }

    // '*' and '?' leave the day to the other field; anything else, even one that covers every value, restricts it.
    private static bool Restricts(string dayField) => dayField != "*" && dayField != "?";

    private static string WithField(string[] texts, int index, string replacement)
    {
        var copy = (string[])texts.Clone();
        copy[index] = replacement;
        return string.Join(" ", copy);
    }

    private static bool AnyDayExists(bool[] daysOfMonth, bool[] months, List<int>? years)
    {
        for (var month = 1; month <= 12; month++)
        {
            if (!months[month - 1])
            {
                continue;
            }

            for (var day = 1; day <= 31; day++)
            {
                if (!daysOfMonth[day - 1])
                {
                    continue;
                }

                if (years is null ? day <= LongestMonth[month - 1] : years.Exists(year => day <= DateTime.DaysInMonth(year, month)))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private bool[] ParseField(CronField field, string text)
    {
        var allowed = new bool[field.Count];
        if (text == "?" && !field.AcceptsNoSpecificValue)
        {
            throw Fail($"{field.Name} uses '?' (no specific value), which is allowed only in day-of-month and day-of-week; use '*' for every value (allowed: {field.Allowed}).");
        }

        if (text == "*" || text == "?")
        {
            for (var index = 0; index < allowed.Length; index++)
            {
                allowed[index] = true;
            }

            return allowed;
        }

        foreach (var element in text.Split(','))
        {
            if (element.Length == 0)
            {
                throw Fail($"{field.Name} list '{text}' has an empty element; write {ElementForms} between the commas (values: {field.Allowed}).");
            }

            if (element == "?")
            {
                throw field.AcceptsNoSpecificValue
                    ? Fail($"{field.Name} list '{text}' contains '?', which must stand alone as the whole field (no specific value).")
                    : Fail($"{field.Name} uses '?' (no specific value), which is allowed only in day-of-month and day-of-week; use '*' for every value (allowed: {field.Allowed}).");
            }

            RejectUnsupportedFeature(field, element);
            AddElement(field, element, allowed);
        }

        return allowed;
    }

    /// <summary>Adds one list element: a value, a range a-b, or a step */n, a/n, a-b/n.</summary>
    private void AddElement(CronField field, string element, bool[] allowed)
    {
        var rangeText = element;
        var step = 1;
        var hasStep = false;
        var slash = element.IndexOf('/');
        if (slash >= 0)
        {
            rangeText = element.Substring(0, slash);
            var stepText = element.Substring(slash + 1);
            if (rangeText.Length == 0)
            {
                throw Fail($"{field.Name} step '{element}' has no start; write '*/{stepText}' or '{field.Minimum}/{stepText}'.");
            }

            if (stepText.IndexOf('/') >= 0)
            {
                throw Malformed(field, element);
            }

            step = ParseStep(field, element, stepText);
            hasStep = true;
        }

        int first, last;
        if (rangeText == "*")
        {
            first = field.Minimum;
            last = field.Maximum;
        }
        else
        {
            var dash = rangeText.IndexOf('-');
            if (dash < 0)
            {
                first = ParseValue(field, element, rangeText);
                last = hasStep ? field.Maximum : first; // Quartz: a/n runs from a to the field's maximum
            }
            else
            {
                var firstText = rangeText.Substring(0, dash);
                var lastText = rangeText.Substring(dash + 1);
                if (firstText.Length == 0 || lastText.Length == 0 || lastText.IndexOf('-') >= 0)
                {
                    throw Malformed(field, element);
                }

                first = ParseValue(field, element, firstText);
                last = ParseValue(field, element, lastText);
            }
        }

        if (last >= first)
        {
            for (var value = first; value <= last; value += step)
            {
                allowed[value - field.Minimum] = true;
            }

            return;
        }

        if (field == Year)
        {
            throw Fail($"year range '{element}' goes backwards; write the earlier year first (allowed: {field.Allowed}).");
        }

        // A wrap-around range (hours 22-2, FRI-MON): count on past the maximum and fold back, as Quartz does, so a
        // step keeps its rhythm across the wrap.
        for (var position = first; position <= last + field.Count; position += step)
        {
            allowed[(position - field.Minimum) % field.Count] = true;
        }
    }

    private int ParseValue(CronField field, string element, string text)
    {
        var where = text == element ? string.Empty : $" in '{element}'";
        if (IsDigits(text))
        {
            // More than nine digits cannot be a value of any field (and could overflow an int).
            var value = text.Length > 9 ? int.MaxValue : int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
            if (value < field.Minimum || value > field.Maximum)
            {
                throw Fail($"{field.Name} value '{text}'{where} is out of range; allowed: {field.Allowed}.");
            }

            return value;
        }

        if (field.Names is not null)
        {
            for (var index = 0; index < field.Names.Length; index++)
            {
                if (string.Equals(field.Names[index], text, StringComparison.OrdinalIgnoreCase))
                {
                    return field.Minimum + index;
                }
            }

            throw Fail($"{field.Name} value '{text}'{where} is not a number or a known name; allowed: {field.Allowed}.");
        }

        throw Fail($"{field.Name} value '{text}'{where} is not a number; allowed: {field.Allowed}.");
    }

    private int ParseStep(CronField field, string element, string text)
    {
        if (IsDigits(text) && text.Length <= 9)
        {
            var step = int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
            if (step >= 1 && step <= field.Count)
            {
                return step;
            }
        }

        throw Fail($"{field.Name} step '{text}' in '{element}' is not allowed; a step is a whole number from 1 to {field.Count}.");
    }

    /// <summary>Quartz's L, W and # cannot be expressed over NCrontab; name the feature and say what to do instead.</summary>
    private void RejectUnsupportedFeature(CronField field, string element)
    {
        if (field == DayOfMonth)
        {
            var hasLast = ContainsLetter(element, 'L');
            var hasWeekday = ContainsLetter(element, 'W');
            if (hasLast && hasWeekday)
            {
                throw Unsupported(field, element, "last weekday of month", "use explicit days (e.g. 26-31 with a check in the job) instead");
            }

            if (hasLast)
            {
                var meaning = element.Length > 2 && char.ToUpperInvariant(element[0]) == 'L' && element[1] == '-' && IsDigits(element.Substring(2))
                    ? $"{element.Substring(2)} days before the last day of month"
                    : "last day of month";
                throw Unsupported(field, element, meaning, "use explicit days (e.g. 28-31 with a check in the job) instead");
            }

            if (hasWeekday)
            {
                var day = element.Substring(0, element.Length - 1);
                var meaning = IsDigits(day) ? $"the weekday nearest to day {day}" : "nearest weekday";
                throw Unsupported(field, element, meaning, "use explicit days with a check in the job instead");
            }
        }
        else if (field == DayOfWeek)
        {
            var hash = element.IndexOf('#');
            if (hash >= 0)
            {
                var day = DescribeDay(element.Substring(0, hash));
                var nth = element.Substring(hash + 1);
                var ordinal = nth.Length == 1 && nth[0] >= '1' && nth[0] <= '5' ? Ordinals[nth[0] - '1'] : null;
                var meaning = ordinal is null ? $"nth {day} of month" : $"the {ordinal} {day} of month";
                var advice = ordinal is null
                    ? $"schedule {day} and check in the job which one of the month it is instead"
                    : $"schedule {day} and check in the job that the day of month is {((nth[0] - '1') * 7) + 1}-{(nth[0] - '0') * 7} instead";
                throw Unsupported(field, element, meaning, advice);
            }

            if (ContainsLetter(element, 'L'))
            {
                if (element.Length == 1)
                {
                    throw Unsupported(field, element, "last day of week, SAT", "write SAT or 7 instead");
                }

                var day = DescribeDay(element.Substring(0, element.Length - 1));
                throw Unsupported(field, element, $"last {day} of month", $"schedule {day} and check in the job that the same day next week falls in the next month instead");
            }
        }
    }

    /// <summary>A day-of-week token as a name for messages: "6" and "fri" are FRI; anything else is "that day".</summary>
    private static string DescribeDay(string token)
    {
        if (IsDigits(token) && token.Length == 1 && token[0] >= '1' && token[0] <= '7')
        {
            return DayNames[token[0] - '1'];
        }

        foreach (var name in DayNames)
        {
            if (string.Equals(name, token, StringComparison.OrdinalIgnoreCase))
            {
                return name;
            }
        }

        return "that day";
    }

    private static bool ContainsLetter(string text, char upperCaseLetter) =>
        text.IndexOf(upperCaseLetter) >= 0 || text.IndexOf(char.ToLowerInvariant(upperCaseLetter)) >= 0;

    private static bool IsDigits(string text)
    {
        if (text.Length == 0)
        {
            return false;
        }

        foreach (var character in text)
        {
            if (character < '0' || character > '9')
            {
                return false;
            }
        }

        return true;
    }

    private static List<int> ToValues(bool[] allowed, int minimum)
    {
        var values = new List<int>();
        for (var index = 0; index < allowed.Length; index++)
        {
            if (allowed[index])
            {
                values.Add(index + minimum);
            }
        }

        return values;
    }

    private CronFormatException Malformed(CronField field, string element) =>
        Fail($"{field.Name} element '{element}' is malformed; write {ElementForms} (values: {field.Allowed}).");

    private CronFormatException Unsupported(CronField field, string element, string meaning, string advice) =>
        Fail($"{field.Name} uses '{element}' ({meaning}), which ShardedJobs does not support; {advice}.");

    private CronFormatException Fail(string problem) => new(_expression, $"Cron '{_expression}': {problem}");

    /// <summary>One field of the grammar: its name in messages, its values, and its names when it has them.</summary>
    private sealed class CronField
    {
        public CronField(string name, int minimum, int maximum, string allowed, string[]? names = null, bool acceptsNoSpecificValue = false)
        {
            Name = name;
            Minimum = minimum;
            Maximum = maximum;
            Allowed = allowed;
            Names = names;
            AcceptsNoSpecificValue = acceptsNoSpecificValue;
        }

        public string Name { get; }

        public int Minimum { get; }

        public int Maximum { get; }

        public int Count => Maximum - Minimum + 1;

        /// <summary>What the field accepts, as messages show it.</summary>
        public string Allowed { get; }

        /// <summary>Names for the values from <see cref="Minimum"/> on, matched case-insensitively.</summary>
        public string[]? Names { get; }

        /// <summary>Whether <c>?</c> (no specific value) is allowed: day-of-month and day-of-week.</summary>
        public bool AcceptsNoSpecificValue { get; }
    }
}
