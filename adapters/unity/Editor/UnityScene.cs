// IScene over GameObjects carrying a VibeSyncId. Values cross in Unity's own
// frame (the core converts); every write goes through Undo so a transaction
// is one undo step the artist can see and undo. Kept thin: no checks here,
// the core has done them.
using System;
using System.Collections.Generic;
using UnityEditor;
using UnityEngine;
using UObject = UnityEngine.Object;
using UTransform = UnityEngine.Transform;
using UMaterial = UnityEngine.Material;

namespace VibeSync.Unity
{
    public sealed class UnityScene : IScene
    {
        const string Label = "VibeSync";
        long lastGroup = -1;
        int groupAfterLast = -1;

        static GameObject Go(string id)
        {
            var c = VibeSyncId.Find(id);
            if (c == null) throw new AdapterException(ErrorCode.NoSuchObject, "object `" + id + "` is not in the loaded scenes");
            return c.gameObject;
        }

        public IEnumerable<string> TrackedIds()
        {
            var ids = new List<string>();
            foreach (var kv in VibeSyncId.Live) if (kv.Value != null) ids.Add(kv.Key);
            return ids;
        }

        public SceneObject Read(string id)
        {
            var c = VibeSyncId.Find(id);
            if (c == null) return null;
            var t = c.transform;
            var parent = t.parent == null ? null : t.parent.GetComponent<VibeSyncId>();
            var p = t.localPosition;
            var r = t.localRotation;
            var s = t.localScale;
            return new SceneObject
            {
                Id = id,
                Name = c.gameObject.name,
                Kind = c.Kind,
                Parent = parent == null ? null : parent.Id,
                Transform = new VibeSync.Transform
                {
                    Translation = new double[] { p.x, p.y, p.z },
                    Rotation = new double[] { r.x, r.y, r.z, r.w },
                    Scale = new double[] { s.x, s.y, s.z },
                },
                Material = c.HasManagedMaterial ? MaterialProps.FromValues(c.ManagedMaterial) : null,
            };
        }

        public void Create(string id, string name, string kind, string primitive, string parent, VibeSync.Transform local)
        {
            GameObject go;
            switch (kind)
            {
                case ObjectKinds.Mesh: go = GameObject.CreatePrimitive(Primitive(primitive)); break;
                case ObjectKinds.Camera: go = new GameObject(name, typeof(Camera)); break;
                case ObjectKinds.Light:
                    go = new GameObject(name, typeof(Light));
                    go.GetComponent<Light>().type = LightKind(primitive);
                    break;
                default: go = new GameObject(name); break;
            }
            go.name = name;
            if (parent != null) go.transform.SetParent(Go(parent).transform, false);
            Write(go.transform, local);
            go.AddComponent<VibeSyncId>().Assign(id, kind);
            Undo.RegisterCreatedObjectUndo(go, Label + " create " + id);
        }

        static PrimitiveType Primitive(string p)
        {
            switch (p)
            {
                case "uv_sphere": return PrimitiveType.Sphere;
                case "plane": return PrimitiveType.Plane;
                case "cylinder": return PrimitiveType.Cylinder;
                // Unity has no built-in cone or torus mesh: a cube stands in (the canonical state does not track meshes).
                default: return PrimitiveType.Cube;
            }
        }

        static LightType LightKind(string p)
        {
            switch (p)
            {
                case "sun": return LightType.Directional;
                case "spot": return LightType.Spot;
#if UNITY_2023_1_OR_NEWER
                case "area": return LightType.Rectangle;
#else
                case "area": return LightType.Area;
#endif
                default: return LightType.Point;
            }
        }

        public void Delete(string id) { Undo.DestroyObjectImmediate(Go(id)); }

        public void Rename(string id, string name)
        {
            var go = Go(id);
            Undo.RecordObject(go, Label + " rename");
            go.name = name;
        }

        public void Reparent(string id, string parent)
        {
            UTransform p = parent == null ? null : Go(parent).transform;
            var t = Go(id).transform;
            Vector3 pos = t.localPosition, scale = t.localScale;
            Quaternion rot = t.localRotation;
            // The (transform, parent, name) overload exists in every supported Unity and keeps the
            // WORLD pose; canonical reparenting keeps the LOCAL one, so the local pose is written back.
            Undo.SetTransformParent(t, p, Label + " reparent");
            Undo.RecordObject(t, Label + " reparent");
            t.localPosition = pos;
            t.localRotation = rot;
            t.localScale = scale;
        }

        public void SetTransform(string id, VibeSync.Transform local)
        {
            var t = Go(id).transform;
            Undo.RecordObject(t, Label + " transform");
            Write(t, local);
        }

        static void Write(UTransform t, VibeSync.Transform v)
        {
            t.localPosition = new Vector3((float)v.Translation[0], (float)v.Translation[1], (float)v.Translation[2]);
            t.localRotation = new Quaternion((float)v.Rotation[0], (float)v.Rotation[1], (float)v.Rotation[2], (float)v.Rotation[3]);
            t.localScale = new Vector3((float)v.Scale[0], (float)v.Scale[1], (float)v.Scale[2]);
        }

        public void SetMaterial(string id, VibeSync.Material m)
        {
            var go = Go(id);
            var c = go.GetComponent<VibeSyncId>();
            var renderer = go.GetComponent<Renderer>();
            Undo.RecordObject(c, Label + " material");
            UMaterial original = renderer == null ? null : renderer.sharedMaterial;
            if (renderer != null)
            {
                UMaterial managed = c.OwnsManagedMaterial ? renderer.sharedMaterial : null;
                if (managed == null)
                {
                    // A private copy, so a shared asset is never changed.
                    managed = original != null ? new UMaterial(original) : new UMaterial(LitShader());
                    managed.name = go.name + " (VibeSync)";
                    Undo.RegisterCreatedObjectUndo(managed, Label + " material");
                    Undo.RecordObject(renderer, Label + " material");
                    renderer.sharedMaterial = managed;
                }
                Undo.RecordObject(managed, Label + " material");
                MaterialProps.Apply(managed, m);
            }
            c.SetManagedMaterial(MaterialProps.ToValues(m), original);
        }

        /// <summary>The pipeline's lit shader for a renderer that had no material.</summary>
        static Shader LitShader()
        {
            foreach (var name in new[] { "Universal Render Pipeline/Lit", "HDRP/Lit", "Standard" })
            {
                var s = Shader.Find(name);
                if (s != null) return s;
            }
            throw new AdapterException(ErrorCode.Unsupported, "no lit shader (URP, HDRP or Standard) is available for a new material");
        }

        public void RemoveMaterial(string id)
        {
            var go = Go(id);
            var c = go.GetComponent<VibeSyncId>();
            var renderer = go.GetComponent<Renderer>();
            Undo.RecordObject(c, Label + " material");
            if (renderer != null && c.OriginalMaterial != null)
            {
                Undo.RecordObject(renderer, Label + " material");
                renderer.sharedMaterial = c.OriginalMaterial;
            }
            c.ClearManagedMaterial();
        }

        public void Select(IList<string> ids, bool frame)
        {
            var objs = new List<UObject>();
            foreach (var id in ids) objs.Add(Go(id));
            Selection.objects = objs.ToArray();
            if (frame && SceneView.lastActiveSceneView != null) SceneView.lastActiveSceneView.FrameSelected();
        }

        public long BeginUndoGroup(string label)
        {
            Undo.IncrementCurrentGroup();
            Undo.SetCurrentGroupName(label);
            return Undo.GetCurrentGroup();
        }

        public void EndUndoGroup(long group)
        {
            Undo.CollapseUndoOperations((int)group);
            Undo.IncrementCurrentGroup();
            lastGroup = group;
            groupAfterLast = Undo.GetCurrentGroup();
        }

        /// <summary>
        /// Only the newest group, and only if no undo step was recorded after
        /// it; otherwise the core restores the recorded state (and checks it).
        /// </summary>
        public bool RevertUndoGroup(long group)
        {
            if (group != lastGroup || Undo.GetCurrentGroup() != groupAfterLast) return false;
            Undo.RevertAllDownToGroup((int)group);
            lastGroup = -1;
            return true;
        }
    }
}
