// The dispatcher against an in-memory scene: the semantics of ops.rs, the
// all-or-nothing apply, undo tokens and rollback exactness, freeze and busy.
using System;
using System.Collections.Generic;
using System.Linq;

namespace VibeSync.Tests
{
    public class AdapterTests
    {
        readonly InMemoryScene scene = new InMemoryScene();
        readonly Adapter adapter;
        long nextId = 1;

        public AdapterTests() { adapter = new Adapter(scene); }

        Dictionary<string, object> Send(string kind, string fieldsJson)
        {
            var text = "{\"id\":" + (nextId++) + ",\"kind\":\"" + kind + "\"" + (fieldsJson.Length > 0 ? "," + fieldsJson : "") + "}";
            // Through text both ways, as over the SDK.
            return J.Obj(Json.Parse(adapter.HandleJson(text)), "reply");
        }

        static Dictionary<string, object> Ok(Dictionary<string, object> reply)
        {
            if (!(bool)reply["ok"]) throw new AssertionException("expected ok, got " + Json.Write(reply));
            return J.Obj(reply["result"], "result");
        }

        static string Code(Dictionary<string, object> reply)
        {
            Assert.Equal(false, (bool)reply["ok"], "expected an error: " + Json.Write(reply));
            return (string)J.Obj(reply["error"], "error")["code"];
        }

        Dictionary<string, object> Apply(long tid, params string[] ops)
        {
            return Send("apply", "\"tid\":" + tid + ",\"ops\":[" + string.Join(",", ops) + "]");
        }

        static string Create(string id, string parent = null, string kind = "mesh")
        {
            return "{\"op\":\"create_object\",\"args\":{\"id\":\"" + id + "\",\"name\":\"" + id.ToUpperInvariant() + "\",\"kind\":\"" + kind + "\""
                + (parent != null ? ",\"parent\":\"" + parent + "\"" : "") + "}}";
        }

        [Test]
        public void CreateHashMatchesTheSharedVector()
        {
            // docs/test-vectors case one_cube_identity: a scene of one identity cube is the same
            // bytes as the object set {obj-1} with that cube present.
            var r = Ok(Apply(1, "{\"op\":\"create_object\",\"args\":{\"id\":\"obj-1\",\"name\":\"Cube\",\"kind\":\"mesh\",\"primitive\":\"cube\"}}"));
            Assert.Equal("88c78b2fe1e14ce24870fb62d1ddb5daae2f4690a889640966c6d336020a4311", (string)r["hash"], "apply hash");
            Assert.Equal("obj-1", (string)J.Arr(r["touched"], "touched")[0], "touched");
        }

        [Test]
        public void EngineReceivesUnityFrameAndSnappedValues()
        {
            Ok(Apply(1, Create("a")));
            Ok(Apply(2, "{\"op\":\"set_transform\",\"args\":{\"id\":\"a\",\"translation\":[1,2,3.1234567],\"rotation\":[0,0,0,2]}}"));
            var t = scene.Objects["a"].Transform;
            Assert.Equal((double)(float)-1.0, t.Translation[0], "x mirrored");
            Assert.Equal((double)(float)3.12346, t.Translation[2], "snapped to 1e-5");
            Assert.Equal(1.0, t.Rotation[3], "rotation normalised");
            var v = Ok(Send("verify", "\"tid\":2,\"ids\":[\"a\"]"));
            var back = SceneObject.FromJson(J.Arr(v["objects"], "objects")[0], "obj");
            Assert.Near(1.0, back.Transform.Translation[0], 1e-6, "read back in canonical frame");
        }

        [Test]
        public void OpErrorsUseTheDocumentedCodes()
        {
            Ok(Apply(1, Create("a"), Create("b", "a")));
            Assert.Equal("already-exists", Code(Apply(2, Create("a"))), "duplicate id");
            Assert.Equal("no-such-object", Code(Apply(3, "{\"op\":\"delete_object\",\"args\":{\"id\":\"zz\"}}")), "missing object");
            Assert.Equal("no-such-object", Code(Apply(4, Create("c", "zz"))), "missing parent");
            Assert.Equal("cycle", Code(Apply(5, "{\"op\":\"reparent_object\",\"args\":{\"id\":\"a\",\"parent\":\"b\"}}")), "cycle");
            Assert.Equal("cycle", Code(Apply(6, "{\"op\":\"reparent_object\",\"args\":{\"id\":\"a\",\"parent\":\"a\"}}")), "self parent");
            Assert.Equal("malformed", Code(Apply(7, "{\"op\":\"create_object\",\"args\":{\"name\":\"x\",\"kind\":\"mesh\"}}")), "missing id");
            Assert.Equal("malformed", Code(Apply(8, "{\"op\":\"set_transform\",\"args\":{\"id\":\"a\",\"translation\":[1,2]}}")), "short vector");
            Assert.Equal("malformed", Code(Apply(9, "{\"op\":\"explode\",\"args\":{}}")), "unknown op");
            Assert.Equal("malformed", Code(Apply(10, Create("q", null, "sphere"))), "unknown kind");
            Assert.Equal("unsupported", Code(Apply(11, "{\"op\":\"run_script\",\"args\":{\"language\":\"csharp\",\"code\":\"x\"}}")), "run_script");
            Assert.Equal("unsupported", Code(Send("preview", "\"width\":1,\"height\":1")), "preview");
            Assert.Equal("unsupported", Code(Send("dance", "")), "unknown command");
            Assert.Equal("malformed", Code(J.Obj(Json.Parse(adapter.HandleJson("{\"kind\":\"snapshot\"}")), "r")), "command without id");
            Assert.Equal("malformed", Code(J.Obj(Json.Parse(adapter.HandleJson("not json")), "r")), "not JSON");
            var msg = (string)J.Obj(Apply(12, "{\"op\":\"delete_object\",\"args\":{\"id\":\"zz\"}}")["error"], "e")["message"];
            Assert.True(msg.Contains("tid 12 op 0 (delete_object)") && msg.Contains("`zz`"), "message names tid, op and object: " + msg);
        }

        [Test]
        public void DeleteTakesDescendantsAndTouchesThem()
        {
            Ok(Apply(1, Create("a"), Create("b", "a"), Create("c", "b"), Create("d")));
            var r = Ok(Apply(2, "{\"op\":\"delete_object\",\"args\":{\"id\":\"a\"}}"));
            var touched = J.Arr(r["touched"], "touched").Cast<string>().OrderBy(x => x).ToArray();
            Assert.Equal("a,b,c", string.Join(",", touched), "touched includes descendants");
            Assert.Equal("d", string.Join(",", scene.Objects.Keys), "only d remains");
            var absent = StateHash.ObjectSetHash(new[] { "a", "b", "c" }, id => null, StateHash.DefaultQuantum);
            Assert.Equal(absent, (string)r["hash"], "hash of three absent ids");
        }

        [Test]
        public void FailingOpRestoresEarlierOpsExactly()
        {
            Ok(Apply(1, Create("a"), Create("b", "a")));
            Ok(Apply(2, "{\"op\":\"set_material\",\"args\":{\"id\":\"b\",\"roughness\":0.3}}",
                "{\"op\":\"set_transform\",\"args\":{\"id\":\"a\",\"translation\":[0.1,0.2,0.3],\"rotation\":[0,0.38268343,0,0.9238795]}}"));
            var before = scene.Dump();
            // op 0 renames, op 1 deletes a subtree, op 2 creates, op 3 fails.
            var reply = Apply(3,
                "{\"op\":\"rename_object\",\"args\":{\"id\":\"a\",\"name\":\"Renamed\"}}",
                "{\"op\":\"delete_object\",\"args\":{\"id\":\"a\"}}",
                Create("n"),
                "{\"op\":\"set_material\",\"args\":{\"id\":\"missing\",\"metallic\":1}}");
            Assert.Equal("no-such-object", Code(reply), "fails on op 3");
            Assert.Equal(before, scene.Dump(), "engine state bit-identical to before the transaction");
            Assert.Equal(0, scene.NativeReverts, "restored from recorded state (no native undo here)");
        }

        [Test]
        public void FailingEngineCallIsInternalAndStillAllOrNothing()
        {
            Ok(Apply(1, Create("a")));
            var before = scene.Dump();
            scene.FailOnWrite = "x";
            var reply = Apply(2, "{\"op\":\"rename_object\",\"args\":{\"id\":\"a\",\"name\":\"Z\"}}", Create("x"));
            Assert.Equal("internal", Code(reply), "engine exception");
            Assert.Equal(before, scene.Dump(), "rename undone");
        }

        [Test]
        public void RollbackWithTheTokenRestoresExactly()
        {
            Ok(Apply(1, Create("a"), Create("b", "a"), Create("c")));
            Ok(Apply(2, "{\"op\":\"set_material\",\"args\":{\"id\":\"b\",\"base_color\":[0.1,0.2,0.3,1]}}"));
            var before = scene.Dump();
            var beforeHash = Ok(Send("snapshot", ""))["hash"];
            var r = Ok(Apply(3,
                "{\"op\":\"set_transform\",\"args\":{\"id\":\"b\",\"scale\":[2,2,2]}}",
                "{\"op\":\"set_material\",\"args\":{\"id\":\"c\",\"metallic\":1}}",
                "{\"op\":\"reparent_object\",\"args\":{\"id\":\"c\",\"parent\":\"b\"}}",
                "{\"op\":\"delete_object\",\"args\":{\"id\":\"a\"}}",
                Create("d"), Create("e", "d")));
            Assert.True(scene.Dump() != before, "the transaction changed the scene");
            var token = Json.Write(r["undo_token"]);
            Ok(Send("rollback", "\"tid\":3,\"undo_token\":" + token));
            Assert.Equal(before, scene.Dump(), "bit-identical after rollback");
            Assert.Equal((string)beforeHash, (string)Ok(Send("snapshot", ""))["hash"], "snapshot hash restored");
            Assert.Equal(2, adapter.PendingCount, "tid 3 is no longer pending, the uncommitted tids 1 and 2 are");
        }

        [Test]
        public void RollbackPrefersTheEngineUndoGroup()
        {
            scene.NativeUndo = true;
            Ok(Apply(1, Create("a")));
            var before = scene.Dump();
            var r = Ok(Apply(2, "{\"op\":\"delete_object\",\"args\":{\"id\":\"a\"}}"));
            Ok(Send("rollback", "\"tid\":2,\"undo_token\":" + Json.Write(r["undo_token"])));
            Assert.Equal(1, scene.NativeReverts, "native undo used");
            Assert.Equal(before, scene.Dump(), "restored");
        }

        [Test]
        public void RollbackAfterADomainReloadUsesTheTokenAlone()
        {
            scene.NativeUndo = true;
            Ok(Apply(1, Create("a")));
            var before = scene.Dump();
            var r = Ok(Apply(2, "{\"op\":\"rename_object\",\"args\":{\"id\":\"a\",\"name\":\"New\"}}"));
            var reloaded = new Adapter(scene); // all in-memory tables gone
            var reply = J.Obj(Json.Parse(reloaded.HandleJson("{\"id\":9,\"kind\":\"rollback\",\"tid\":2,\"undo_token\":" + Json.Write(r["undo_token"]) + "}")), "r");
            Ok(reply);
            Assert.Equal(0, scene.NativeReverts, "no stale engine group trusted after reload");
            Assert.Equal(before, scene.Dump(), "restored");
        }

        [Test]
        public void RollbackAfterAResyncIsRefusedNotReplayed()
        {
            // A resync since the apply replaced the scene, so the token may hold values of a change the
            // host rolled back (the reference engine's case, simulator seed 387): refused, and the
            // resynced scene stands until the host resyncs again.
            Ok(Apply(1, Create("a")));
            Ok(Send("commit", "\"tid\":1"));
            var r = Ok(Apply(2, "{\"op\":\"rename_object\",\"args\":{\"id\":\"a\",\"name\":\"New\"}}"));
            var snap = Ok(Send("snapshot", ""));
            Ok(Send("resync", "\"objects\":" + Json.Write(snap["objects"])));
            var resynced = scene.Dump();
            var reply = Send("rollback", "\"tid\":2,\"undo_token\":" + Json.Write(r["undo_token"]));
            Assert.Equal("undo-token-lost", Code(reply), "rollback after a resync");
            Assert.Equal(resynced, scene.Dump(), "the resynced scene stands");
            Assert.Equal(0, adapter.PendingCount, "nothing applied before the resync is pending");
        }

        [Test]
        public void StaleNativeUndoFallsBackToRecordedState()
        {
            scene.NativeUndo = true;
            Ok(Apply(1, Create("a")));
            var before = scene.Dump();
            var r1 = Ok(Apply(2, "{\"op\":\"rename_object\",\"args\":{\"id\":\"a\",\"name\":\"One\"}}"));
            Ok(Apply(3, Create("z")));
            // tid 2's group is no longer the newest: the engine refuses, the core restores a alone.
            Ok(Send("rollback", "\"tid\":2,\"undo_token\":" + Json.Write(r1["undo_token"])));
            Assert.Equal(0, scene.NativeReverts, "engine could not revert a buried group");
            Assert.Equal("A", scene.Objects["a"].Name, "a restored");
            Assert.True(scene.Objects.ContainsKey("z"), "later transaction untouched");
            Assert.True(before != scene.Dump(), "z still there");
        }

        [Test]
        public void BadTokensAreUndoTokenLost()
        {
            Ok(Apply(1, Create("a")));
            Assert.Equal("undo-token-lost", Code(Send("rollback", "\"tid\":1,\"undo_token\":{\"v\":1,\"tid\":99,\"before\":[]}")), "tid mismatch");
            Assert.Equal("undo-token-lost", Code(Send("rollback", "\"tid\":1,\"undo_token\":\"garbage\"")), "not an object");
            Assert.Equal("undo-token-lost", Code(Send("rollback", "\"tid\":1")), "missing");
        }

        [Test]
        public void FrozenRefusesNewMutationsButAllowsRollbackResyncAndReads()
        {
            Ok(Apply(1, Create("a")));
            var r = Ok(Apply(2, "{\"op\":\"rename_object\",\"args\":{\"id\":\"a\",\"name\":\"X\"}}"));
            Ok(Send("freeze", "\"reason\":\"engine blender stalled\""));
            Assert.True(adapter.Frozen, "frozen");
            Assert.Equal("frozen", Code(Apply(3, Create("b"))), "apply refused");
            Assert.Equal("frozen", Code(Send("commit", "\"tid\":1")), "commit refused");
            Ok(Apply(4, "{\"op\":\"select\",\"args\":{\"ids\":[\"a\"]}}"));
            Ok(Send("snapshot", ""));
            Ok(Send("rollback", "\"tid\":2,\"undo_token\":" + Json.Write(r["undo_token"])));
            Assert.Equal("A", scene.Objects["a"].Name, "rolled back while frozen");
            var a = Json.Write(UnityFrame.ObjectToCanonical(scene.Read("a")).ToJson());
            Ok(Send("resync", "\"objects\":[" + a + "]"));
            Ok(Send("thaw", ""));
            Ok(Send("commit", "\"tid\":1"));
            Ok(Apply(5, Create("b")));
        }

        [Test]
        public void BusyRefusesMutation()
        {
            adapter.BusyReason = "compiling scripts";
            var reply = Apply(1, Create("a"));
            Assert.Equal("busy", Code(reply), "busy");
            Assert.True(((string)J.Obj(reply["error"], "e")["message"]).Contains("compiling scripts"), "says why");
            Assert.Equal(0, scene.Objects.Count, "nothing created");
            adapter.BusyReason = null;
            Ok(Apply(2, Create("a")));
        }

        [Test]
        public void VerifyHashesPresentAndAbsentIds()
        {
            Ok(Apply(1, Create("a")));
            var v = Ok(Send("verify", "\"tid\":1,\"ids\":[\"a\",\"gone\"]"));
            Assert.Equal(1, J.Arr(v["objects"], "objects").Count, "one present object");
            var a = UnityFrame.ObjectToCanonical(scene.Read("a"));
            Assert.Equal(StateHash.ObjectSetHash(new[] { "a", "gone" }, id => id == "a" ? a : null, StateHash.DefaultQuantum), (string)v["hash"], "hash");
        }

        [Test]
        public void ResyncMakesTheStateExactlyThat()
        {
            Ok(Apply(1, Create("a"), Create("b", "a"), Create("old")));
            var target = new List<SceneObject>
            {
                new SceneObject { Id = "b", Name = "B2", Kind = "mesh", Parent = null, Material = Material.Default() },
                new SceneObject { Id = "n", Name = "New", Kind = "light", Parent = "b" },
            };
            target[0].Transform.Translation = new[] { 1.0, 2.0, 3.0 };
            var objs = "[" + string.Join(",", target.Select(o => Json.Write(o.ToJson()))) + "]";
            var r = Ok(Send("resync", "\"objects\":" + objs));
            Assert.Equal(StateHash.SceneHash(target, StateHash.DefaultQuantum), (string)r["hash"], "hash of the requested state");
            Assert.Equal("b,n", string.Join(",", scene.Objects.Keys.OrderBy(k => k)), "exactly the requested ids");
            Assert.Equal(-1.0, scene.Objects["b"].Transform.Translation[0], "stored in the Unity frame");
        }

        [Test]
        public void RecentTransactionsAreBounded()
        {
            for (int i = 0; i < Adapter.RecentCapacity + 5; i++) Ok(Apply(i + 1, Create("o" + i)));
            Assert.Equal(Adapter.RecentCapacity, adapter.Recent.Count, "bounded");
            Assert.True(adapter.Recent.Last().StartsWith("apply tid " + (Adapter.RecentCapacity + 5)), adapter.Recent.Last());
        }
    }
}
