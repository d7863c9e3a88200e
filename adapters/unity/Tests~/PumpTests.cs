// The time-budgeted main-thread pump, on a fake clock, and the
// change tracker that turns artist edits into change events.
using System;
using System.Collections.Generic;
using System.Linq;

namespace VibeSync.Tests
{
    public sealed class FakeChannel : ICommandChannel
    {
        public readonly Queue<string> Inbox = new Queue<string>();
        public readonly List<string> Replies = new List<string>();
        public readonly List<string> Events = new List<string>();
        public int Polls;
        public string Busy;

        public string Poll() { Polls++; return Inbox.Count > 0 ? Inbox.Dequeue() : null; }
        public void Reply(string r) { Replies.Add(r); }
        public void PushEvent(string e) { Events.Add(e); }
        public void SetBusy(string reason) { Busy = reason; }
    }

    public class PumpTests
    {
        long now;

        [Test]
        public void StopsStartingCommandsOnceTheBudgetIsSpent()
        {
            var ch = new FakeChannel();
            for (int i = 0; i < 10; i++) ch.Inbox.Enqueue("c" + i);
            // Every command costs 3 ms; budget 10 ms: 4 commands (3, 6, 9, 12 >= 10).
            var pump = new Pump(ch, c => { now += 3; return "r" + c.Substring(1); }, () => now, 10);
            Assert.Equal(4, pump.Tick(), "first tick");
            Assert.Equal(4, pump.Tick(), "second tick");
            Assert.Equal(2, pump.Tick(), "rest");
            Assert.Equal(0, pump.Tick(), "empty");
            Assert.Equal(string.Join(",", Enumerable.Range(0, 10).Select(i => "r" + i)), string.Join(",", ch.Replies), "every command answered once, in order");
            Assert.Equal(10L, pump.Handled, "handled count");
        }

        [Test]
        public void AlwaysHandlesOneAndAlwaysPolls()
        {
            var ch = new FakeChannel();
            ch.Inbox.Enqueue("slow");
            ch.Inbox.Enqueue("next");
            var pump = new Pump(ch, c => { now += 500; return c; }, () => now, 10);
            Assert.Equal(1, pump.Tick(), "a command longer than the budget still runs");
            Assert.Equal(1, ch.Inbox.Count, "the next one waits for the next tick");
            int polls = ch.Polls;
            pump.Tick();
            pump.Tick();
            Assert.True(ch.Polls >= polls + 2, "every tick polls (the heartbeat's pump signal)");
            Assert.Throws<ArgumentOutOfRangeException>(() => new Pump(ch, c => c, () => now, 0), "zero budget refused");
        }

        [Test]
        public void PumpDrivesTheAdapterEndToEnd()
        {
            var scene = new InMemoryScene();
            var adapter = new Adapter(scene);
            var ch = new FakeChannel();
            ch.Inbox.Enqueue("{\"id\":1,\"kind\":\"apply\",\"tid\":1,\"ops\":[{\"op\":\"create_object\",\"args\":{\"id\":\"a\",\"name\":\"A\",\"kind\":\"empty\"}}]}");
            ch.Inbox.Enqueue("{\"id\":2,\"kind\":\"commit\",\"tid\":1}");
            new Pump(ch, adapter.HandleJson, () => now, 8).Tick();
            Assert.Equal(2, ch.Replies.Count, "two replies");
            Assert.True(ch.Replies.All(r => (bool)J.Obj(Json.Parse(r), "r")["ok"]), string.Join(" ", ch.Replies));
            Assert.Equal(0, adapter.PendingCount, "committed");
        }
    }

    public class ChangeTrackerTests
    {
        readonly InMemoryScene scene = new InMemoryScene();
        readonly ChangeTracker tracker = new ChangeTracker(100);
        readonly Adapter adapter;

        public ChangeTrackerTests()
        {
            adapter = new Adapter(scene) { Tracker = tracker };
            Ok(adapter.HandleJson("{\"id\":1,\"kind\":\"apply\",\"tid\":1,\"ops\":[" +
                "{\"op\":\"create_object\",\"args\":{\"id\":\"a\",\"name\":\"A\",\"kind\":\"empty\"}}," +
                "{\"op\":\"create_object\",\"args\":{\"id\":\"b\",\"name\":\"B\",\"kind\":\"mesh\",\"parent\":\"a\"}}]}"));
        }

        static void Ok(string reply)
        {
            if (!(bool)J.Obj(Json.Parse(reply), "r")["ok"]) throw new AssertionException(reply);
        }

        SceneObject Canon(string id) { return UnityFrame.ObjectToCanonical(scene.Read(id)); }

        List<Dictionary<string, object>> Flush(long t)
        {
            var e = tracker.Flush(t, scene.TrackedIds(), Canon);
            if (e == null) return null;
            var o = J.Obj(Json.Parse(e), "event");
            Assert.Equal("change", (string)o["kind"], "event kind");
            return J.Arr(o["ops"], "ops").Select(x => J.Obj(x, "op")).ToList();
        }

        [Test]
        public void OwnWritesAreNotEchoed()
        {
            tracker.MarkDirty("a", 0);
            tracker.MarkDirty("b", 0);
            Assert.True(Flush(1000) == null, "the adapter's own apply is not an artist edit");
        }

        [Test]
        public void ArtistMoveBecomesSetTransformInCanonicalFrameAfterDebounce()
        {
            scene.Objects["b"].Transform.Translation = new[] { -2.0, 0.0, 0.0 }; // Unity frame
            tracker.MarkDirty("b", 1000);
            Assert.True(Flush(1050) == null, "debounced");
            var ops = Flush(1100);
            Assert.Equal(1, ops.Count, "one op");
            Assert.Equal("set_transform", (string)ops[0]["op"], "op");
            var args = J.Obj(ops[0]["args"], "args");
            Assert.Equal("[2.0,0.0,0.0]", Json.Write(args["translation"]), "canonical translation");
            Assert.True(!args.ContainsKey("rotation") && !args.ContainsKey("scale"), "only what changed");
            Assert.True(Flush(5000) == null, "sent once");
        }

        [Test]
        public void SubQuantumNoiseAndSignFlippedQuaternionsAreNotEdits()
        {
            scene.Objects["b"].Transform.Translation = new[] { 1e-7, 0.0, 0.0 };
            scene.Objects["b"].Transform.Rotation = new[] { 0.0, 0.0, 0.0, -1.0 };
            tracker.MarkDirty("b", 0);
            Assert.True(Flush(1000) == null, "no event");
        }

        [Test]
        public void RenameReparentMaterialAndDeletion()
        {
            scene.Objects["b"].Name = "Bee";
            scene.Objects["b"].Parent = null;
            scene.Objects["b"].Material = Material.Default();
            tracker.MarkDirty("b", 0);
            var ops = Flush(1000);
            Assert.Equal("rename_object,reparent_object,set_material", string.Join(",", ops.Select(o => (string)o["op"])), "ops");
            scene.Objects["b"].Parent = "a";
            tracker.MarkDirty("b", 2000);
            Flush(3000);
            scene.Delete("a");
            tracker.MarkAllDirty(4000);
            ops = Flush(5000);
            Assert.Equal("delete_object", string.Join(",", ops.Select(o => (string)o["op"])), "one delete for the subtree");
            Assert.Equal("a", (string)J.Obj(ops[0]["args"], "a")["id"], "the top-most");
        }

        [Test]
        public void DuplicatedObjectIsCreatedParentFirst()
        {
            scene.Create("a2", "A", "empty", null, null, new Transform());
            scene.Create("b2", "B", "mesh", null, "a2", new Transform());
            tracker.MarkDirty("b2", 0);
            tracker.MarkDirty("a2", 0);
            var ops = Flush(1000);
            Assert.Equal("a2,b2", string.Join(",", ops.Select(o => (string)J.Obj(o["args"], "a")["id"])), "parent first");
            Assert.True(ops.All(o => (string)o["op"] == "create_object"), "creates");
        }
    }

    public class Utf8Tests
    {
        [Test]
        public void NativeStringsRoundTripUtf8()
        {
            var s = "Café 立方体 🧊";
            var bytes = Utf8.ToNative(s);
            Assert.Equal(0, (int)bytes[bytes.Length - 1], "NUL terminated");
            var p = System.Runtime.InteropServices.Marshal.AllocHGlobal(bytes.Length);
            try
            {
                System.Runtime.InteropServices.Marshal.Copy(bytes, 0, p, bytes.Length);
                Assert.Equal(s, Utf8.FromNative(p), "round trip");
            }
            finally { System.Runtime.InteropServices.Marshal.FreeHGlobal(p); }
            Assert.True(Utf8.FromNative(IntPtr.Zero) == null, "NULL is null");
            Assert.True(Utf8.ToNative(null) == null, "null is NULL");
            Assert.Throws<ArgumentException>(() => Utf8.ToNative("a\0b"), "embedded NUL refused");
        }
    }
}
