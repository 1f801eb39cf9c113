using System.Globalization;
using NCrontab;
using ShardedJobs.Scheduling;
using Xunit;

namespace ShardedJobs.Tests.Scheduling;

public sealed class CronScheduleTests
{
    private static readonly TimeZoneInfo NewYork = TimeZones.Find("America/New_York");
    private static readonly TimeZoneInfo London = TimeZones.Find("Europe/London");
    private static readonly TimeZoneInfo LordHowe = TimeZones.Find("Australia/Lord_Howe");
    private static readonly TimeZoneInfo Shanghai = TimeZones.Find("Asia/Shanghai");

    // ---- grammar: exact fire sequences ----

    [Theory]
    [InlineData("0 0/30 * * * ?", "2027-01-01T00:10:00Z", new[] { "2027-01-01T00:30:00+00:00", "2027-01-01T01:00:00+00:00", "2027-01-01T01:30:00+00:00" })]
    [InlineData("0/10 * * * * ?", "2027-01-01T00:00:05Z", new[] { "2027-01-01T00:00:10+00:00", "2027-01-01T00:00:20+00:00", "2027-01-01T00:00:30+00:00", "2027-01-01T00:00:40+00:00", "2027-01-01T00:00:50+00:00", "2027-01-01T00:01:00+00:00" })]
    [InlineData("*/20 * * * * ?", "2027-01-01T00:00:00Z", new[] { "2027-01-01T00:00:20+00:00", "2027-01-01T00:00:40+00:00", "2027-01-01T00:01:00+00:00" })]
    [InlineData("0 10-40/15 * * * ?", "2027-01-01T00:00:00Z", new[] { "2027-01-01T00:10:00+00:00", "2027-01-01T00:25:00+00:00", "2027-01-01T00:40:00+00:00", "2027-01-01T01:10:00+00:00" })]
    // 2027-01-01 is a Friday: 17:00 that day, then the next weekday's hours from 9:00.
    [InlineData("0 0 9-17 * * MON-FRI", "2027-01-01T16:30:00Z", new[] { "2027-01-01T17:00:00+00:00", "2027-01-04T09:00:00+00:00", "2027-01-04T10:00:00+00:00" })]
    // Quartz numbering: 6 is Friday.
    [InlineData("0 15 10 ? * 6", "2027-01-01T00:00:00Z", new[] { "2027-01-01T10:15:00+00:00", "2027-01-08T10:15:00+00:00", "2027-01-15T10:15:00+00:00" })]
    [InlineData("0 0 12 ? * 1", "2027-01-01T00:00:00Z", new[] { "2027-01-03T12:00:00+00:00", "2027-01-10T12:00:00+00:00" })]
    [InlineData("0 0 12 ? * 7", "2027-01-01T00:00:00Z", new[] { "2027-01-02T12:00:00+00:00", "2027-01-09T12:00:00+00:00" })]
    // a/n runs from a to the field's maximum: days 1, 6, ... 31, then the next month from 1 again.
    [InlineData("0 0 12 1/5 * ?", "2027-01-25T00:00:00Z", new[] { "2027-01-26T12:00:00+00:00", "2027-01-31T12:00:00+00:00", "2027-02-01T12:00:00+00:00", "2027-02-06T12:00:00+00:00" })]
    [InlineData("0 0 12 ? * 2/2", "2027-01-01T00:00:00Z", new[] { "2027-01-01T12:00:00+00:00", "2027-01-04T12:00:00+00:00", "2027-01-06T12:00:00+00:00", "2027-01-08T12:00:00+00:00", "2027-01-11T12:00:00+00:00" })]
    // Wrap-around ranges.
    [InlineData("0 0 22-2 * * ?", "2027-01-01T03:00:00Z", new[] { "2027-01-01T22:00:00+00:00", "2027-01-01T23:00:00+00:00", "2027-01-02T00:00:00+00:00", "2027-01-02T01:00:00+00:00", "2027-01-02T02:00:00+00:00", "2027-01-02T22:00:00+00:00" })]
    [InlineData("0 0 22-2/2 * * ?", "2027-01-01T03:00:00Z", new[] { "2027-01-01T22:00:00+00:00", "2027-01-02T00:00:00+00:00", "2027-01-02T02:00:00+00:00", "2027-01-02T22:00:00+00:00" })]
    [InlineData("0 0 12 ? * FRI-MON", "2027-01-01T00:00:00Z", new[] { "2027-01-01T12:00:00+00:00", "2027-01-02T12:00:00+00:00", "2027-01-03T12:00:00+00:00", "2027-01-04T12:00:00+00:00", "2027-01-08T12:00:00+00:00" })]
    [InlineData("0 0 0 1 NOV-FEB ?", "2027-02-15T00:00:00Z", new[] { "2027-11-01T00:00:00+00:00", "2027-12-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00", "2028-02-01T00:00:00+00:00", "2028-11-01T00:00:00+00:00" })]
    [InlineData("0 0 0 28-3 2 ?", "2027-01-01T00:00:00Z", new[] { "2027-02-01T00:00:00+00:00", "2027-02-02T00:00:00+00:00", "2027-02-03T00:00:00+00:00", "2027-02-28T00:00:00+00:00", "2028-02-01T00:00:00+00:00" })]
    // Lists and names, case-insensitive; 2027-01-02 is a Saturday.
    [InlineData("0 0,30 8 ? jan,JUL sun,Sat", "2027-01-01T00:00:00Z", new[] { "2027-01-02T08:00:00+00:00", "2027-01-02T08:30:00+00:00", "2027-01-03T08:00:00+00:00", "2027-01-03T08:30:00+00:00", "2027-01-09T08:00:00+00:00" })]
    // Names holding Quartz's special letters (JUL's L, WED's W) are names, not features.
    [InlineData("0 0 0 ? jul,Aug WED", "2027-06-30T12:00:00Z", new[] { "2027-07-07T00:00:00+00:00", "2027-07-14T00:00:00+00:00" })]
    [InlineData("0 0 0 1 JUL ?", "2027-01-01T00:00:00Z", new[] { "2027-07-01T00:00:00+00:00", "2028-07-01T00:00:00+00:00" })]
    [InlineData("0 0 12 ? Jan-Mar/2 mOn", "2027-01-30T00:00:00Z", new[] { "2027-03-01T12:00:00+00:00", "2027-03-08T12:00:00+00:00" })]
    [InlineData("5,10-12,*/30 0 0 * * ?", "2027-01-01T00:00:00Z", new[] { "2027-01-01T00:00:05+00:00", "2027-01-01T00:00:10+00:00", "2027-01-01T00:00:11+00:00", "2027-01-01T00:00:12+00:00", "2027-01-01T00:00:30+00:00", "2027-01-02T00:00:00+00:00" })]
    // Day 31 skips the short months; 29 FEB comes every four years.
    [InlineData("0 0 0 31 * ?", "2027-01-01T00:00:00Z", new[] { "2027-01-31T00:00:00+00:00", "2027-03-31T00:00:00+00:00", "2027-05-31T00:00:00+00:00" })]
    [InlineData("0 0 0 29 2 ?", "2027-01-01T00:00:00Z", new[] { "2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00" })]
    // '?' and '*' in both day fields: every day.
    [InlineData("0 0 12 ? * ?", "2027-01-01T00:00:00Z", new[] { "2027-01-01T12:00:00+00:00", "2027-01-02T12:00:00+00:00" })]
    [InlineData("0 0 12 * * *", "2027-01-01T00:00:00Z", new[] { "2027-01-01T12:00:00+00:00", "2027-01-02T12:00:00+00:00" })]
    // White space of any width between the fields.
    [InlineData("  0\t0  12 ? *\t1 ", "2027-01-01T00:00:00Z", new[] { "2027-01-03T12:00:00+00:00" })]
    public void Fires_in_order(string expression, string after, string[] expected) =>
        Assert.Equal(expected, Fires(CronSchedule.Parse(expression, TimeZoneInfo.Utc), after, expected.Length));

    [Fact]
    public void Year_field_bounds_the_schedule()
    {
        var schedule = CronSchedule.Parse("0 0 0 1 1 ? 2030,2032", TimeZoneInfo.Utc);

        Assert.Equal(["2030-01-01T00:00:00+00:00", "2032-01-01T00:00:00+00:00"], Fires(schedule, "2027-06-01T00:00:00Z", 2));
        Assert.Null(schedule.GetNextOccurrence(Time("2032-01-01T00:00:00Z")));
        Assert.Null(schedule.GetNextOccurrence(Time("2040-01-01T00:00:00Z")));
        Assert.Equal(["2030-01-01T00:00:00+00:00", "2032-01-01T00:00:00+00:00"], schedule.GetOccurrences(Time("2000-01-01T00:00:00Z")).Select(Format));
    }

    [Theory]
    [InlineData("0 0 0 1 1 ? 2030/2", "2027-01-01T00:00:00Z", new[] { "2030-01-01T00:00:00+00:00", "2032-01-01T00:00:00+00:00", "2034-01-01T00:00:00+00:00" })]
    [InlineData("0 0 0 1 1 ? *", "2027-01-01T00:00:00Z", new[] { "2028-01-01T00:00:00+00:00", "2029-01-01T00:00:00+00:00" })]
    [InlineData("0 0 12 ? * MON 2028", "2027-12-31T00:00:00Z", new[] { "2028-01-03T12:00:00+00:00", "2028-01-10T12:00:00+00:00" })]
    [InlineData("0 0 0 29 2 ? 2027-2029", "2026-01-01T00:00:00Z", new[] { "2028-02-29T00:00:00+00:00" })]
    public void Year_field_sequences(string expression, string after, string[] expected) =>
        Assert.Equal(expected, Fires(CronSchedule.Parse(expression, TimeZoneInfo.Utc), after, expected.Length));

    [Fact]
    public void Last_year_ends_the_schedule()
    {
        var schedule = CronSchedule.Parse("0 0 0 1 1 ? 2098-2099", TimeZoneInfo.Utc);

        Assert.Equal(["2098-01-01T00:00:00+00:00", "2099-01-01T00:00:00+00:00"], schedule.GetOccurrences(Time("2027-01-01T00:00:00Z")).Select(Format));
    }

    [Fact]
    public void Year_is_the_wall_clock_year_of_the_zone()
    {
        // 23:00 on 31 Dec 2030 in New York is already 2031 in UTC.
        var schedule = CronSchedule.Parse("0 0 23 31 12 ? 2030", NewYork);

        Assert.Equal("2030-12-31T23:00:00-05:00", Format(schedule.GetNextOccurrence(Time("2031-01-01T02:00:00Z"))));
        Assert.Null(schedule.GetNextOccurrence(Time("2031-01-01T04:00:00Z")));
    }

    [Theory]
    [InlineData("0 0 9-17 * * MON-FRI", "0 0 9,10,11,12,13,14,15,16,17 * * 1,2,3,4,5")]
    [InlineData("0 15 10 ? * 6", "0 15 10 * * 5")]
    [InlineData("0 0 12 ? * SUN,SAT", "0 0 12 * * 0,6")]
    [InlineData("0 0 12 1/10 * ?", "0 0 12 1,11,21,31 * *")]
    [InlineData("* * * ? * *", "* * * * * *")]
    [InlineData("0 0 0 1 1 ? 2030", "0 0 0 1 1 *")]
    public void Translates_to_explicit_ncrontab_fields(string expression, string crontab) =>
        Assert.Equal(crontab, CronSchedule.Parse(expression, TimeZoneInfo.Utc).WallClockExpression);

    [Fact]
    public void NCrontab_restricts_by_one_day_field_when_the_other_is_a_star()
    {
        var options = new CrontabSchedule.ParseOptions { IncludingSeconds = true };
        var start = new DateTime(2027, 1, 1);
        var end = new DateTime(2027, 3, 1);

        // Day of week with '*' day of month: Mondays only, not every day.
        var mondays = CrontabSchedule.Parse("0 0 0 * * 1", options).GetNextOccurrences(start, end).ToList();
        Assert.Equal(8, mondays.Count);
        Assert.All(mondays, day => Assert.Equal(DayOfWeek.Monday, day.DayOfWeek));

        // Day of month with '*' day of week: the 15th only.
        Assert.Equal([new DateTime(2027, 1, 15), new DateTime(2027, 2, 15)], CrontabSchedule.Parse("0 0 0 15 * *", options).GetNextOccurrences(start, end));

        // Both restricted: NCrontab requires both (Friday the 13th), where Unix cron takes either and Quartz refuses;
        // which is why CronSchedule never hands it two restricted day fields.
        Assert.Equal(
            [new DateTime(2027, 8, 13)],
            CrontabSchedule.Parse("0 0 0 13 * 5", options).GetNextOccurrences(start, new DateTime(2028, 1, 1)));
    }

    [Fact]
    public void Next_is_strictly_after()
    {
        var schedule = CronSchedule.Parse("0 0/30 * * * ?", TimeZoneInfo.Utc);

        Assert.Equal("2027-01-01T00:30:00+00:00", Format(schedule.GetNextOccurrence(Time("2027-01-01T00:00:00Z"))));
        Assert.Equal("2027-01-01T00:30:00+00:00", Format(schedule.GetNextOccurrence(Time("2027-01-01T00:29:59.9999999Z"))));
        Assert.Equal("2027-01-01T01:00:00+00:00", Format(schedule.GetNextOccurrence(Time("2027-01-01T00:30:00Z"))));
        Assert.Equal("2027-01-01T01:00:00+00:00", Format(schedule.GetNextOccurrence(Time("2027-01-01T00:30:00.0000001Z"))));
    }

    [Fact]
    public void After_may_be_in_any_offset_and_results_carry_the_zones_offset()
    {
        var schedule = CronSchedule.Parse("0 0 12 * * ?", Shanghai);

        Assert.Equal("2027-01-01T12:00:00+08:00", Format(schedule.GetNextOccurrence(Time("2027-01-01T03:59:59Z"))));
        Assert.Equal("2027-01-02T12:00:00+08:00", Format(schedule.GetNextOccurrence(Time("2027-01-01T04:00:00Z"))));
        Assert.Equal("2027-01-01T12:00:00+08:00", Format(schedule.GetNextOccurrence(Time("2026-12-31T22:59:59-05:00"))));
        Assert.Equal("2027-01-02T12:00:00+08:00", Format(schedule.GetNextOccurrence(Time("2027-01-01T13:00:00+09:00"))));
    }

    [Fact]
    public void Extreme_after_values_do_not_overflow()
    {
        var schedule = CronSchedule.Parse("0 0 0 1 1 ?", NewYork);

        Assert.Null(schedule.GetNextOccurrence(DateTimeOffset.MaxValue));
        Assert.NotNull(schedule.GetNextOccurrence(DateTimeOffset.MinValue));
    }

    // ---- errors ----

    [Theory]
    [InlineData("0 0 12 L * ?", "day-of-month uses 'L' (last day of month), which ShardedJobs does not support; use explicit days (e.g. 28-31 with a check in the job) instead.")]
    [InlineData("0 0 12 1,L * ?", "day-of-month uses 'L' (last day of month), which ShardedJobs does not support")]
    [InlineData("0 0 12 l * ?", "day-of-month uses 'l' (last day of month)")]
    [InlineData("0 0 12 L-3 * ?", "day-of-month uses 'L-3' (3 days before the last day of month), which ShardedJobs does not support")]
    [InlineData("0 0 12 LW * ?", "day-of-month uses 'LW' (last weekday of month), which ShardedJobs does not support")]
    [InlineData("0 0 12 15W * ?", "day-of-month uses '15W' (the weekday nearest to day 15), which ShardedJobs does not support")]
    [InlineData("0 0 12 ? * 5L", "day-of-week uses '5L' (last THU of month), which ShardedJobs does not support")]
    [InlineData("0 0 12 ? * FRIL", "day-of-week uses 'FRIL' (last FRI of month), which ShardedJobs does not support")]
    [InlineData("0 0 12 ? * L", "day-of-week uses 'L' (last day of week, SAT), which ShardedJobs does not support; write SAT or 7 instead.")]
    [InlineData("0 0 12 ? * 6#3", "day-of-week uses '6#3' (the 3rd FRI of month), which ShardedJobs does not support; schedule FRI and check in the job that the day of month is 15-21 instead.")]
    [InlineData("0 0 12 ? * MON#1", "day-of-week uses 'MON#1' (the 1st MON of month)")]
    public void Rejects_quartz_features_it_cannot_schedule(string expression, string expected) =>
        AssertRejected(expression, expected);

    [Theory]
    [InlineData("0 0 12 * * *", null)]
    [InlineData("0 0 * * *", "has 5 fields, but 6 or 7 are required: seconds minutes hours day-of-month month day-of-week [year]")]
    [InlineData("*/5 * * * *", "A 5-field Unix cron has no seconds: put '0 ' in front")]
    [InlineData("0 0 0 1 1 ? 2030 x", "has 8 fields, but 6 or 7 are required")]
    [InlineData("0", "has 1 fields, but 6 or 7 are required")]
    [InlineData("", "the expression is empty; write 6 or 7 fields")]
    [InlineData("   ", "the expression is empty")]
    public void Field_count(string expression, string? expected)
    {
        if (expected is null)
        {
            Assert.Null(CronSchedule.Validate(expression));
        }
        else
        {
            AssertRejected(expression, expected);
        }
    }

    [Theory]
    [InlineData("60 * * * * ?", "seconds value '60' is out of range; allowed: 0-59.")]
    [InlineData("0 60 * * * ?", "minutes value '60' is out of range; allowed: 0-59.")]
    [InlineData("0 0 24 * * ?", "hours value '24' is out of range; allowed: 0-23.")]
    [InlineData("0 0 20-24 * * ?", "hours value '24' in '20-24' is out of range; allowed: 0-23.")]
    [InlineData("0 0 0 0 * ?", "day-of-month value '0' is out of range; allowed: 1-31, or '?'.")]
    [InlineData("0 0 0 32 * ?", "day-of-month value '32' is out of range; allowed: 1-31, or '?'.")]
    [InlineData("0 0 0 1 13 ?", "month value '13' is out of range; allowed: 1-12 or JAN-DEC.")]
    [InlineData("0 0 0 1 0 ?", "month value '0' is out of range; allowed: 1-12 or JAN-DEC.")]
    [InlineData("0 0 0 ? * 0", "day-of-week value '0' is out of range; allowed: 1-7 (1 = SUN) or SUN-SAT, or '?'.")]
    [InlineData("0 0 0 ? * 8", "day-of-week value '8' is out of range; allowed: 1-7 (1 = SUN) or SUN-SAT, or '?'.")]
    [InlineData("0 0 0 1 1 ? 1969", "year value '1969' is out of range; allowed: 1970-2099.")]
    [InlineData("0 0 0 1 1 ? 2100", "year value '2100' is out of range; allowed: 1970-2099.")]
    [InlineData("99999999999 * * * * ?", "seconds value '99999999999' is out of range; allowed: 0-59.")]
    public void Rejects_values_out_of_range(string expression, string expected) => AssertRejected(expression, expected);

    [Theory]
    [InlineData("0 0/0 * * * ?", "minutes step '0' in '0/0' is not allowed; a step is a whole number from 1 to 60.")]
    [InlineData("0 0/-5 * * * ?", "minutes step '-5' in '0/-5' is not allowed; a step is a whole number from 1 to 60.")]
    [InlineData("0 0 */x * * ?", "hours step 'x' in '*/x' is not allowed; a step is a whole number from 1 to 24.")]
    [InlineData("0 0 0/25 * * ?", "hours step '25' in '0/25' is not allowed; a step is a whole number from 1 to 24.")]
    [InlineData("0 0 0 1 1/ ?", "month step '' in '1/' is not allowed; a step is a whole number from 1 to 12.")]
    [InlineData("0 /5 * * * ?", "minutes step '/5' has no start; write '*/5' or '0/5'.")]
    public void Rejects_bad_steps(string expression, string expected) => AssertRejected(expression, expected);

    [Theory]
    [InlineData("0 0 0 1 JUNE ?", "month value 'JUNE' is not a number or a known name; allowed: 1-12 or JAN-DEC.")]
    [InlineData("0 0 0 ? * MONDAY", "day-of-week value 'MONDAY' is not a number or a known name; allowed: 1-7 (1 = SUN) or SUN-SAT, or '?'.")]
    [InlineData("0 0 0 ? * MON-FRY", "day-of-week value 'FRY' in 'MON-FRY' is not a number or a known name")]
    [InlineData("0 0 MON * * ?", "hours value 'MON' is not a number; allowed: 0-23.")]
    [InlineData("0 0 0 ? JAN MAR", "day-of-week value 'MAR' is not a number or a known name")]
    [InlineData("0 0 0 ? * 1.5", "day-of-week value '1.5' is not a number or a known name")]
    public void Rejects_unknown_names(string expression, string expected) => AssertRejected(expression, expected);

    [Theory]
    [InlineData("0 0,,30 * * * ?", "minutes list '0,,30' has an empty element; write a value, a range a-b, a step */n, a/n or a-b/n, or a comma list of these between the commas (values: 0-59).")]
    [InlineData("0 0, * * * ?", "minutes list '0,' has an empty element")]
    [InlineData("0 ,0 * * * ?", "minutes list ',0' has an empty element")]
    public void Rejects_empty_list_elements(string expression, string expected) => AssertRejected(expression, expected);

    [Theory]
    [InlineData("? * * * * ?", "seconds uses '?' (no specific value), which is allowed only in day-of-month and day-of-week; use '*' for every value (allowed: 0-59).")]
    [InlineData("0 ? * * * ?", "minutes uses '?' (no specific value), which is allowed only in day-of-month and day-of-week")]
    [InlineData("0 0 ? * * ?", "hours uses '?' (no specific value)")]
    [InlineData("0 0 0 1 ? ?", "month uses '?' (no specific value)")]
    [InlineData("0 0 0 1 1 ? ?", "year uses '?' (no specific value)")]
    [InlineData("0 0 0 1,? * ?", "day-of-month list '1,?' contains '?', which must stand alone as the whole field (no specific value).")]
    [InlineData("0 0 0 ? * MON,?", "day-of-week list 'MON,?' contains '?'")]
    [InlineData("0 0 5,? * * ?", "hours uses '?' (no specific value)")]
    public void Rejects_question_mark_outside_the_day_fields(string expression, string expected) => AssertRejected(expression, expected);

    [Theory]
    [InlineData("0 0 12 1 * MON", "day-of-month '1' and day-of-week 'MON' are both restricted, which Quartz does not support; put '?' in one of them, e.g. '0 0 12 1 * ?' or '0 0 12 ? * MON'.")]
    [InlineData("0 0 12 */2 * 2-6", "day-of-month '*/2' and day-of-week '2-6' are both restricted")]
    [InlineData("0 0 12 1-31 * 1-7 2030", "put '?' in one of them, e.g. '0 0 12 1-31 * ? 2030' or '0 0 12 ? * 1-7 2030'.")]
    public void Rejects_both_day_fields_restricted(string expression, string expected) => AssertRejected(expression, expected);

    [Theory]
    [InlineData("0 1-2-3 * * * ?", "minutes element '1-2-3' is malformed; write a value, a range a-b, a step */n, a/n or a-b/n, or a comma list of these (values: 0-59).")]
    [InlineData("0 5- * * * ?", "minutes element '5-' is malformed")]
    [InlineData("0 -5 * * * ?", "minutes element '-5' is malformed")]
    [InlineData("0 1/2/3 * * * ?", "minutes element '1/2/3' is malformed")]
    [InlineData("0 *-5 * * * ?", "minutes value '*' in '*-5' is not a number; allowed: 0-59.")]
    [InlineData("0 0 0 1 1 ? 2030-2020", "year range '2030-2020' goes backwards; write the earlier year first (allowed: 1970-2099).")]
    [InlineData("0 0 0 L * ? 2030", "day-of-month uses 'L'")]
    [InlineData("0 0 L * * ?", "hours value 'L' is not a number; allowed: 0-23.")]
    public void Rejects_malformed_elements(string expression, string expected) => AssertRejected(expression, expected);

    [Theory]
    [InlineData("0 0 0 30 2 ?", "day-of-month '30' never falls in month '2', so the schedule would never fire;")]
    [InlineData("0 0 0 31 APR,JUN ?", "day-of-month '31' never falls in month 'APR,JUN', so the schedule would never fire;")]
    [InlineData("0 0 0 29 2 ? 2027", "day-of-month '29' never falls in month '2' of year '2027', so the schedule would never fire;")]
    public void Rejects_days_that_never_come(string expression, string expected) => AssertRejected(expression, expected);

    [Theory]
    [InlineData("0 0 0 29 2 ? 2028")]
    [InlineData("0 0 0 31 2,3 ?")]
    [InlineData("0 0 0 30-31 2-4 ?")]
    public void Accepts_days_that_come_in_some_month(string expression) => Assert.Null(CronSchedule.Validate(expression));

    [Fact]
    public void Parse_TryParse_and_Validate_agree()
    {
        const string expression = "0 0 25 * * ?";

        var exception = Assert.Throws<CronFormatException>(() => CronSchedule.Parse(expression, TimeZoneInfo.Utc));
        Assert.Equal(expression, exception.Expression);
        Assert.IsAssignableFrom<FormatException>(exception);

        Assert.False(CronSchedule.TryParse(expression, TimeZoneInfo.Utc, out var schedule, out var error));
        Assert.Null(schedule);
        Assert.Equal(exception.Message, error);
        Assert.Equal(exception.Message, CronSchedule.Validate(expression));

        Assert.True(CronSchedule.TryParse("0 0 12 * * ?", Shanghai, out schedule, out error));
        Assert.Null(error);
        Assert.Equal("0 0 12 * * ?", schedule.Expression);
        Assert.Same(Shanghai, schedule.TimeZone);
        Assert.Equal("0 0 12 * * ?", schedule.ToString());
    }

    [Fact]
    public void Null_expression()
    {
        Assert.Throws<ArgumentNullException>(() => CronSchedule.Parse(null!, TimeZoneInfo.Utc));
        Assert.Throws<ArgumentNullException>(() => CronSchedule.Parse("0 0 12 * * ?", null!));
        Assert.StartsWith("Cron '': the expression is empty", CronSchedule.Validate(null!));
        Assert.False(CronSchedule.TryParse(null!, TimeZoneInfo.Utc, out _, out var error));
        Assert.StartsWith("Cron '': the expression is empty", error);
    }

    // ---- daylight saving: America/New_York springs forward on 2027-03-14 (02:00 EST -> 03:00 EDT) ----

    [Fact]
    public void Spring_forward_hourly_fires_once_after_the_gap()
    {
        var schedule = CronSchedule.Parse("0 0 * * * ?", NewYork);

        Assert.Equal(
            ["2027-03-14T01:00:00-05:00", "2027-03-14T03:00:00-04:00", "2027-03-14T04:00:00-04:00"],
            Fires(schedule, "2027-03-14T00:30:00-05:00", 3));
    }

    [Fact]
    public void Spring_forward_every_minute_collapses_the_gap_into_one_fire()
    {
        var schedule = CronSchedule.Parse("0 * * * * ?", NewYork);

        Assert.Equal(
            ["2027-03-14T01:59:00-05:00", "2027-03-14T03:00:00-04:00", "2027-03-14T03:01:00-04:00"],
            Fires(schedule, "2027-03-14T01:58:00-05:00", 3));
    }

    [Fact]
    public void Spring_forward_every_thirty_minutes()
    {
        var schedule = CronSchedule.Parse("0 0/30 * * * ?", NewYork);

        Assert.Equal(
            ["2027-03-14T01:30:00-05:00", "2027-03-14T03:00:00-04:00", "2027-03-14T03:30:00-04:00"],
            Fires(schedule, "2027-03-14T01:00:00-05:00", 3));
    }

    [Fact]
    public void Spring_forward_daily_time_in_the_gap_fires_at_the_gaps_end()
    {
        var schedule = CronSchedule.Parse("0 30 2 * * ?", NewYork);

        Assert.Equal(
            ["2027-03-13T02:30:00-05:00", "2027-03-14T03:00:00-04:00", "2027-03-15T02:30:00-04:00"],
            Fires(schedule, "2027-03-13T00:00:00-05:00", 3));
    }

    [Fact]
    public void Spring_forward_time_in_the_gap_and_time_at_its_end_are_one_fire()
    {
        var schedule = CronSchedule.Parse("0 0/30 2-3 * * ?", NewYork);

        Assert.Equal(
            ["2027-03-14T03:00:00-04:00", "2027-03-14T03:30:00-04:00", "2027-03-15T02:00:00-04:00"],
            Fires(schedule, "2027-03-14T00:00:00-05:00", 3));
    }

    // ---- daylight saving: America/New_York falls back on 2027-11-07 (02:00 EDT -> 01:00 EST) ----

    [Fact]
    public void Fall_back_hourly_fires_the_repeated_hour_once()
    {
        var schedule = CronSchedule.Parse("0 0 * * * ?", NewYork);

        Assert.Equal(
            ["2027-11-07T01:00:00-04:00", "2027-11-07T02:00:00-05:00", "2027-11-07T03:00:00-05:00"],
            Fires(schedule, "2027-11-07T00:30:00-04:00", 3));
    }

    [Fact]
    public void Fall_back_every_minute_skips_the_second_pass()
    {
        var schedule = CronSchedule.Parse("0 * * * * ?", NewYork);

        Assert.Equal(
            ["2027-11-07T01:59:00-04:00", "2027-11-07T02:00:00-05:00", "2027-11-07T02:01:00-05:00"],
            Fires(schedule, "2027-11-07T01:58:00-04:00", 3));

        // Four hours of real time from midnight EDT to 03:00 EST hold three hours of wall clock: 180 fires.
        var end = Time("2027-11-07T03:00:00-05:00");
        Assert.Equal(180, schedule.GetOccurrences(Time("2027-11-07T00:00:00-04:00")).TakeWhile(fire => fire <= end).Count());
    }

    [Fact]
    public void Fall_back_every_thirty_minutes()
    {
        var schedule = CronSchedule.Parse("0 0/30 * * * ?", NewYork);

        Assert.Equal(
            ["2027-11-07T01:00:00-04:00", "2027-11-07T01:30:00-04:00", "2027-11-07T02:00:00-05:00", "2027-11-07T02:30:00-05:00"],
            Fires(schedule, "2027-11-07T00:45:00-04:00", 4));
    }

    [Fact]
    public void Fall_back_daily_time_in_the_repeated_hour_fires_at_its_first_occurrence()
    {
        var schedule = CronSchedule.Parse("0 30 1 * * ?", NewYork);

        Assert.Equal(
            ["2027-11-07T01:30:00-04:00", "2027-11-08T01:30:00-05:00"],
            Fires(schedule, "2027-11-06T12:00:00-04:00", 2));
    }

    [Theory]
    [InlineData("0 * * * * ?", "2027-11-07T01:30:00-05:00", "2027-11-07T02:00:00-05:00")]
    [InlineData("0 * * * * ?", "2027-11-07T01:00:00-05:00", "2027-11-07T02:00:00-05:00")]
    [InlineData("0 * * * * ?", "2027-11-07T01:59:59-05:00", "2027-11-07T02:00:00-05:00")]
    [InlineData("* * * * * ?", "2027-11-07T01:00:00-05:00", "2027-11-07T02:00:00-05:00")]
    [InlineData("0 30 1 * * ?", "2027-11-07T01:30:00-05:00", "2027-11-08T01:30:00-05:00")]
    [InlineData("0 30 1 * * ?", "2027-11-07T01:10:00-05:00", "2027-11-08T01:30:00-05:00")]
    // In the first pass, given in UTC.
    [InlineData("0 * * * * ?", "2027-11-07T05:30:00Z", "2027-11-07T01:31:00-04:00")]
    public void Fall_back_after_inside_the_repeated_hour(string expression, string after, string expected)
    {
        var next = CronSchedule.Parse(expression, NewYork).GetNextOccurrence(Time(after));

        Assert.Equal(expected, Format(next));
        Assert.True(next > Time(after));
    }

    [Theory]
    [InlineData("0 * * * * ?")]
    [InlineData("0/15 * * * * ?")]
    [InlineData("0 0/30 * * * ?")]
    [InlineData("0 0 * * * ?")]
    [InlineData("0 30 1,2 * * ?")]
    [InlineData("0 0,30 0-3 * * ?")]
    public void Fires_strictly_increase_with_the_zones_offset_across_both_transitions(string expression)
    {
        var schedule = CronSchedule.Parse(expression, NewYork);

        foreach (var day in new[] { "2027-03-13T20:00:00-05:00", "2027-11-06T20:00:00-04:00" })
        {
            var end = Time(day).AddHours(12);
            var previous = Time(day);
            foreach (var fire in schedule.GetOccurrences(previous).TakeWhile(fire => fire < end))
            {
                Assert.True(fire > previous, $"{Format(fire)} after {Format(previous)}");
                Assert.Equal(NewYork.GetUtcOffset(fire), fire.Offset);
                previous = fire;
            }
        }
    }

    // ---- daylight saving elsewhere ----

    [Fact]
    public void London_springs_forward_at_one_and_falls_back_at_two()
    {
        var hourly = CronSchedule.Parse("0 0 * * * ?", London);
        var daily = CronSchedule.Parse("0 30 1 * * ?", London);

        // 2027-03-28: 01:00 GMT -> 02:00 BST; 01:00 does not exist, 02:00 is the first instant after the gap.
        Assert.Equal(["2027-03-28T00:00:00+00:00", "2027-03-28T02:00:00+01:00", "2027-03-28T03:00:00+01:00"], Fires(hourly, "2027-03-27T23:30:00+00:00", 3));
        Assert.Equal(["2027-03-28T02:00:00+01:00", "2027-03-29T01:30:00+01:00"], Fires(daily, "2027-03-27T12:00:00+00:00", 2));

        // 2027-10-31: 02:00 BST -> 01:00 GMT; 01:30 fires once, in BST.
        Assert.Equal(["2027-10-31T01:30:00+01:00", "2027-11-01T01:30:00+00:00"], Fires(daily, "2027-10-30T12:00:00+01:00", 2));
        Assert.Equal(["2027-10-31T01:00:00+01:00", "2027-10-31T02:00:00+00:00"], Fires(hourly, "2027-10-31T00:30:00+01:00", 2));
    }

    [Fact]
    public void Lord_Howe_moves_its_clocks_by_thirty_minutes()
    {
        var schedule = CronSchedule.Parse("0 0/15 * * * ?", LordHowe);

        // 2027-10-03: 02:00 (+10:30) -> 02:30 (+11:00); 02:00 and 02:15 collapse into 02:30, which is scheduled too.
        Assert.Equal(
            ["2027-10-03T01:45:00+10:30", "2027-10-03T02:30:00+11:00", "2027-10-03T02:45:00+11:00"],
            Fires(schedule, "2027-10-03T01:30:00+10:30", 3));

        // 2027-04-04: 02:00 (+11:00) -> 01:30 (+10:30); 01:30 and 01:45 fire once each.
        Assert.Equal(
            ["2027-04-04T01:30:00+11:00", "2027-04-04T01:45:00+11:00", "2027-04-04T02:00:00+10:30", "2027-04-04T02:15:00+10:30"],
            Fires(schedule, "2027-04-04T01:15:00+11:00", 4));
    }

    [Fact]
    public void Zones_without_daylight_saving()
    {
        var shanghai = CronSchedule.Parse("0 0 2 * * ?", Shanghai);
        var utc = CronSchedule.Parse("0 0 2 * * ?", TimeZoneInfo.Utc);

        Assert.Equal(["2027-03-14T02:00:00+08:00", "2027-03-15T02:00:00+08:00"], Fires(shanghai, "2027-03-13T12:00:00+08:00", 2));
        Assert.Equal(["2027-11-07T02:00:00+00:00", "2027-11-08T02:00:00+00:00"], Fires(utc, "2027-11-06T12:00:00Z", 2));
    }

    [Fact]
    public void Midnight_that_does_not_exist_fires_at_one()
    {
        // America/Santiago springs forward from 00:00 to 01:00 on 2027-09-05.
        var schedule = CronSchedule.Parse("0 0 0 * * ?", TimeZones.Find("America/Santiago"));

        Assert.Equal(
            ["2027-09-04T00:00:00-04:00", "2027-09-05T01:00:00-03:00", "2027-09-06T00:00:00-03:00"],
            Fires(schedule, "2027-09-03T12:00:00-04:00", 3));
    }

    // ---- time zones ----

    [Fact]
    public void Windows_id_finds_the_zone()
    {
        var zone = TimeZones.Find("China Standard Time");
        var schedule = CronSchedule.Parse("0 0 12 * * ?", zone);

        Assert.Equal(TimeSpan.FromHours(8), zone.BaseUtcOffset);
        Assert.Equal(["2027-01-01T12:00:00+08:00"], Fires(schedule, "2027-01-01T00:00:00Z", 1));
    }

    [Fact]
    public void Empty_id_is_the_local_zone()
    {
        Assert.True(TimeZones.TryFind(null, out var zone, out var error));
        Assert.Same(TimeZoneInfo.Local, zone);
        Assert.Null(error);
        Assert.Same(TimeZoneInfo.Local, TimeZones.Find(""));
    }

    [Fact]
    public void Iana_id_finds_the_zone_ignoring_case()
    {
        Assert.Equal(TimeSpan.FromHours(8), TimeZones.Find("Asia/Shanghai").BaseUtcOffset);
        Assert.True(TimeZones.TryFind("asia/SHANGHAI", out var zone, out _));
        Assert.Equal(TimeSpan.FromHours(8), zone.BaseUtcOffset);
    }

    [Fact]
    public void Unknown_id_names_the_id_and_suggests_the_fix()
    {
        Assert.False(TimeZones.TryFind("Mars/Olympus_Mons", out var zone, out var error));
        Assert.Null(zone);
        Assert.StartsWith("Time zone 'Mars/Olympus_Mons' is not known on this machine; use an IANA id such as 'Asia/Shanghai'", error);
        Assert.Contains("a Windows id such as 'China Standard Time'", error);

        var exception = Assert.Throws<TimeZoneNotFoundException>(() => TimeZones.Find("Mars/Olympus_Mons"));
        Assert.Equal(error, exception.Message);

        Assert.False(TimeZones.TryFind(" Asia/Shanghai", out _, out error));
        Assert.Equal("Time zone ' Asia/Shanghai' has white space around it; remove it (e.g. 'Asia/Shanghai').", error);
    }

    // ---- shortest gap ----

    [Theory]
    [InlineData("0 0/5 * * * ?", 300)]
    [InlineData("0 0 9-17 * * MON-FRI", 3600)]
    [InlineData("0/10 * * * * ?", 10)]
    [InlineData("0 0 12 ? * MON", 7 * 24 * 3600)]
    [InlineData("0 0,10 0 * * ?", 600)]
    public void Shortest_gap(string expression, int seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), CronSchedule.Parse(expression, TimeZoneInfo.Utc).ShortestGap(Time("2027-01-01T00:00:00Z")));

    [Fact]
    public void Shortest_gap_is_elapsed_time_and_needs_two_fires()
    {
        // Hourly: the fall-back day's 01:00 EDT -> 02:00 EST is two hours; the spring day still has one-hour gaps.
        Assert.Equal(TimeSpan.FromHours(1), CronSchedule.Parse("0 0 * * * ?", NewYork).ShortestGap(Time("2027-03-14T00:30:00-05:00"), maxFires: 3));
        Assert.Equal(TimeSpan.FromHours(2), CronSchedule.Parse("0 0 * * * ?", NewYork).ShortestGap(Time("2027-11-07T00:30:00-04:00"), maxFires: 2));

        Assert.Null(CronSchedule.Parse("0 0 0 1 1 ? 2030", TimeZoneInfo.Utc).ShortestGap(Time("2027-01-01T00:00:00Z")));
        Assert.Equal(TimeSpan.FromDays(730), CronSchedule.Parse("0 0 0 1 1 ? 2030,2032", TimeZoneInfo.Utc).ShortestGap(Time("2027-01-01T00:00:00Z")));
        Assert.Throws<ArgumentOutOfRangeException>(() => CronSchedule.Parse("0 0 * * * ?", TimeZoneInfo.Utc).ShortestGap(Time("2027-01-01T00:00:00Z"), maxFires: 1));
    }

    // ---- helpers ----

    private static void AssertRejected(string expression, string expectedMessagePart)
    {
        var message = CronSchedule.Validate(expression);

        Assert.NotNull(message);
        Assert.StartsWith($"Cron '{expression}': ", message);
        Assert.Contains(expectedMessagePart, message);
        var exception = Assert.Throws<CronFormatException>(() => CronSchedule.Parse(expression, TimeZoneInfo.Utc));
        Assert.Equal(message, exception.Message);
    }

    private static DateTimeOffset Time(string text) => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture);

    private static string Format(DateTimeOffset? time) =>
        time?.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture) ?? "null";

    private static string Format(DateTimeOffset time) => Format((DateTimeOffset?)time);

    private static string[] Fires(CronSchedule schedule, string after, int count) =>
        schedule.GetOccurrences(Time(after)).Take(count).Select(Format).ToArray();
}
