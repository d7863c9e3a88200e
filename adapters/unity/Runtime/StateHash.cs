// The canonical state hash, byte for byte as docs/canonical-state.md and
// adapters/canonical/src/hash.rs specify it; checked against
// docs/test-vectors/canonical-hash.json by the Mono tests. Also the "snap"
// the host applies to every value it stores, so the adapter writes exactly
// what the host expects.
using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Text;

namespace VibeSync
{
    public static class StateHash
    {
        /// <summary>The default grid: 100 000 steps per unit (1e-5).</summary>
        public const uint DefaultQuantum = 100000;

        static readonly byte[] Domain = Encoding.ASCII.GetBytes("vibesync/state/v1");

        /// <summary>Quantise one value: round half away from zero of v*steps, saturating; NaN/inf mapped.</summary>
        public static long Q(uint steps, double v)
        {
            if (double.IsNaN(v)) return long.MinValue;
            if (double.IsPositiveInfinity(v)) return long.MaxValue;
            if (double.IsNegativeInfinity(v)) return long.MinValue + 1;
            double p = Math.Round(v * (double)steps, MidpointRounding.AwayFromZero);
            if (p >= 9223372036854775808.0) return long.MaxValue;
            if (p <= -9223372036854775808.0) return long.MinValue;
            return (long)p;
        }

        /// <summary>Snap a value to the grid, as the host stores it.</summary>
        public static double Snap(uint steps, double v)
        {
            if (double.IsNaN(v) || double.IsInfinity(v)) return v;
            return Math.Round(v * (double)steps, MidpointRounding.AwayFromZero) / (double)steps;
        }

        /// <summary>Snap every component; normalise the rotation first (when its norm is finite and
        /// non-zero) unless its snapped norm is already within one grid step of 1, so that snapping
        /// twice changes nothing (<c>hash::snap_transform</c>).</summary>
        public static void SnapTransform(Transform t, uint steps)
        {
            var r = t.Rotation;
            double ns = 0;
            for (int i = 0; i < 4; i++) { double c = Snap(steps, r[i]); ns += c * c; }
            ns = Math.Sqrt(ns);
            double n = Math.Sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2] + r[3] * r[3]);
            if (Math.Abs(ns - 1.0) > (1.0 / steps) * (1.0 + 1e-9) && !double.IsNaN(n) && !double.IsInfinity(n) && n > 0)
                for (int i = 0; i < 4; i++) r[i] /= n;
            SnapAll(t.Translation, steps);
            SnapAll(t.Rotation, steps);
            SnapAll(t.Scale, steps);
        }

        public static void SnapMaterial(Material m, uint steps)
        {
            SnapAll(m.BaseColor, steps);
            m.Roughness = Snap(steps, m.Roughness);
            m.Metallic = Snap(steps, m.Metallic);
            SnapAll(m.Emission, steps);
            m.EmissionStrength = Snap(steps, m.EmissionStrength);
        }

        static void SnapAll(double[] vs, uint steps)
        {
            for (int i = 0; i < vs.Length; i++) vs[i] = Snap(steps, vs[i]);
        }

        /// <summary>Bytewise (UTF-8) order of ids, the order the hash sorts entries in.</summary>
        public static int CompareIds(string a, string b)
        {
            var x = Encoding.UTF8.GetBytes(a);
            var y = Encoding.UTF8.GetBytes(b);
            int n = Math.Min(x.Length, y.Length);
            for (int i = 0; i < n; i++)
                if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
            return x.Length.CompareTo(y.Length);
        }

        /// <summary>Encoding of a whole scene: every object present, sorted by id.</summary>
        public static byte[] EncodeScene(IEnumerable<SceneObject> objects, uint steps)
        {
            var byId = new SortedDictionary<string, SceneObject>(Comparer<string>.Create(CompareIds));
            foreach (var o in objects) byId[o.Id] = o;
            var enc = new Encoder(steps, byId.Count);
            foreach (var o in byId.Values) enc.Present(o);
            return enc.Bytes();
        }

        /// <summary>Encoding of an id set: each id (deduplicated, sorted) present via lookup, or absent.</summary>
        public static byte[] EncodeObjectSet(IEnumerable<string> ids, Func<string, SceneObject> lookup, uint steps)
        {
            var sorted = new SortedSet<string>(ids, Comparer<string>.Create(CompareIds));
            var enc = new Encoder(steps, sorted.Count);
            foreach (var id in sorted)
            {
                var o = lookup(id);
                if (o != null) enc.Present(o);
                else enc.Absent(id);
            }
            return enc.Bytes();
        }

        public static string SceneHash(IEnumerable<SceneObject> objects, uint steps)
        {
            return Sha256Hex(EncodeScene(objects, steps));
        }

        public static string ObjectSetHash(IEnumerable<string> ids, Func<string, SceneObject> lookup, uint steps)
        {
            return Sha256Hex(EncodeObjectSet(ids, lookup, steps));
        }

        public static string Sha256Hex(byte[] data)
        {
            using (var sha = SHA256.Create()) return Hex(sha.ComputeHash(data));
        }

        public static string Hex(byte[] data)
        {
            var sb = new StringBuilder(data.Length * 2);
            foreach (var b in data) sb.Append(b.ToString("x2"));
            return sb.ToString();
        }

        sealed class Encoder
        {
            readonly uint steps;
            readonly List<byte> buf = new List<byte>(256);

            public Encoder(uint steps, int entries)
            {
                this.steps = steps;
                buf.AddRange(Domain);
                U32(steps);
                U32((uint)entries);
            }

            void U32(uint v)
            {
                buf.Add((byte)(v >> 24)); buf.Add((byte)(v >> 16)); buf.Add((byte)(v >> 8)); buf.Add((byte)v);
            }

            void I64(long v)
            {
                ulong u = unchecked((ulong)v);
                for (int shift = 56; shift >= 0; shift -= 8) buf.Add((byte)(u >> shift));
            }

            void Str(string s)
            {
                var b = Encoding.UTF8.GetBytes(s);
                U32((uint)b.Length);
                buf.AddRange(b);
            }

            void Ints(double[] vs)
            {
                foreach (var v in vs) I64(Q(steps, v));
            }

            public void Present(SceneObject o)
            {
                buf.Add(1);
                Str(o.Id);
                Str(o.Name);
                Str(o.Kind);
                Str(o.Parent ?? "");
                var t = o.Transform;
                Ints(t.Translation);
                var r = new long[4];
                for (int i = 0; i < 4; i++) r[i] = Q(steps, t.Rotation[i]);
                bool firstNonZeroNegative = false;
                for (int i = 0; i < 3; i++)
                    if (r[i] != 0) { firstNonZeroNegative = r[i] < 0; break; }
                if (r[3] < 0 || (r[3] == 0 && firstNonZeroNegative))
                    for (int i = 0; i < 4; i++) r[i] = unchecked(-r[i]);
                foreach (var c in r) I64(c);
                Ints(t.Scale);
                var m = o.Material;
                if (m == null) { buf.Add(0); return; }
                buf.Add(1);
                Ints(m.BaseColor);
                I64(Q(steps, m.Roughness));
                I64(Q(steps, m.Metallic));
                Ints(m.Emission);
                I64(Q(steps, m.EmissionStrength));
            }

            public void Absent(string id)
            {
                buf.Add(0);
                Str(id);
            }

            public byte[] Bytes() { return buf.ToArray(); }
        }
    }
}
