// A tiny, self-contained JSON reader and writer for the adapter's wire
// messages. Unity's JsonUtility cannot represent dynamic JSON (commands carry
// arbitrary op arguments and opaque undo tokens) and System.Web.Extensions is
// not available in Unity, so the core carries its own (~280 lines; the
// typed accessors in J below are the rest).
//
// Model: null, bool, long (integer literals that fit), double (every other
// number), string, List<object> (arrays), Dictionary<string, object>
// (objects; a duplicate key is refused). The writer emits non-finite doubles
// as null, as serde_json does, and doubles in a form that parses back to the
// same bits.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace VibeSync
{
    /// <summary>Malformed JSON text: says where and what was expected.</summary>
    public sealed class JsonException : Exception
    {
        public JsonException(string message) : base(message) { }
    }

    public static class Json
    {
        /// <summary>Nesting deeper than this is refused (no stack overflow on hostile input).</summary>
        public const int MaxDepth = 128;

        public static object Parse(string text)
        {
            if (text == null) throw new JsonException("JSON text is null");
            var p = new Parser(text);
            p.SkipWs();
            var v = p.Value(0);
            p.SkipWs();
            if (p.Pos != text.Length) throw p.Error("end of input");
            return v;
        }

        public static string Write(object value)
        {
            var sb = new StringBuilder();
            WriteValue(sb, value);
            return sb.ToString();
        }

        static void WriteValue(StringBuilder sb, object v)
        {
            if (v == null) { sb.Append("null"); return; }
            var s = v as string;
            if (s != null) { WriteString(sb, s); return; }
            if (v is bool) { sb.Append((bool)v ? "true" : "false"); return; }
            if (v is double) { WriteDouble(sb, (double)v); return; }
            if (v is float) { WriteDouble(sb, (float)v); return; }
            if (v is long || v is int || v is uint || v is ulong || v is short || v is ushort || v is byte || v is sbyte)
            {
                sb.Append(Convert.ToString(v, CultureInfo.InvariantCulture));
                return;
            }
            var dict = v as IDictionary<string, object>;
            if (dict != null)
            {
                sb.Append('{');
                bool first = true;
                foreach (var kv in dict)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, kv.Key);
                    sb.Append(':');
                    WriteValue(sb, kv.Value);
                }
                sb.Append('}');
                return;
            }
            var list = v as System.Collections.IEnumerable;
            if (list != null)
            {
                sb.Append('[');
                bool first = true;
                foreach (var item in list)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteValue(sb, item);
                }
                sb.Append(']');
                return;
            }
            throw new ArgumentException("cannot write a " + v.GetType().Name + " as JSON");
        }

        /// <summary>Shortest "R" form when it round-trips, else 17 significant digits (always exact).</summary>
        public static string FormatDouble(double d)
        {
            if (double.IsNaN(d) || double.IsInfinity(d)) return "null";
            // .NET Framework / Mono print -0.0 as "0": keep the sign.
            if (d == 0) return BitConverter.DoubleToInt64Bits(d) < 0 ? "-0.0" : "0.0";
            string r = d.ToString("R", CultureInfo.InvariantCulture);
            double back;
            if (!double.TryParse(r, NumberStyles.Float, CultureInfo.InvariantCulture, out back) || !BitsEqual(back, d))
                r = d.ToString("G17", CultureInfo.InvariantCulture);
            // Keep it a JSON number that still reads as a float.
            if (r.IndexOf('.') < 0 && r.IndexOf('E') < 0 && r.IndexOf('e') < 0) r += ".0";
            return r.Replace("E+", "e").Replace("E", "e");
        }

        static bool BitsEqual(double a, double b)
        {
            return BitConverter.DoubleToInt64Bits(a) == BitConverter.DoubleToInt64Bits(b);
        }

        static void WriteDouble(StringBuilder sb, double d) { sb.Append(FormatDouble(d)); }

        static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }

        sealed class Parser
        {
            readonly string s;
            public int Pos;

            public Parser(string text) { s = text; }

            public JsonException Error(string expected)
            {
                string found = Pos < s.Length ? "'" + s[Pos] + "'" : "end of input";
                return new JsonException("invalid JSON at offset " + Pos + ": expected " + expected + ", found " + found);
            }

            public void SkipWs()
            {
                while (Pos < s.Length && (s[Pos] == ' ' || s[Pos] == '\t' || s[Pos] == '\n' || s[Pos] == '\r')) Pos++;
            }

            public object Value(int depth)
            {
                if (depth > MaxDepth) throw new JsonException("JSON nested deeper than " + MaxDepth + " levels");
                if (Pos >= s.Length) throw Error("a value");
                char c = s[Pos];
                switch (c)
                {
                    case '{': return Obj(depth);
                    case '[': return Arr(depth);
                    case '"': return Str();
                    case 't': Lit("true"); return true;
                    case 'f': Lit("false"); return false;
                    case 'n': Lit("null"); return null;
                    default:
                        if (c == '-' || (c >= '0' && c <= '9')) return Num();
                        throw Error("a value");
                }
            }

            void Lit(string word)
            {
                if (string.CompareOrdinal(s, Pos, word, 0, word.Length) != 0) throw Error("'" + word + "'");
                Pos += word.Length;
            }

            Dictionary<string, object> Obj(int depth)
            {
                var d = new Dictionary<string, object>();
                Pos++;
                SkipWs();
                if (Pos < s.Length && s[Pos] == '}') { Pos++; return d; }
                while (true)
                {
                    SkipWs();
                    if (Pos >= s.Length || s[Pos] != '"') throw Error("a string key");
                    int keyAt = Pos;
                    string key = Str();
                    if (d.ContainsKey(key)) throw new JsonException("invalid JSON at offset " + keyAt + ": duplicate key \"" + key + "\"");
                    SkipWs();
                    if (Pos >= s.Length || s[Pos] != ':') throw Error("':'");
                    Pos++;
                    SkipWs();
                    d[key] = Value(depth + 1);
                    SkipWs();
                    if (Pos < s.Length && s[Pos] == ',') { Pos++; continue; }
                    if (Pos < s.Length && s[Pos] == '}') { Pos++; return d; }
                    throw Error("',' or '}'");
                }
            }

            List<object> Arr(int depth)
            {
                var l = new List<object>();
                Pos++;
                SkipWs();
                if (Pos < s.Length && s[Pos] == ']') { Pos++; return l; }
                while (true)
                {
                    SkipWs();
                    l.Add(Value(depth + 1));
                    SkipWs();
                    if (Pos < s.Length && s[Pos] == ',') { Pos++; continue; }
                    if (Pos < s.Length && s[Pos] == ']') { Pos++; return l; }
                    throw Error("',' or ']'");
                }
            }

            string Str()
            {
                Pos++; // opening quote
                var sb = new StringBuilder();
                while (true)
                {
                    if (Pos >= s.Length) throw Error("closing '\"'");
                    char c = s[Pos++];
                    if (c == '"') return sb.ToString();
                    if (c < 0x20) { Pos--; throw Error("an escaped control character"); }
                    if (c != '\\') { sb.Append(c); continue; }
                    if (Pos >= s.Length) throw Error("an escape");
                    char e = s[Pos++];
                    switch (e)
                    {
                        case '"': sb.Append('"'); break;
                        case '\\': sb.Append('\\'); break;
                        case '/': sb.Append('/'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'n': sb.Append('\n'); break;
                        case 'r': sb.Append('\r'); break;
                        case 't': sb.Append('\t'); break;
                        case 'u':
                            if (Pos + 4 > s.Length) throw Error("4 hex digits");
                            int code;
                            if (!int.TryParse(s.Substring(Pos, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out code))
                                throw Error("4 hex digits");
                            sb.Append((char)code);
                            Pos += 4;
                            break;
                        default: Pos--; throw Error("a valid escape");
                    }
                }
            }

            object Num()
            {
                int start = Pos;
                bool isFloat = false;
                if (s[Pos] == '-') Pos++;
                if (Pos >= s.Length || !char.IsDigit(s[Pos])) throw Error("a digit");
                if (s[Pos] == '0') Pos++;
                else while (Pos < s.Length && s[Pos] >= '0' && s[Pos] <= '9') Pos++;
                if (Pos < s.Length && s[Pos] == '.')
                {
                    isFloat = true;
                    Pos++;
                    if (Pos >= s.Length || s[Pos] < '0' || s[Pos] > '9') throw Error("a digit after '.'");
                    while (Pos < s.Length && s[Pos] >= '0' && s[Pos] <= '9') Pos++;
                }
                if (Pos < s.Length && (s[Pos] == 'e' || s[Pos] == 'E'))
                {
                    isFloat = true;
                    Pos++;
                    if (Pos < s.Length && (s[Pos] == '+' || s[Pos] == '-')) Pos++;
                    if (Pos >= s.Length || s[Pos] < '0' || s[Pos] > '9') throw Error("a digit in the exponent");
                    while (Pos < s.Length && s[Pos] >= '0' && s[Pos] <= '9') Pos++;
                }
                string lit = s.Substring(start, Pos - start);
                long l;
                if (!isFloat && long.TryParse(lit, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l)) return l;
                double d = double.Parse(lit, NumberStyles.Float, CultureInfo.InvariantCulture);
                // Some runtimes parse "-0.0" as +0.0.
                return d == 0 && lit[0] == '-' ? -0.0 : d;
            }
        }
    }

    /// <summary>Typed access to parsed JSON with errors that name the field.</summary>
    public static class J
    {
        public static Dictionary<string, object> Obj(object v, string what)
        {
            var d = v as Dictionary<string, object>;
            if (d == null) throw new AdapterException(ErrorCode.Malformed, what + " must be a JSON object");
            return d;
        }

        public static bool Has(Dictionary<string, object> o, string key)
        {
            object v;
            return o.TryGetValue(key, out v) && v != null;
        }

        public static object Get(Dictionary<string, object> o, string key)
        {
            object v;
            return o.TryGetValue(key, out v) ? v : null;
        }

        public static string Str(Dictionary<string, object> o, string key, string what)
        {
            var s = Get(o, key) as string;
            if (s == null) throw new AdapterException(ErrorCode.Malformed, what + "." + key + " must be a string");
            return s;
        }

        public static string OptStr(Dictionary<string, object> o, string key, string what)
        {
            var v = Get(o, key);
            if (v == null) return null;
            var s = v as string;
            if (s == null) throw new AdapterException(ErrorCode.Malformed, what + "." + key + " must be a string or null");
            return s;
        }

        public static bool IsNumber(object v)
        {
            return v is long || v is double;
        }

        public static double Num(object v, string what)
        {
            if (v is long) return (long)v;
            if (v is double) return (double)v;
            throw new AdapterException(ErrorCode.Malformed, what + " must be a number");
        }

        public static long Int(Dictionary<string, object> o, string key, string what)
        {
            var v = Get(o, key);
            if (v is long) return (long)v;
            throw new AdapterException(ErrorCode.Malformed, what + "." + key + " must be an integer");
        }

        public static double[] Vec(object v, int n, string what)
        {
            var l = v as List<object>;
            if (l == null || l.Count != n) throw new AdapterException(ErrorCode.Malformed, what + " must be an array of " + n + " numbers");
            var r = new double[n];
            for (int i = 0; i < n; i++) r[i] = Num(l[i], what + "[" + i + "]");
            return r;
        }

        public static List<object> Arr(object v, string what)
        {
            var l = v as List<object>;
            if (l == null) throw new AdapterException(ErrorCode.Malformed, what + " must be an array");
            return l;
        }
    }
}
