using System;
using System.Collections.Generic;

namespace VibeSync.Tests
{
    public class JsonTests
    {
        [Test]
        public void ParsesEveryKindOfValue()
        {
            var o = J.Obj(Json.Parse(" {\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\", \"e\": {}} "), "t");
            var a = J.Arr(o["a"], "a");
            Assert.Equal(1L, (long)a[0], "integer literal is long");
            Assert.Equal(-2500.0, (double)a[1], "exponent is double");
            Assert.Equal(true, (bool)a[2], "true");
            Assert.Equal(false, (bool)a[3], "false");
            Assert.True(a[4] == null, "null");
            Assert.Equal("x\"\\/\né\U0001F600", (string)o["s"], "escapes and surrogate pair");
            Assert.Equal(0, J.Obj(o["e"], "e").Count, "empty object");
        }

        [Test]
        public void RefusesMalformedText()
        {
            foreach (var bad in new[] { "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "[1] x", "{\"a\":1,\"a\":2}", "tru", "\"a\nb\"", "{a:1}" })
                Assert.Throws<JsonException>(() => Json.Parse(bad), "refuses " + bad);
            Assert.Throws<JsonException>(() => Json.Parse(new string('[', Json.MaxDepth + 5)), "depth limit");
        }

        [Test]
        public void ErrorsSayWhere()
        {
            var e = Assert.Throws<JsonException>(() => Json.Parse("[1, 2, }"), "error");
            Assert.True(e.Message.Contains("offset 7"), e.Message);
        }

        [Test]
        public void DoublesRoundTripBitExactly()
        {
            var r = new Random(5);
            var buf = new byte[8];
            for (int i = 0; i < 20000; i++)
            {
                r.NextBytes(buf);
                double d = BitConverter.ToDouble(buf, 0);
                if (double.IsNaN(d) || double.IsInfinity(d)) continue;
                var back = (double)Json.Parse(Json.Write(d));
                Assert.Equal(BitConverter.DoubleToInt64Bits(d), BitConverter.DoubleToInt64Bits(back), "bits of " + d.ToString("R"));
            }
            foreach (var d in new[] { 0.1, 1e-7, 123456.49999999999, 0.30000000000000004, 5e-324, double.MaxValue, -0.0 })
                Assert.Equal(BitConverter.DoubleToInt64Bits(d), BitConverter.DoubleToInt64Bits((double)Json.Parse(Json.Write(d))), "bits of " + d.ToString("R"));
        }

        [Test]
        public void WritesNonFiniteAsNullAndEscapesControls()
        {
            Assert.Equal("[null,null,1.0,2]", Json.Write(new List<object> { double.NaN, double.PositiveInfinity, 1.0, 2L }), "non-finite");
            Assert.Equal("\"a\\u0001\\n\"", Json.Write("a\u0001\n"), "control characters");
            var o = new Dictionary<string, object> { { "k", new List<object> { "v", null, true } } };
            Assert.Equal("{\"k\":[\"v\",null,true]}", Json.Write(Json.Parse(Json.Write(o))), "round trip");
        }
    }
}
