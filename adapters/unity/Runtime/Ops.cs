// The ops of docs/ops.md as typed values, parsed from {"op", "args"} with
// errors that name the op and field. Vectors are canonical-frame here; the
// Adapter converts them to the engine frame.
using System.Collections.Generic;

namespace VibeSync
{
    public abstract class Op
    {
        /// <summary>The wire name, e.g. "set_transform".</summary>
        public abstract string OpName { get; }

        /// <summary>Ids whose tracked state this op changes (delete: descendants added by the Adapter).</summary>
        public abstract IEnumerable<string> Targets { get; }

        public static Op Parse(object json, string what)
        {
            var o = J.Obj(json, what);
            var name = J.Str(o, "op", what);
            var argsV = J.Get(o, "args");
            var a = argsV == null ? new Dictionary<string, object>() : J.Obj(argsV, what + ".args");
            string w = what + " (" + name + ").args";
            switch (name)
            {
                case "create_object":
                {
                    var kind = J.Str(a, "kind", w);
                    if (!ObjectKinds.IsValid(kind))
                        throw new AdapterException(ErrorCode.Malformed, w + ".kind is \"" + kind + "\"; use mesh, empty, camera or light");
                    if (!J.Has(a, "id"))
                        throw new AdapterException(ErrorCode.Malformed, w + ".id is missing; the host assigns ids before sending create_object");
                    return new CreateObject
                    {
                        Id = J.Str(a, "id", w),
                        Name = J.Str(a, "name", w),
                        Kind = kind,
                        Primitive = J.OptStr(a, "primitive", w),
                        Parent = J.OptStr(a, "parent", w),
                        Transform = J.Has(a, "transform") ? ParseTransform(J.Get(a, "transform"), w + ".transform") : null,
                    };
                }
                case "delete_object": return new DeleteObject { Id = J.Str(a, "id", w) };
                case "rename_object": return new RenameObject { Id = J.Str(a, "id", w), Name = J.Str(a, "name", w) };
                case "reparent_object": return new ReparentObject { Id = J.Str(a, "id", w), Parent = J.OptStr(a, "parent", w) };
                case "set_transform":
                    return new SetTransform
                    {
                        Id = J.Str(a, "id", w),
                        Translation = OptVec(a, "translation", 3, w),
                        Rotation = OptVec(a, "rotation", 4, w),
                        Scale = OptVec(a, "scale", 3, w),
                    };
                case "set_material":
                    return new SetMaterial
                    {
                        Id = J.Str(a, "id", w),
                        BaseColor = OptVec(a, "base_color", 4, w),
                        Roughness = OptNum(a, "roughness", w),
                        Metallic = OptNum(a, "metallic", w),
                        Emission = OptVec(a, "emission", 3, w),
                        EmissionStrength = OptNum(a, "emission_strength", w),
                    };
                case "select":
                {
                    var ids = new List<string>();
                    var arr = J.Arr(J.Get(a, "ids"), w + ".ids");
                    for (int i = 0; i < arr.Count; i++)
                    {
                        var s = arr[i] as string;
                        if (s == null) throw new AdapterException(ErrorCode.Malformed, w + ".ids[" + i + "] must be a string");
                        ids.Add(s);
                    }
                    var frame = J.Get(a, "frame");
                    if (frame != null && !(frame is bool)) throw new AdapterException(ErrorCode.Malformed, w + ".frame must be a boolean");
                    return new Select { Ids = ids, Frame = frame != null && (bool)frame };
                }
                case "run_script":
                    return new RunScript { Language = J.Str(a, "language", w), Code = J.Str(a, "code", w) };
                default:
                    throw new AdapterException(ErrorCode.Malformed, what + ".op \"" + name + "\" is not an op this adapter knows (docs/ops.md)");
            }
        }

        static double[] OptVec(Dictionary<string, object> a, string key, int n, string w)
        {
            return J.Has(a, key) ? J.Vec(J.Get(a, key), n, w + "." + key) : null;
        }

        static double? OptNum(Dictionary<string, object> a, string key, string w)
        {
            if (!J.Has(a, key)) return null;
            return J.Num(J.Get(a, key), w + "." + key);
        }

        static Transform ParseTransform(object v, string w)
        {
            var o = J.Obj(v, w);
            var t = new Transform();
            if (J.Has(o, "translation")) t.Translation = J.Vec(J.Get(o, "translation"), 3, w + ".translation");
            if (J.Has(o, "rotation")) t.Rotation = J.Vec(J.Get(o, "rotation"), 4, w + ".rotation");
            if (J.Has(o, "scale")) t.Scale = J.Vec(J.Get(o, "scale"), 3, w + ".scale");
            return t;
        }
    }

    public sealed class CreateObject : Op
    {
        public string Id, Name, Kind, Primitive, Parent;
        /// <summary>Null: identity.</summary>
        public Transform Transform;
        public override string OpName { get { return "create_object"; } }
        public override IEnumerable<string> Targets { get { return new[] { Id }; } }
    }

    public sealed class DeleteObject : Op
    {
        public string Id;
        public override string OpName { get { return "delete_object"; } }
        public override IEnumerable<string> Targets { get { return new[] { Id }; } }
    }

    public sealed class RenameObject : Op
    {
        public string Id, Name;
        public override string OpName { get { return "rename_object"; } }
        public override IEnumerable<string> Targets { get { return new[] { Id }; } }
    }

    public sealed class ReparentObject : Op
    {
        public string Id, Parent;
        public override string OpName { get { return "reparent_object"; } }
        public override IEnumerable<string> Targets { get { return new[] { Id }; } }
    }

    public sealed class SetTransform : Op
    {
        public string Id;
        public double[] Translation, Rotation, Scale;
        public override string OpName { get { return "set_transform"; } }
        public override IEnumerable<string> Targets { get { return new[] { Id }; } }
    }

    public sealed class SetMaterial : Op
    {
        public string Id;
        public double[] BaseColor, Emission;
        public double? Roughness, Metallic, EmissionStrength;
        public override string OpName { get { return "set_material"; } }
        public override IEnumerable<string> Targets { get { return new[] { Id }; } }
    }

    public sealed class Select : Op
    {
        public List<string> Ids;
        public bool Frame;
        public override string OpName { get { return "select"; } }
        public override IEnumerable<string> Targets { get { return new string[0]; } }
    }

    public sealed class RunScript : Op
    {
        public string Language, Code;
        public override string OpName { get { return "run_script"; } }
        public override IEnumerable<string> Targets { get { return new string[0]; } }
    }
}
