// Artist edits -> change events (docs/adapter-api.md, "Events"). The glue
// only says WHICH objects may have changed (from ObjectChangeEvents); this
// class diffs their canonical state against the last state it knows and
// emits the ops that explain the difference, debounced. States the adapter
// wrote itself are acknowledged first, so they are never echoed back.
// Differences smaller than the hash quantum are not edits.
using System;
using System.Collections.Generic;
using System.Linq;

namespace VibeSync
{
    public sealed class ChangeTracker
    {
        readonly uint steps;
        readonly long debounceMs;
        readonly Dictionary<string, SceneObject> known = new Dictionary<string, SceneObject>();
        readonly HashSet<string> dirty = new HashSet<string>();
        bool allDirty;
        long lastMarkMs;

        public ChangeTracker(long debounceMs, uint quantum = StateHash.DefaultQuantum)
        {
            this.debounceMs = debounceMs;
            steps = quantum;
        }

        public bool HasPending { get { return allDirty || dirty.Count > 0; } }

        /// <summary>Forget everything and take the scene as it is now as known (no events).</summary>
        public void Reset(IEnumerable<string> ids, Func<string, SceneObject> readCanonical)
        {
            known.Clear();
            dirty.Clear();
            allDirty = false;
            Acknowledge(ids, readCanonical);
        }

        public void MarkDirty(string id, long nowMs)
        {
            dirty.Add(id);
            lastMarkMs = nowMs;
        }

        /// <summary>A change the glue cannot attribute to one object (hierarchy rebuilt, undo...).</summary>
        public void MarkAllDirty(long nowMs)
        {
            allDirty = true;
            lastMarkMs = nowMs;
        }

        /// <summary>The adapter wrote these ids: their current state is known, not an edit.</summary>
        public void Acknowledge(IEnumerable<string> ids, Func<string, SceneObject> readCanonical)
        {
            foreach (var id in ids)
            {
                var o = readCanonical(id);
                if (o == null) known.Remove(id);
                else known[id] = o.Clone();
                dirty.Remove(id);
            }
        }

        /// <summary>
        /// The change event for everything dirty, once no new mark arrived for
        /// the debounce period; null when there is nothing (yet) to send.
        /// </summary>
        public string Flush(long nowMs, IEnumerable<string> trackedIds, Func<string, SceneObject> readCanonical)
        {
            if (!HasPending || nowMs - lastMarkMs < debounceMs) return null;
            var ids = new HashSet<string>(dirty);
            if (allDirty)
            {
                ids.UnionWith(known.Keys);
                ids.UnionWith(trackedIds);
            }
            dirty.Clear();
            allDirty = false;

            var now = new Dictionary<string, SceneObject>();
            foreach (var id in ids)
            {
                var o = readCanonical(id);
                if (o != null) now[id] = o;
            }
            var ops = new List<object>();
            // Creates, parents first, so the host can apply them in order.
            var created = ids.Where(id => now.ContainsKey(id) && !known.ContainsKey(id)).OrderBy(id => Depth(id, now)).ThenBy(id => id, StringComparer.Ordinal);
            foreach (var id in created)
            {
                var o = now[id];
                ops.Add(OpJson("create_object", new Dictionary<string, object>
                {
                    { "id", id }, { "name", o.Name }, { "kind", o.Kind }, { "parent", o.Parent }, { "transform", o.Transform.ToJson() },
                }));
                if (o.Material != null) ops.Add(OpJson("set_material", MaterialArgs(id, o.Material)));
            }
            foreach (var id in ids.OrderBy(x => x, StringComparer.Ordinal))
            {
                SceneObject was, cur;
                if (!known.TryGetValue(id, out was) || !now.TryGetValue(id, out cur)) continue;
                if (cur.Name != was.Name) ops.Add(OpJson("rename_object", new Dictionary<string, object> { { "id", id }, { "name", cur.Name } }));
                if (cur.Parent != was.Parent) ops.Add(OpJson("reparent_object", new Dictionary<string, object> { { "id", id }, { "parent", cur.Parent } }));
                var t = new Dictionary<string, object> { { "id", id } };
                if (!SameQ(cur.Transform.Translation, was.Transform.Translation)) t["translation"] = Wire.Nums(cur.Transform.Translation);
                if (!SameRotation(cur.Transform.Rotation, was.Transform.Rotation)) t["rotation"] = Wire.Nums(cur.Transform.Rotation);
                if (!SameQ(cur.Transform.Scale, was.Transform.Scale)) t["scale"] = Wire.Nums(cur.Transform.Scale);
                if (t.Count > 1) ops.Add(OpJson("set_transform", t));
                if (cur.Material != null && (was.Material == null || !SameMaterial(cur.Material, was.Material)))
                    ops.Add(OpJson("set_material", MaterialArgs(id, cur.Material)));
            }
            // Deletes: only the top-most deleted object (the host deletes descendants with it).
            var deleted = new HashSet<string>(ids.Where(id => known.ContainsKey(id) && !now.ContainsKey(id)));
            foreach (var id in deleted.OrderBy(x => x, StringComparer.Ordinal))
            {
                var p = known[id].Parent;
                if (p != null && deleted.Contains(p)) continue;
                ops.Add(OpJson("delete_object", new Dictionary<string, object> { { "id", id } }));
            }
            foreach (var id in ids)
            {
                SceneObject o;
                if (now.TryGetValue(id, out o)) known[id] = o.Clone();
                else known.Remove(id);
            }
            if (ops.Count == 0) return null;
            return Json.Write(new Dictionary<string, object> { { "kind", "change" }, { "ops", ops } });
        }

        static int Depth(string id, Dictionary<string, SceneObject> now)
        {
            int d = 0;
            var seen = new HashSet<string>();
            SceneObject o;
            while (now.TryGetValue(id, out o) && o.Parent != null && seen.Add(id)) { id = o.Parent; d++; }
            return d;
        }

        static Dictionary<string, object> OpJson(string op, Dictionary<string, object> args)
        {
            return new Dictionary<string, object> { { "op", op }, { "args", args } };
        }

        static Dictionary<string, object> MaterialArgs(string id, Material m)
        {
            var a = m.ToJson();
            a["id"] = id;
            return a;
        }

        bool SameQ(double[] a, double[] b)
        {
            for (int i = 0; i < a.Length; i++)
                if (StateHash.Q(steps, a[i]) != StateHash.Q(steps, b[i])) return false;
            return true;
        }

        bool SameRotation(double[] a, double[] b)
        {
            if (SameQ(a, b)) return true;
            var neg = a.Select(c => -c).ToArray();
            return SameQ(neg, b);
        }

        bool SameMaterial(Material a, Material b)
        {
            return SameQ(a.BaseColor, b.BaseColor) && SameQ(a.Emission, b.Emission)
                && SameQ(new[] { a.Roughness, a.Metallic, a.EmissionStrength }, new[] { b.Roughness, b.Metallic, b.EmissionStrength });
        }
    }
}
