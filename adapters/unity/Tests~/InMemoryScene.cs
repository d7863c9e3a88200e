// An IScene in memory that behaves like Unity where it matters: values are
// stored as float32, deleting an object deletes its children, reparenting
// keeps the local transform, and (optionally) a native undo stack that can
// revert the newest group only. Counts calls so tests can see which rollback
// path ran.
using System;
using System.Collections.Generic;
using System.Linq;

namespace VibeSync.Tests
{
    public sealed class InMemoryScene : IScene
    {
        public readonly Dictionary<string, SceneObject> Objects = new Dictionary<string, SceneObject>();
        public bool NativeUndo;
        public int NativeReverts;
        public List<string> Selected = new List<string>();
        /// <summary>When set, the engine throws on writing this id (a failing engine call).</summary>
        public string FailOnWrite;

        readonly List<KeyValuePair<long, Dictionary<string, SceneObject>>> undo = new List<KeyValuePair<long, Dictionary<string, SceneObject>>>();
        long nextGroup = 1;

        static double F(double v) { return (double)(float)v; }

        static double[] F(double[] v) { return v.Select(F).ToArray(); }

        static Transform F(Transform t)
        {
            return new Transform { Translation = F(t.Translation), Rotation = F(t.Rotation), Scale = F(t.Scale) };
        }

        void Writing(string id)
        {
            if (id == FailOnWrite) throw new InvalidOperationException("engine refused to write " + id);
        }

        public IEnumerable<string> TrackedIds() { return Objects.Keys.ToList(); }

        public SceneObject Read(string id)
        {
            SceneObject o;
            return Objects.TryGetValue(id, out o) ? o.Clone() : null;
        }

        public void Create(string id, string name, string kind, string primitive, string parent, Transform local)
        {
            Writing(id);
            if (Objects.ContainsKey(id)) throw new InvalidOperationException("duplicate " + id);
            Objects[id] = new SceneObject { Id = id, Name = name, Kind = kind, Parent = parent, Transform = F(local) };
        }

        public void Delete(string id)
        {
            Writing(id);
            foreach (var c in Objects.Values.Where(o => o.Parent == id).Select(o => o.Id).ToList()) Delete(c);
            Objects.Remove(id);
        }

        public void Rename(string id, string name) { Writing(id); Objects[id].Name = name; }

        public void Reparent(string id, string parent) { Writing(id); Objects[id].Parent = parent; }

        public void SetTransform(string id, Transform local) { Writing(id); Objects[id].Transform = F(local); }

        public void SetMaterial(string id, Material m)
        {
            Writing(id);
            Objects[id].Material = new Material
            {
                BaseColor = F(m.BaseColor), Roughness = F(m.Roughness), Metallic = F(m.Metallic),
                Emission = F(m.Emission), EmissionStrength = F(m.EmissionStrength),
            };
        }

        public void RemoveMaterial(string id) { Writing(id); Objects[id].Material = null; }

        public void Select(IList<string> ids, bool frame) { Selected = ids.ToList(); }

        Dictionary<string, SceneObject> Copy()
        {
            return Objects.ToDictionary(kv => kv.Key, kv => kv.Value.Clone());
        }

        public long BeginUndoGroup(string label)
        {
            if (!NativeUndo) return -1;
            long g = nextGroup++;
            undo.Add(new KeyValuePair<long, Dictionary<string, SceneObject>>(g, Copy()));
            return g;
        }

        public void EndUndoGroup(long group) { }

        public bool RevertUndoGroup(long group)
        {
            if (!NativeUndo || undo.Count == 0 || undo[undo.Count - 1].Key != group) return false;
            Objects.Clear();
            foreach (var kv in undo[undo.Count - 1].Value) Objects[kv.Key] = kv.Value;
            undo.RemoveAt(undo.Count - 1);
            NativeReverts++;
            return true;
        }

        /// <summary>Exact (bitwise) image of the engine state, for before/after comparisons.</summary>
        public string Dump()
        {
            return string.Join("\n", Objects.Keys.OrderBy(k => k, StringComparer.Ordinal).Select(k => Json.Write(Objects[k].ToJson())));
        }
    }
}
