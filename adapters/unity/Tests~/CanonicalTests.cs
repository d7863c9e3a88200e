// The shared contract: the canonical hash against docs/test-vectors, and the
// Unity frame conversion against docs/test-vectors/frames.json and its own
// algebra.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace VibeSync.Tests
{
    public class HashVectorTests
    {
        static List<object> Cases(string file)
        {
            var path = Path.Combine(Path.Combine(Runner.RepoRoot, "docs"), Path.Combine("test-vectors", file));
            var doc = J.Obj(Json.Parse(File.ReadAllText(path)), file);
            return J.Arr(J.Get(doc, "cases"), file + ".cases");
        }

        [Test]
        public void EveryVectorEncodesAndHashesLikeTheRustReference()
        {
            var cases = Cases("canonical-hash.json");
            Assert.True(cases.Count >= 20, "at least 20 hash vectors, found " + cases.Count);
            foreach (var c in cases)
            {
                var o = J.Obj(c, "case");
                var name = J.Str(o, "name", "case");
                uint q = (uint)J.Int(o, "quantum", name);
                var objs = J.Arr(J.Get(o, "objects"), name).Select((x, i) => SceneObject.FromJson(x, name + ".objects[" + i + "]")).ToList();
                byte[] enc;
                if (J.Str(o, "mode", name) == "scene")
                {
                    enc = StateHash.EncodeScene(objs, q);
                }
                else
                {
                    var ids = J.Arr(J.Get(o, "ids"), name).Cast<string>();
                    enc = StateHash.EncodeObjectSet(ids, id => objs.FirstOrDefault(x => x.Id == id), q);
                }
                Assert.Equal(J.Str(o, "encoding_hex", name), StateHash.Hex(enc), name + " encoding");
                Assert.Equal(J.Str(o, "sha256", name), StateHash.Sha256Hex(enc), name + " sha256");
                if (J.Str(o, "mode", name) == "scene")
                    Assert.Equal(J.Str(o, "sha256", name), StateHash.SceneHash(objs, q), name + " SceneHash");
            }
        }

        [Test]
        public void QuantiseEdgeCases()
        {
            uint q = StateHash.DefaultQuantum;
            Assert.Equal(1L, StateHash.Q(q, 0.000005), "half away from zero");
            Assert.Equal(-1L, StateHash.Q(q, -0.000005), "negative half");
            Assert.Equal(0L, StateHash.Q(q, -0.0), "negative zero");
            Assert.Equal(long.MinValue, StateHash.Q(q, double.NaN), "NaN");
            Assert.Equal(long.MaxValue, StateHash.Q(q, 1e300), "saturate up");
            Assert.Equal(long.MinValue, StateHash.Q(q, -1e300), "saturate down");
            Assert.Equal(long.MinValue + 1, StateHash.Q(q, double.NegativeInfinity), "-inf");
        }

        [Test]
        public void Float32NoiseDoesNotChangeTheHashButAStepDoes()
        {
            var a = new SceneObject { Id = "obj-1", Name = "Cube", Kind = "mesh" };
            a.Transform.Translation = new[] { 1.25, 0.1, -3.3 };
            var b = a.Clone();
            b.Transform.Translation = a.Transform.Translation.Select(v => (double)(float)v).ToArray();
            Assert.Equal(StateHash.SceneHash(new[] { a }, StateHash.DefaultQuantum), StateHash.SceneHash(new[] { b }, StateHash.DefaultQuantum), "float32 noise");
            b.Transform.Translation[0] += 1e-5;
            Assert.True(StateHash.SceneHash(new[] { a }, StateHash.DefaultQuantum) != StateHash.SceneHash(new[] { b }, StateHash.DefaultQuantum), "one step differs");
        }

        /// <summary>
        /// The bound docs/canonical-state.md states: with the default quantum a
        /// snapped value survives Unity's float32 storage below magnitude 128,
        /// and not always above it.
        /// </summary>
        [Test]
        public void SnappedValuesSurviveFloat32Below128Only()
        {
            var r = new Random(13);
            uint q = StateHash.DefaultQuantum;
            int above = 0;
            for (int i = 0; i < 20000; i++)
            {
                double v = StateHash.Snap(q, (r.NextDouble() * 2 - 1) * 128);
                Assert.Equal(StateHash.Q(q, v), StateHash.Q(q, (float)v), "step of " + v.ToString("R"));
                double w = StateHash.Snap(q, 128 + r.NextDouble() * 72);
                if (StateHash.Q(q, w) != StateHash.Q(q, (float)w)) above++;
            }
            Assert.True(above > 0, "values in [128, 200) can change step (the documented bound is real)");
        }

        [Test]
        public void FrameVectorsMatchTheUnityConversion()
        {
            var cases = Cases("frames.json");
            Assert.True(cases.Count > 0, "frames.json has cases");
            foreach (var c in cases)
            {
                var o = J.Obj(c, "case");
                var name = J.Str(o, "name", "case");
                var canonical = Transform.FromJson(J.Get(o, "canonical"), name);
                var unity = Transform.FromJson(J.Get(o, "unity"), name);
                Assert.Equal(Json.Write(unity.ToJson()), Json.Write(UnityFrame.FromCanonical(canonical).ToJson()), name + " canonical -> unity");
                Assert.Equal(Json.Write(canonical.ToJson()), Json.Write(UnityFrame.ToCanonical(unity).ToJson()), name + " unity -> canonical");
            }
        }
    }

    public class OpVectorTests
    {
        /// <summary>
        /// docs/test-vectors/ops.json replayed through the dispatcher onto a
        /// scene that stores float32 like Unity: same scene hash after every
        /// transaction as Rust's Scene::apply_all, same failing op and code.
        /// </summary>
        [Test]
        public void DispatcherMatchesSceneApplyOverFloat32Storage()
        {
            var path = System.IO.Path.Combine(Runner.RepoRoot, "docs/test-vectors/ops.json");
            var doc = J.Obj(Json.Parse(File.ReadAllText(path)), "ops.json");
            var adapter = new Adapter(new InMemoryScene(), (uint)J.Int(doc, "quantum", "ops.json"));
            long tid = 0;
            foreach (var t in J.Arr(J.Get(doc, "transactions"), "transactions"))
            {
                var tx = J.Obj(t, "transaction");
                var name = J.Str(tx, "name", "transaction");
                var expect = J.Obj(J.Get(tx, "expect"), name);
                tid++;
                var cmd = new Dictionary<string, object> { { "id", tid }, { "kind", "apply" }, { "tid", tid }, { "ops", J.Get(tx, "ops") } };
                var reply = J.Obj(Json.Parse(adapter.HandleJson(Json.Write(cmd))), "reply");
                Assert.Equal((bool)expect["ok"], (bool)reply["ok"], name + " ok: " + Json.Write(reply));
                if (!(bool)expect["ok"])
                {
                    var err = J.Obj(reply["error"], "error");
                    Assert.Equal((string)expect["code"], (string)err["code"], name + " code");
                    Assert.True(((string)err["message"]).Contains(" op " + (long)expect["failed_op"] + " "), name + " names the failing op: " + err["message"]);
                }
                var snap = J.Obj(J.Obj(Json.Parse(adapter.HandleJson("{\"id\":0,\"kind\":\"snapshot\"}")), "snapshot")["result"], "result");
                Assert.Equal((string)expect["scene_hash"], (string)snap["hash"], name + " scene hash");
            }
            Assert.True(tid >= 10, "ops.json has transactions");
        }
    }

    public class FrameTests
    {
        static double[] Rotate(double[] q, double[] v)
        {
            double x = q[0], y = q[1], z = q[2], w = q[3];
            Func<double[], double[], double[]> cross = (a, b) => new[] { a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0] };
            var u = new[] { x, y, z };
            var t = cross(u, v).Select(c => 2 * c).ToArray();
            var ut = cross(u, t);
            return new[] { v[0] + w * t[0] + ut[0], v[1] + w * t[1] + ut[1], v[2] + w * t[2] + ut[2] };
        }

        static Transform RandomTransform(Random r)
        {
            var q = new double[4];
            double n;
            do
            {
                for (int i = 0; i < 4; i++) q[i] = r.NextDouble() * 2 - 1;
                n = Math.Sqrt(q.Sum(c => c * c));
            } while (n < 1e-3);
            return new Transform
            {
                Translation = new[] { r.NextDouble() * 2e3 - 1e3, r.NextDouble() * 2e3 - 1e3, r.NextDouble() * 2e3 - 1e3 },
                Rotation = q.Select(c => c / n).ToArray(),
                Scale = new[] { 0.01 + r.NextDouble() * 100, 0.01 + r.NextDouble() * 100, 0.01 + r.NextDouble() * 100 },
            };
        }

        [Test]
        public void RoundTripIsExact()
        {
            var r = new Random(7);
            for (int i = 0; i < 10000; i++)
            {
                var t = RandomTransform(r);
                var back = UnityFrame.ToCanonical(UnityFrame.FromCanonical(t));
                Assert.Equal(Json.Write(t.ToJson()), Json.Write(back.ToJson()), "round trip " + i);
            }
        }

        [Test]
        public void RoundTripThroughFloat32StorageIsWithin1e6()
        {
            var r = new Random(11);
            for (int i = 0; i < 10000; i++)
            {
                var t = RandomTransform(r);
                // Scale translations into a scene-sized range, where float32 keeps 1e-6.
                t.Translation = t.Translation.Select(v => v / 100).ToArray();
                t.Scale = t.Scale.Select(v => v / 10).ToArray();
                var u = UnityFrame.FromCanonical(t);
                var stored = new Transform
                {
                    Translation = u.Translation.Select(v => (double)(float)v).ToArray(),
                    Rotation = u.Rotation.Select(v => (double)(float)v).ToArray(),
                    Scale = u.Scale.Select(v => (double)(float)v).ToArray(),
                };
                var back = UnityFrame.ToCanonical(stored);
                for (int k = 0; k < 3; k++)
                {
                    Assert.Near(t.Translation[k], back.Translation[k], 1e-6, "translation " + i);
                    Assert.Near(t.Scale[k], back.Scale[k], 1e-6, "scale " + i);
                }
                for (int k = 0; k < 4; k++) Assert.Near(t.Rotation[k], back.Rotation[k], 1e-6, "rotation " + i);
            }
        }

        /// <summary>The quaternion rule is right, not merely self-inverse: rotating then mirroring equals mirroring then rotating.</summary>
        [Test]
        public void RotationConversionCommutesWithTheMirror()
        {
            var r = new Random(3);
            for (int i = 0; i < 10000; i++)
            {
                var t = RandomTransform(r);
                var v = new[] { r.NextDouble() * 20 - 10, r.NextDouble() * 20 - 10, r.NextDouble() * 20 - 10 };
                var expected = UnityFrame.FromCanonical(new Transform { Translation = Rotate(t.Rotation, v) }).Translation;
                var qu = UnityFrame.FromCanonical(t).Rotation;
                var vu = UnityFrame.FromCanonical(new Transform { Translation = v }).Translation;
                var got = Rotate(qu, vu);
                for (int k = 0; k < 3; k++) Assert.Near(expected[k], got[k], 1e-9, "rotated vector " + i);
            }
        }

        [Test]
        public void UpStaysUpAndXFlips()
        {
            var u = UnityFrame.FromCanonical(new Transform { Translation = new[] { 1.0, 2.0, 3.0 } });
            Assert.Equal("[-1.0,2.0,3.0]", Json.Write(u.Translation), "position mirrored in x");
        }
    }
}
