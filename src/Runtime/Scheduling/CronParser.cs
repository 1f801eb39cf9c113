// The Quartz cron grammar, parsed into value sets. No dependency beyond the BCL: the source generator and the analyzers
// compile this same file (netstandard2.0) to reject exactly what the runtime rejects, so it uses only APIs that exist there
// (or that PolySharp polyfills) and spells out its usings. Occurrences are searched in CronSchedule (over NCrontab).
using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace ShardedJobs.Scheduling;

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

    /// <summary>Null when <paramref name="expression"/> is valid, otherwise the reason (the message parsing would throw).</summary>
    public static string? Validate(string? expression)
    {
        try
        {
            Parse(expression ?? string.Empty);
            return null;
        }
        catch (CronFormatException exception)
        {
            return exception.Message;
        }
    }

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
