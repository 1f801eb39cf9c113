using ShardedJobs.Cluster;
using Xunit;

namespace ShardedJobs.Tests.Cluster;

public sealed class ItemParametersTests
{
    private const string Expected = "Item parameters are item=value pairs separated by commas, e.g. \"0=Beijing,1=Shanghai,2=Guangzhou\".";

    [Fact]
    public void Scenario_4_values_are_trimmed()
    {
        var parameters = ItemParameters.Parse("0=Beijing, 1 = Shanghai ,2=Guangzhou", 3);

        Assert.Equal(3, parameters.Count);
        Assert.Equal(3, parameters.Shards);
        Assert.Equal("Beijing", parameters[0]);
        Assert.Equal("Shanghai", parameters[1]);
        Assert.Equal("Guangzhou", parameters[2]);
    }

    [Fact]
    public void Scenario_4_an_item_without_a_key_gets_null()
    {
        var parameters = ItemParameters.Parse("0=Beijing, 1 = Shanghai ,2=Guangzhou", 4);

        Assert.Equal(3, parameters.Count);
        Assert.Null(parameters[3]);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("\t\n")]
    public void Nothing_means_no_parameters(string? text)
    {
        var parameters = ItemParameters.Parse(text, 2);

        Assert.Equal(0, parameters.Count);
        Assert.Null(parameters[0]);
        Assert.Null(parameters[1]);
        Assert.Empty(parameters.AsDictionary());
    }

    [Fact]
    public void The_dictionary_is_in_item_order_and_read_only()
    {
        var parameters = ItemParameters.Parse("2=c, 0=a,1=b", 5);

        Assert.Equal(new[] { 0, 1, 2 }, parameters.AsDictionary().Keys);
        Assert.Equal(new[] { "a", "b", "c" }, parameters.AsDictionary().Values);
        var asMutable = Assert.IsAssignableFrom<IDictionary<int, string>>(parameters.AsDictionary());
        Assert.Throws<NotSupportedException>(() => asMutable.Add(4, "d"));
    }

    [Theory]
    [InlineData("0= New York ", 1, 0, "New York")]
    [InlineData(" 01 =a", 2, 1, "a")]
    [InlineData("9=last", 10, 9, "last")]
    [InlineData("0=x y z", 1, 0, "x y z")]
    public void Accepted_forms(string text, int shards, int item, string value)
    {
        Assert.Equal(value, ItemParameters.Parse(text, shards)[item]);
        Assert.True(ItemParameters.TryParse(text, shards, out var parameters, out var error));
        Assert.Equal(value, parameters[item]);
        Assert.Null(error);
    }

    [Theory]
    [InlineData("0=a=b", 3, "0=a=b", "has more than one '='", "with a single '='")]
    [InlineData("x=a", 3, "x=a", "has 'x' where an item number belongs", "Use an item number from 0 to 2")]
    [InlineData("0=", 3, "0=", "gives item 0 an empty value", "Write a value after '='")]
    [InlineData("0=  ", 3, "0=", "gives item 0 an empty value", "leave item 0 out")]
    [InlineData("0=a,0=b", 3, "0=b", "gives item 0 a second parameter (the first is \"0=a\")", "remove one of \"0=a\" and \"0=b\"")]
    [InlineData("0=a, 00 = b", 3, "00 = b", "gives item 0 a second parameter", "Keep one parameter per item")]
    [InlineData("5=a", 3, "5=a", "names item 5, outside 0..2 (the job has 3 items)", "raise the job's shards above 5")]
    [InlineData("1=a", 1, "1=a", "names item 1, outside 0..0 (the job has 1 item)", "Remove the piece")]
    [InlineData("99999999999=a", 3, "99999999999=a", "names item 99999999999, outside 0..2", "Remove the piece")]
    [InlineData("0=a,,1=b", 3, "", "is empty", "Remove the extra comma")]
    [InlineData("0=a,", 3, "", "is empty", "Remove the extra comma")]
    [InlineData(",0=a", 3, "", "is empty", "Remove the extra comma")]
    [InlineData("0=a, ,1=b", 3, " ", "is empty", "Remove the extra comma")]
    [InlineData("Beijing", 3, "Beijing", "has no '='", "Write it as item=value")]
    [InlineData("=a", 3, "=a", "has no item number before '='", "Put the item number (0..2) before '='")]
    [InlineData("-1=a", 3, "-1=a", "has '-1' where an item number belongs", "no sign")]
    [InlineData("+1=a", 3, "+1=a", "has '+1' where an item number belongs", "no sign")]
    [InlineData("1 0=a", 20, "1 0=a", "has '1 0' where an item number belongs", "decimal digits")]
    [InlineData("١=a", 3, "١=a", "has '١' where an item number belongs", "decimal digits")]
    public void Malformed_texts_are_rejected_naming_the_text_the_piece_and_the_fix(string text, int shards, string piece, string problem, string fix)
    {
        var error = Assert.Throws<FormatException>(() => ItemParameters.Parse(text, shards));

        Assert.StartsWith($"Invalid item parameters \"{text}\": the piece \"{piece}\" {problem}", error.Message, StringComparison.Ordinal);
        Assert.Contains(fix, error.Message, StringComparison.Ordinal);
        Assert.EndsWith(Expected, error.Message, StringComparison.Ordinal);

        Assert.False(ItemParameters.TryParse(text, shards, out var parameters, out var reported));
        Assert.Null(parameters);
        Assert.Equal(error.Message, reported);
    }

    [Fact]
    public void The_full_message_for_a_duplicate()
    {
        var error = Assert.Throws<FormatException>(() => ItemParameters.Parse("0=a,0=b", 3));

        Assert.Equal(
            "Invalid item parameters \"0=a,0=b\": the piece \"0=b\" gives item 0 a second parameter (the first is \"0=a\"). "
            + "Keep one parameter per item: remove one of \"0=a\" and \"0=b\". " + Expected,
            error.Message);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(3)]
    public void Items_outside_the_job_are_not_asked_for(int item)
    {
        var parameters = ItemParameters.Parse("0=a", 3);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => parameters[item]);
        Assert.Contains("0..2", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-2)]
    public void The_item_count_must_be_positive(int shards)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ItemParameters.Parse("0=a", shards));
        Assert.Throws<ArgumentOutOfRangeException>(() => ItemParameters.TryParse(null, shards, out _, out _));
    }
}
