// The command dispatcher: one host command (docs/adapter-api.md) in, one
// reply out, applied to an IScene. Owns the rules every engine must share
// with the Rust reference (adapters/canonical/src/ops.rs, Scene::apply):
// existence and cycle checks, snapping, the frame conversion, all-or-nothing
// application of a transaction, undo tokens and rollback, freeze and busy.
//
// Undo tokens are self-contained: they carry the canonical state every
// touched object had before the transaction (null for "did not exist"), so a
// rollback works even after a domain reload lost every in-memory table. When
// the engine can revert its own undo group (the Unity glue), that is tried
// first, because it also restores what the canonical model does not track
// (mesh data, components); either way the result is checked against the
// recorded state's hash, and a mismatch is reported, never hidden.
using System;
using System.Collections.Generic;
using System.Linq;

namespace VibeSync
{
    public sealed class Adapter
    {
        /// <summary>How many recent transactions the editor window can show.</summary>
        public const int RecentCapacity = 20;

        readonly IScene scene;
        readonly uint steps;
        /// <summary>tid -> engine undo group of applied, not yet committed transactions (this domain only).</summary>
        readonly Dictionary<long, long> pending = new Dictionary<long, long>();
        /// <summary>tids that were pending when a resync replaced the scene: their tokens may hold what a
        /// later-rolled-back transaction left behind, so a rollback of one is refused (this domain only).</summary>
        readonly HashSet<long> superseded = new HashSet<long>();
        readonly List<string> recent = new List<string>();

        /// <summary>Told about every state the adapter itself wrote, so it is not echoed as an artist edit.</summary>
        public ChangeTracker Tracker;

        public Adapter(IScene scene, uint quantum = StateHash.DefaultQuantum)
        {
            this.scene = scene;
            steps = quantum;
        }

        public bool Frozen { get; private set; }
        public string FreezeReason { get; private set; }

        /// <summary>Non-null while the engine must not mutate (compiling, play mode...). Set by the glue.</summary>
        public string BusyReason { get; set; }

        public IList<string> Recent { get { return recent.AsReadOnly(); } }

        public int PendingCount { get { return pending.Count; } }

        /// <summary>Handle one command given as JSON text; always returns a reply, never throws.</summary>
        public string HandleJson(string commandJson)
        {
            object id = null;
            try
            {
                var cmd = J.Obj(Json.Parse(commandJson), "command");
                id = J.Get(cmd, "id");
                return Json.Write(Handle(cmd));
            }
            catch (JsonException e)
            {
                return Json.Write(Error(id, ErrorCode.Malformed, "command is not valid JSON: " + e.Message));
            }
            catch (AdapterException e)
            {
                return Json.Write(Error(id, e.Code, e.Message));
            }
        }

        public Dictionary<string, object> Handle(Dictionary<string, object> cmd)
        {
            var id = J.Get(cmd, "id");
            try
            {
                if (!(id is long)) throw new AdapterException(ErrorCode.Malformed, "command.id must be an integer");
                var kind = J.Str(cmd, "kind", "command");
                var result = Dispatch(kind, cmd);
                return new Dictionary<string, object> { { "id", id }, { "ok", true }, { "result", result } };
            }
            catch (AdapterException e)
            {
                Note("refused: " + e.Code + ": " + e.Message);
                return Error(id, e.Code, e.Message);
            }
            catch (Exception e)
            {
                // An engine call threw something the core did not expect: say so, do not crash the pump.
                Note("internal error: " + e.Message);
                return Error(id, ErrorCode.Internal, "engine call failed: " + e.GetType().Name + ": " + e.Message);
            }
        }

        static Dictionary<string, object> Error(object id, string code, string message)
        {
            return new Dictionary<string, object>
            {
                { "id", id },
                { "ok", false },
                { "error", new Dictionary<string, object> { { "code", code }, { "message", message } } },
            };
        }

        void Note(string line)
        {
            recent.Add(line);
            if (recent.Count > RecentCapacity) recent.RemoveAt(0);
        }

        Dictionary<string, object> Dispatch(string kind, Dictionary<string, object> cmd)
        {
            switch (kind)
            {
                case "apply": return Apply(cmd);
                case "verify": return Verify(cmd);
                case "rollback": return Rollback(cmd);
                case "commit":
                {
                    long tid = J.Int(cmd, "tid", "commit");
                    // Committing advances reality: refused during PANIC like apply
                    // (vibesync_protocol::CommandBody::is_new_mutation).
                    RefuseIfFrozen("commit of tid " + tid);
                    pending.Remove(tid);
                    superseded.Remove(tid);
                    Note("commit tid " + tid);
                    return new Dictionary<string, object>();
                }
                case "snapshot":
                {
                    var all = ReadAll();
                    return new Dictionary<string, object>
                    {
                        { "hash", StateHash.SceneHash(all, steps) },
                        { "objects", all.Select(o => (object)o.ToJson()).ToList() },
                    };
                }
                case "resync": return Resync(cmd);
                case "freeze":
                    Freeze(J.OptStr(cmd, "reason", "freeze"));
                    return new Dictionary<string, object>();
                case "thaw":
                    Frozen = false;
                    FreezeReason = null;
                    Note("thawed");
                    return new Dictionary<string, object>();
                case "preview":
                    throw new AdapterException(ErrorCode.Unsupported, "preview is not implemented by the Unity adapter yet; use the Blender preview");
                default:
                    throw new AdapterException(ErrorCode.Unsupported, "command kind \"" + kind + "\" is not one this adapter knows (docs/adapter-api.md)");
            }
        }

        /// <summary>
        /// PANIC: refuse new mutations until thaw. Also called by the glue when it
        /// re-attaches after a domain reload to a session the SDK reports frozen.
        /// </summary>
        public void Freeze(string reason)
        {
            Frozen = true;
            FreezeReason = reason ?? "PANIC";
            Note("FROZEN: " + FreezeReason);
        }

        void RefuseIfFrozen(string what)
        {
            if (Frozen)
                throw new AdapterException(ErrorCode.Frozen, what + " refused: the cluster is frozen (" + FreezeReason + "); an operator must resume it");
        }

        void RefuseIfBusy(string what)
        {
            if (BusyReason != null)
                throw new AdapterException(ErrorCode.Busy, what + " refused: Unity is busy (" + BusyReason + "); retry when it is idle");
        }

        // ---- reads ----------------------------------------------------------

        SceneObject ReadCanonical(string id)
        {
            return UnityFrame.ObjectToCanonical(scene.Read(id));
        }

        List<SceneObject> ReadAll()
        {
            var l = new List<SceneObject>();
            foreach (var id in scene.TrackedIds())
            {
                var o = ReadCanonical(id);
                if (o != null) l.Add(o);
            }
            return l;
        }

        string SetHash(IEnumerable<string> ids)
        {
            return StateHash.ObjectSetHash(ids, ReadCanonical, steps);
        }

        Dictionary<string, object> Verify(Dictionary<string, object> cmd)
        {
            var ids = StringList(J.Get(cmd, "ids"), "verify.ids");
            var objs = new List<object>();
            foreach (var id in ids.Distinct())
            {
                var o = ReadCanonical(id);
                if (o != null) objs.Add(o.ToJson());
            }
            return new Dictionary<string, object> { { "hash", SetHash(ids) }, { "objects", objs } };
        }

        static List<string> StringList(object v, string what)
        {
            var arr = J.Arr(v, what);
            var l = new List<string>(arr.Count);
            for (int i = 0; i < arr.Count; i++)
            {
                var s = arr[i] as string;
                if (s == null) throw new AdapterException(ErrorCode.Malformed, what + "[" + i + "] must be a string");
                l.Add(s);
            }
            return l;
        }

        // ---- apply ----------------------------------------------------------

        /// <summary>The state recorded before a transaction: id -> canonical object, or null for absent.</summary>
        sealed class Before
        {
            public readonly List<string> Order = new List<string>();
            public readonly Dictionary<string, SceneObject> State = new Dictionary<string, SceneObject>();

            public void Record(string id, SceneObject canonical)
            {
                if (State.ContainsKey(id)) return;
                Order.Add(id);
                State[id] = canonical;
            }

            public SceneObject Lookup(string id)
            {
                SceneObject o;
                return State.TryGetValue(id, out o) ? o : null;
            }
        }

        Dictionary<string, object> Apply(Dictionary<string, object> cmd)
        {
            long tid = J.Int(cmd, "tid", "apply");
            var opsJson = J.Arr(J.Get(cmd, "ops"), "apply.ops");
            var ops = new List<Op>(opsJson.Count);
            for (int i = 0; i < opsJson.Count; i++) ops.Add(Op.Parse(opsJson[i], "apply.ops[" + i + "]"));
            if (ops.Any(o => !(o is Select)))
            {
                RefuseIfFrozen("apply of tid " + tid);
                RefuseIfBusy("apply of tid " + tid);
            }

            var before = new Before();
            long group = scene.BeginUndoGroup("VibeSync tid " + tid);
            int k = 0;
            try
            {
                for (; k < ops.Count; k++)
                {
                    foreach (var id in TouchedBy(ops[k])) before.Record(id, ReadCanonical(id));
                    ApplyOne(ops[k]);
                }
            }
            catch (Exception e)
            {
                scene.EndUndoGroup(group);
                var ae = e as AdapterException;
                string code = ae != null ? ae.Code : ErrorCode.Internal;
                string msg = "tid " + tid + " op " + k + " (" + ops[k].OpName + "): " + e.Message;
                string restoreError = Restore(group, before);
                Acknowledge(before.Order);
                if (restoreError != null)
                {
                    Note("apply tid " + tid + " FAILED and could not be undone");
                    throw new AdapterException(ErrorCode.Internal, msg + "; undoing ops 0.." + (k - 1) + " also failed: " + restoreError + "; resync this engine");
                }
                Note("apply tid " + tid + " refused at op " + k + ", nothing applied");
                throw new AdapterException(code, msg + " (nothing was applied)");
            }
            scene.EndUndoGroup(group);
            pending[tid] = group;
            Acknowledge(before.Order);
            Note("apply tid " + tid + ": " + ops.Count + " op(s), " + before.Order.Count + " object(s)");

            var tokenBefore = new List<object>();
            foreach (var id in before.Order)
            {
                var o = before.State[id];
                tokenBefore.Add(new Dictionary<string, object> { { "id", id }, { "object", o == null ? null : o.ToJson() } });
            }
            var token = new Dictionary<string, object> { { "v", 1L }, { "tid", tid }, { "group", group }, { "before", tokenBefore } };
            return new Dictionary<string, object>
            {
                { "undo_token", token },
                { "hash", SetHash(before.Order) },
                { "touched", before.Order.Cast<object>().ToList() },
            };
        }

        /// <summary>Ids an op may change, descendants of a deleted object included (Scene::touched_by).</summary>
        IEnumerable<string> TouchedBy(Op op)
        {
            var ids = new List<string>(op.Targets);
            var del = op as DeleteObject;
            if (del != null) ids.AddRange(Descendants(del.Id));
            return ids;
        }

        List<string> Descendants(string id)
        {
            var children = new Dictionary<string, List<string>>();
            foreach (var t in scene.TrackedIds())
            {
                var o = scene.Read(t);
                if (o == null || o.Parent == null) continue;
                List<string> l;
                if (!children.TryGetValue(o.Parent, out l)) children[o.Parent] = l = new List<string>();
                l.Add(t);
            }
            var outIds = new List<string>();
            var frontier = new Stack<string>();
            frontier.Push(id);
            while (frontier.Count > 0)
            {
                List<string> l;
                if (!children.TryGetValue(frontier.Pop(), out l)) continue;
                foreach (var c in l) { outIds.Add(c); frontier.Push(c); }
            }
            return outIds;
        }

        void Need(string id)
        {
            if (scene.Read(id) == null)
                throw new AdapterException(ErrorCode.NoSuchObject, "object `" + id + "` does not exist; read the scene and use an existing id");
        }

        void CheckParent(string id, string parent)
        {
            if (parent == null) return;
            if (scene.Read(parent) == null)
                throw new AdapterException(ErrorCode.NoSuchObject, "parent `" + parent + "` of `" + id + "` does not exist");
            var seen = new HashSet<string>();
            for (string c = parent; c != null; c = scene.Read(c) == null ? null : scene.Read(c).Parent)
            {
                if (c == id || !seen.Add(c))
                    throw new AdapterException(ErrorCode.Cycle, "reparenting `" + id + "` under `" + parent + "` would create a cycle");
            }
        }

        void ApplyOne(Op op)
        {
            var create = op as CreateObject;
            if (create != null)
            {
                if (scene.Read(create.Id) != null)
                    throw new AdapterException(ErrorCode.AlreadyExists, "object `" + create.Id + "` already exists; choose a new id or omit it to let the host assign one");
                CheckParent(create.Id, create.Parent);
                var t = create.Transform == null ? Transform.Identity() : create.Transform.Clone();
                StateHash.SnapTransform(t, steps);
                scene.Create(create.Id, create.Name, create.Kind, create.Primitive, create.Parent, UnityFrame.FromCanonical(t));
                return;
            }
            var del = op as DeleteObject;
            if (del != null) { Need(del.Id); scene.Delete(del.Id); return; }
            var ren = op as RenameObject;
            if (ren != null) { Need(ren.Id); scene.Rename(ren.Id, ren.Name); return; }
            var rep = op as ReparentObject;
            if (rep != null) { Need(rep.Id); CheckParent(rep.Id, rep.Parent); scene.Reparent(rep.Id, rep.Parent); return; }
            var st = op as SetTransform;
            if (st != null)
            {
                Need(st.Id);
                var t = ReadCanonical(st.Id).Transform;
                if (st.Translation != null) t.Translation = (double[])st.Translation.Clone();
                if (st.Rotation != null) t.Rotation = (double[])st.Rotation.Clone();
                if (st.Scale != null) t.Scale = (double[])st.Scale.Clone();
                StateHash.SnapTransform(t, steps);
                scene.SetTransform(st.Id, UnityFrame.FromCanonical(t));
                return;
            }
            var sm = op as SetMaterial;
            if (sm != null)
            {
                Need(sm.Id);
                var cur = scene.Read(sm.Id).Material;
                var m = cur == null ? Material.Default() : cur.Clone();
                if (sm.BaseColor != null) m.BaseColor = (double[])sm.BaseColor.Clone();
                if (sm.Roughness.HasValue) m.Roughness = sm.Roughness.Value;
                if (sm.Metallic.HasValue) m.Metallic = sm.Metallic.Value;
                if (sm.Emission != null) m.Emission = (double[])sm.Emission.Clone();
                if (sm.EmissionStrength.HasValue) m.EmissionStrength = sm.EmissionStrength.Value;
                StateHash.SnapMaterial(m, steps);
                scene.SetMaterial(sm.Id, m);
                return;
            }
            var sel = op as Select;
            if (sel != null)
            {
                foreach (var id in sel.Ids) Need(id);
                scene.Select(sel.Ids, sel.Frame);
                return;
            }
            if (op is RunScript)
                throw new AdapterException(ErrorCode.Unsupported, "run_script is not supported by the Unity adapter (no C# script host); express the change as ops");
            throw new AdapterException(ErrorCode.Internal, "op " + op.OpName + " has no handler");
        }

        // ---- rollback, resync -------------------------------------------------

        Dictionary<string, object> Rollback(Dictionary<string, object> cmd)
        {
            long tid = J.Int(cmd, "tid", "rollback");
            // Rollback only ever restores a state the host already had, so it is
            // allowed while frozen (PANIC rolls back in-flight transactions);
            // it still cannot run while the engine is busy.
            RefuseIfBusy("rollback of tid " + tid);
            if (superseded.Remove(tid))
                throw new AdapterException(ErrorCode.UndoTokenLost, "tid " + tid + " was applied before the engine was resynced; its undo token no longer describes this scene; resync this engine from the host");
            Before before;
            try
            {
                before = ParseToken(J.Get(cmd, "undo_token"), tid);
            }
            catch (AdapterException e)
            {
                throw new AdapterException(ErrorCode.UndoTokenLost, "undo token of tid " + tid + " cannot be used: " + e.Message + "; resync this engine from the host");
            }
            long group;
            if (!pending.TryGetValue(tid, out group)) group = -1; // after a domain reload: restore from the token's state
            string err = Restore(group, before);
            pending.Remove(tid);
            Acknowledge(before.Order);
            if (err != null)
            {
                Note("rollback tid " + tid + " FAILED: " + err);
                throw new AdapterException(ErrorCode.UndoTokenLost, "rollback of tid " + tid + " could not restore the recorded state: " + err + "; resync this engine from the host");
            }
            Note("rollback tid " + tid);
            return new Dictionary<string, object>();
        }

        Before ParseToken(object v, long tid)
        {
            var t = J.Obj(v, "undo_token");
            if (J.Int(t, "v", "undo_token") != 1) throw new AdapterException(ErrorCode.Malformed, "undo_token.v is not 1");
            if (J.Int(t, "tid", "undo_token") != tid) throw new AdapterException(ErrorCode.Malformed, "undo_token.tid is not " + tid);
            var b = new Before();
            var arr = J.Arr(J.Get(t, "before"), "undo_token.before");
            for (int i = 0; i < arr.Count; i++)
            {
                var e = J.Obj(arr[i], "undo_token.before[" + i + "]");
                var id = J.Str(e, "id", "undo_token.before[" + i + "]");
                var o = J.Has(e, "object") ? SceneObject.FromJson(J.Get(e, "object"), "undo_token.before[" + i + "].object") : null;
                if (o != null && o.Id != id) throw new AdapterException(ErrorCode.Malformed, "undo_token.before[" + i + "] names two ids");
                b.Record(id, o);
            }
            return b;
        }

        Dictionary<string, object> Resync(Dictionary<string, object> cmd)
        {
            // Allowed while frozen: reconciling an engine with the host is how PANIC ends.
            RefuseIfBusy("resync");
            var arr = J.Arr(J.Get(cmd, "objects"), "resync.objects");
            var desired = new Before();
            var given = new Dictionary<string, SceneObject>();
            for (int i = 0; i < arr.Count; i++)
            {
                var o = SceneObject.FromJson(arr[i], "resync.objects[" + i + "]");
                if (given.ContainsKey(o.Id)) throw new AdapterException(ErrorCode.Malformed, "resync.objects lists `" + o.Id + "` twice");
                given[o.Id] = o;
            }
            foreach (var o in given.Values) desired.Record(o.Id, o);
            foreach (var id in scene.TrackedIds().ToList()) desired.Record(id, null);
            long group = scene.BeginUndoGroup("VibeSync resync");
            string err;
            try { err = RestoreState(desired); }
            finally { scene.EndUndoGroup(group); }
            Acknowledge(desired.Order);
            if (err == null && SetHash(desired.Order) != StateHash.ObjectSetHash(desired.Order, desired.Lookup, steps))
                err = "the engine's state differs from the requested one after writing it";
            if (err != null) throw new AdapterException(ErrorCode.Internal, "resync failed: " + err);
            // The scene is now the host's: nothing applied before this is undone from its token.
            superseded.UnionWith(pending.Keys);
            pending.Clear();
            Note("resync: " + given.Count + " object(s)");
            return new Dictionary<string, object> { { "hash", StateHash.SceneHash(ReadAll(), steps) } };
        }

        /// <summary>Bring every recorded id back to its recorded state. Returns null on success, else why not.</summary>
        string Restore(long group, Before before)
        {
            string expected = StateHash.ObjectSetHash(before.Order, before.Lookup, steps);
            try
            {
                if (group >= 0 && scene.RevertUndoGroup(group) && SetHash(before.Order) == expected) return null;
                string err = RestoreState(before);
                if (err != null) return err;
                if (SetHash(before.Order) != expected)
                    return "the engine's state of [" + string.Join(", ", before.Order) + "] differs from the recorded one after restoring it";
                return null;
            }
            catch (Exception e)
            {
                return e.GetType().Name + ": " + e.Message;
            }
        }

        /// <summary>
        /// Write the recorded state with engine primitives: detach survivors,
        /// delete what did not exist, create what is missing (at the root),
        /// then set parent, name, transform and material of every survivor.
        /// Every intermediate parent graph is a subgraph of the recorded
        /// (acyclic) one, so no step can create a cycle.
        /// </summary>
        string RestoreState(Before want)
        {
            try
            {
                foreach (var id in want.Order)
                {
                    var cur = scene.Read(id);
                    if (want.State[id] != null && cur != null && cur.Parent != null) scene.Reparent(id, null);
                }
                foreach (var id in want.Order)
                    if (want.State[id] == null && scene.Read(id) != null) scene.Delete(id);
                foreach (var id in want.Order)
                {
                    var w = want.State[id];
                    if (w != null && scene.Read(id) == null)
                        scene.Create(id, w.Name, w.Kind, null, null, UnityFrame.FromCanonical(w.Transform));
                }
                foreach (var id in want.Order)
                {
                    var w = want.State[id];
                    if (w == null) continue;
                    var cur = scene.Read(id);
                    if (cur.Kind != w.Kind)
                        return "object `" + id + "` is a " + cur.Kind + " but was a " + w.Kind + "; the kind cannot be changed in place";
                    if (w.Parent != null && scene.Read(w.Parent) == null)
                        return "parent `" + w.Parent + "` of `" + id + "` no longer exists";
                    if (cur.Parent != w.Parent) scene.Reparent(id, w.Parent);
                    if (cur.Name != w.Name) scene.Rename(id, w.Name);
                    scene.SetTransform(id, UnityFrame.FromCanonical(w.Transform));
                    if (w.Material != null) scene.SetMaterial(id, w.Material.Clone());
                    else if (cur.Material != null) scene.RemoveMaterial(id);
                }
                return null;
            }
            catch (Exception e)
            {
                return e.GetType().Name + ": " + e.Message;
            }
        }

        void Acknowledge(IEnumerable<string> ids)
        {
            if (Tracker != null) Tracker.Acknowledge(ids, ReadCanonical);
        }
    }
}
