// Tracked objects in the canonical frame (adapters/canonical/src/model.rs),
// with their JSON form (docs/adapter-api.md, "SceneObject"). The same types
// carry engine-frame values inside IScene; Frames converts between the two.
using System;
using System.Collections.Generic;

namespace VibeSync
{
    public static class ObjectKinds
    {
        public const string Mesh = "mesh";
        public const string Empty = "empty";
        public const string Camera = "camera";
        public const string Light = "light";

        public static bool IsValid(string k)
        {
            return k == Mesh || k == Empty || k == Camera || k == Light;
        }
    }

    /// <summary>A local transform: translation xyz, rotation quaternion xyzw, scale xyz.</summary>
    public sealed class Transform
    {
        public double[] Translation = { 0, 0, 0 };
        public double[] Rotation = { 0, 0, 0, 1 };
        public double[] Scale = { 1, 1, 1 };

        public static Transform Identity() { return new Transform(); }

        public Transform Clone()
        {
            return new Transform
            {
                Translation = (double[])Translation.Clone(),
                Rotation = (double[])Rotation.Clone(),
                Scale = (double[])Scale.Clone(),
            };
        }

        public Dictionary<string, object> ToJson()
        {
            return new Dictionary<string, object>
            {
                { "translation", Wire.Nums(Translation) },
                { "rotation", Wire.Nums(Rotation) },
                { "scale", Wire.Nums(Scale) },
            };
        }

        public static Transform FromJson(object v, string what)
        {
            var o = J.Obj(v, what);
            var t = new Transform();
            if (J.Has(o, "translation")) t.Translation = Wire.Vec(J.Get(o, "translation"), 3, what + ".translation");
            if (J.Has(o, "rotation")) t.Rotation = Wire.Vec(J.Get(o, "rotation"), 4, what + ".rotation");
            if (J.Has(o, "scale")) t.Scale = Wire.Vec(J.Get(o, "scale"), 3, what + ".scale");
            return t;
        }
    }

    /// <summary>Material properties, linear colour space.</summary>
    public sealed class Material
    {
        public double[] BaseColor = { 0.8, 0.8, 0.8, 1.0 };
        public double Roughness = 0.5;
        public double Metallic = 0.0;
        public double[] Emission = { 0, 0, 0 };
        public double EmissionStrength = 0.0;

        /// <summary>The material a first set_material starts from.</summary>
        public static Material Default() { return new Material(); }

        public Material Clone()
        {
            return new Material
            {
                BaseColor = (double[])BaseColor.Clone(),
                Roughness = Roughness,
                Metallic = Metallic,
                Emission = (double[])Emission.Clone(),
                EmissionStrength = EmissionStrength,
            };
        }

        public Dictionary<string, object> ToJson()
        {
            return new Dictionary<string, object>
            {
                { "base_color", Wire.Nums(BaseColor) },
                { "roughness", Wire.Num(Roughness) },
                { "metallic", Wire.Num(Metallic) },
                { "emission", Wire.Nums(Emission) },
                { "emission_strength", Wire.Num(EmissionStrength) },
            };
        }

        public static Material FromJson(object v, string what)
        {
            var o = J.Obj(v, what);
            var m = new Material();
            if (J.Has(o, "base_color")) m.BaseColor = Wire.Vec(J.Get(o, "base_color"), 4, what + ".base_color");
            if (J.Has(o, "roughness")) m.Roughness = Wire.Num(J.Get(o, "roughness"), what + ".roughness");
            if (J.Has(o, "metallic")) m.Metallic = Wire.Num(J.Get(o, "metallic"), what + ".metallic");
            if (J.Has(o, "emission")) m.Emission = Wire.Vec(J.Get(o, "emission"), 3, what + ".emission");
            if (J.Has(o, "emission_strength")) m.EmissionStrength = Wire.Num(J.Get(o, "emission_strength"), what + ".emission_strength");
            return m;
        }
    }

    /// <summary>The state of one tracked object.</summary>
    public sealed class SceneObject
    {
        public string Id;
        public string Name;
        public string Kind;
        /// <summary>Parent id, or null for a root.</summary>
        public string Parent;
        public Transform Transform = new Transform();
        /// <summary>Null until a set_material gives the object a managed material.</summary>
        public Material Material;

        public SceneObject Clone()
        {
            return new SceneObject
            {
                Id = Id,
                Name = Name,
                Kind = Kind,
                Parent = Parent,
                Transform = Transform.Clone(),
                Material = Material == null ? null : Material.Clone(),
            };
        }

        public Dictionary<string, object> ToJson()
        {
            return new Dictionary<string, object>
            {
                { "id", Id },
                { "name", Name },
                { "kind", Kind },
                { "parent", Parent },
                { "transform", Transform.ToJson() },
                { "material", Material == null ? null : Material.ToJson() },
            };
        }

        public static SceneObject FromJson(object v, string what)
        {
            var o = J.Obj(v, what);
            var so = new SceneObject
            {
                Id = J.Str(o, "id", what),
                Name = J.Str(o, "name", what),
                Kind = J.Str(o, "kind", what),
                Parent = J.OptStr(o, "parent", what),
                Transform = J.Has(o, "transform") ? Transform.FromJson(J.Get(o, "transform"), what + ".transform") : new Transform(),
                Material = J.Has(o, "material") ? Material.FromJson(J.Get(o, "material"), what + ".material") : null,
            };
            if (!ObjectKinds.IsValid(so.Kind))
                throw new AdapterException(ErrorCode.Malformed, what + ".kind is \"" + so.Kind + "\"; use mesh, empty, camera or light");
            return so;
        }
    }

    /// <summary>
    /// Floats on the wire: JSON numbers, and, where JSON cannot express a
    /// value, the strings "NaN", "Infinity", "-Infinity" (the convention of
    /// docs/test-vectors and of the undo tokens this adapter writes, so an
    /// engine value that went non-finite is restored exactly).
    /// </summary>
    public static class Wire
    {
        public static object Num(double d)
        {
            if (double.IsNaN(d)) return "NaN";
            if (double.IsPositiveInfinity(d)) return "Infinity";
            if (double.IsNegativeInfinity(d)) return "-Infinity";
            return d;
        }

        public static List<object> Nums(double[] ds)
        {
            var l = new List<object>(ds.Length);
            foreach (var d in ds) l.Add(Num(d));
            return l;
        }

        public static double Num(object v, string what)
        {
            var s = v as string;
            if (s == "NaN") return double.NaN;
            if (s == "Infinity") return double.PositiveInfinity;
            if (s == "-Infinity") return double.NegativeInfinity;
            return J.Num(v, what);
        }

        public static double[] Vec(object v, int n, string what)
        {
            var l = v as List<object>;
            if (l == null || l.Count != n) throw new AdapterException(ErrorCode.Malformed, what + " must be an array of " + n + " numbers");
            var r = new double[n];
            for (int i = 0; i < n; i++) r[i] = Num(l[i], what + "[" + i + "]");
            return r;
        }
    }
}
