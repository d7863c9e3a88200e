// What the core needs from an engine: a small set of primitive reads and
// writes on tracked objects, all in the ENGINE's frame (for Unity: LH, +Y up,
// local to the parent). The core does every check (existence, cycles, ids),
// the frame conversion, snapping and rollback; an implementation only moves
// values in and out of the engine. The Unity glue implements it over
// GameObjects; the tests implement it in memory.
using System.Collections.Generic;

namespace VibeSync
{
    public interface IScene
    {
        /// <summary>Ids of every tracked object.</summary>
        IEnumerable<string> TrackedIds();

        /// <summary>The object in the engine frame, or null when it is not tracked (absent).</summary>
        SceneObject Read(string id);

        /// <summary>Create a tracked object; the parent (if any) exists, the id does not.</summary>
        void Create(string id, string name, string kind, string primitive, string parent, Transform local);

        /// <summary>Delete an object and all its descendants.</summary>
        void Delete(string id);

        void Rename(string id, string name);

        /// <summary>Reparent keeping the LOCAL transform (glTF node semantics); null parent = root.</summary>
        void Reparent(string id, string parent);

        void SetTransform(string id, Transform local);

        /// <summary>Write every material property (creating the managed material if needed).</summary>
        void SetMaterial(string id, Material material);

        /// <summary>Drop the managed material (only rollback and resync need this).</summary>
        void RemoveMaterial(string id);

        void Select(IList<string> ids, bool frame);

        /// <summary>Open an engine undo group for one transaction; returns its handle (or -1 if none).</summary>
        long BeginUndoGroup(string label);

        /// <summary>Close (collapse) the group so the transaction is one engine undo step.</summary>
        void EndUndoGroup(long group);

        /// <summary>
        /// Revert everything done since <paramref name="group"/> began, if the
        /// engine can (it is still the newest undo step). False when it cannot;
        /// the core then restores the recorded state itself.
        /// </summary>
        bool RevertUndoGroup(long group);
    }
}
