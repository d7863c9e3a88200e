// The identity of a tracked GameObject: its stable VibeSync id (plus the
// canonical kind and the managed material values), serialized on the object
// so it survives domain reloads, scene save/load and prefab instancing. A
// duplicate (Ctrl+D, copy-paste, a second prefab instance carrying the same
// serialized id) is given a fresh id when it is enabled, so one id never
// names two objects. A VibeSyncId the artist adds by hand (Add Component >
// VibeSync > VibeSync Id) starts tracking the object under a fresh id. Lives
// in its own runtime assembly because a component
// saved in a scene cannot come from an editor-only assembly.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace VibeSync.Unity
{
    [DisallowMultipleComponent]
    [ExecuteAlways]
    [AddComponentMenu("VibeSync/VibeSync Id")]
    public sealed class VibeSyncId : MonoBehaviour
    {
        [SerializeField] string id = "";
        [SerializeField] string kind = "empty";
        [SerializeField] bool hasManagedMaterial;
        [SerializeField] double[] managedMaterial = new double[0];
        [SerializeField] UnityEngine.Material originalMaterial;
        /// <summary>Id of the object whose private copy the renderer's material is (a duplicate shares it until it writes).</summary>
        [SerializeField] string materialOwner = "";

        static readonly Dictionary<string, VibeSyncId> live = new Dictionary<string, VibeSyncId>();

        /// <summary>Raised when an object got a fresh id: (component, the id it had copied, or "" when it had none).</summary>
        public static event Action<VibeSyncId, string> IdAssigned;

        public string Id { get { return id; } }

        public string Kind { get { return kind; } }

        /// <summary>Every enabled tracked object in the loaded scenes.</summary>
        public static IEnumerable<KeyValuePair<string, VibeSyncId>> Live { get { return live; } }

        public static VibeSyncId Find(string objectId)
        {
            VibeSyncId c;
            return live.TryGetValue(objectId, out c) && c != null ? c : null;
        }

        /// <summary>Give a freshly created object its identity (the adapter creates it with a host id).</summary>
        public void Assign(string objectId, string objectKind)
        {
            Release();
            id = objectId;
            kind = objectKind;
            Claim();
        }

        public bool HasManagedMaterial { get { return hasManagedMaterial; } }

        /// <summary>The managed material values as the adapter wrote them (canonical, linear).</summary>
        public double[] ManagedMaterial { get { return managedMaterial; } }

        public UnityEngine.Material OriginalMaterial { get { return originalMaterial; } }

        /// <summary>True when the renderer's material is this object's own private copy (not a duplicate's inheritance).</summary>
        public bool OwnsManagedMaterial { get { return hasManagedMaterial && materialOwner == id; } }

        /// <param name="original">the renderer's material before the first managed write (kept for RemoveMaterial)</param>
        public void SetManagedMaterial(double[] values, UnityEngine.Material original)
        {
            if (!hasManagedMaterial) originalMaterial = original;
            hasManagedMaterial = true;
            materialOwner = id;
            managedMaterial = (double[])values.Clone();
        }

        public void ClearManagedMaterial()
        {
            hasManagedMaterial = false;
            managedMaterial = new double[0];
            originalMaterial = null;
            materialOwner = "";
        }

        void OnEnable() { Claim(); }

        void OnDisable() { Release(); }

        void Claim()
        {
            VibeSyncId other;
            if (string.IsNullOrEmpty(id))
            {
                id = NewId();
                kind = GuessKind();
                live[id] = this;
                if (IdAssigned != null) IdAssigned(this, "");
                return;
            }
            if (live.TryGetValue(id, out other) && other != null && other != this)
            {
                string copied = id;
                id = NewId();
                live[id] = this;
                if (IdAssigned != null) IdAssigned(this, copied);
                return;
            }
            live[id] = this;
        }

        string GuessKind()
        {
            if (GetComponent<Light>() != null) return "light";
            if (GetComponent<Camera>() != null) return "camera";
            if (GetComponent<MeshFilter>() != null) return "mesh";
            return "empty";
        }

        void Release()
        {
            VibeSyncId owner;
            if (!string.IsNullOrEmpty(id) && live.TryGetValue(id, out owner) && owner == this) live.Remove(id);
        }

        /// <summary>An id for an object the artist made in Unity (the host's are "obj-n").</summary>
        public static string NewId()
        {
            return "unity-" + Guid.NewGuid().ToString("N");
        }
    }
}
