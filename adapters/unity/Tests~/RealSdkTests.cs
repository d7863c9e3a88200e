// Against the REAL adapter SDK library (adapters/sdk), with no host running:
// run by Tests~/run.sh only when VIBESYNC_SDK_LIB names the built library.
// Proves that the binding links to the real exports and that every JSON
// shape this core sends (replies, change events, busy) is accepted by the
// SDK's own serde types, which the fake cannot prove. The session points at
// a loopback port where nothing listens, so it stays "connecting".
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace VibeSync.Tests
{
    [RealSdk]
    public class RealSdkTests
    {
        static string PairingFile(string engine)
        {
            var dir = Path.Combine(Path.GetTempPath(), "vibesync-unity-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, "pairing.json");
            File.WriteAllText(path, Json.Write(new Dictionary<string, object>
            {
                { "version", 1L }, { "endpoint", "127.0.0.1:9" }, { "server_name", "vibesync-host" },
                { "cert_sha256", string.Concat(Enumerable.Repeat("ab", 32)) }, { "engine", engine }, { "kind", "unity" },
                { "bootstrap_secret", string.Concat(Enumerable.Repeat("cd", 32)) },
            }));
            return path;
        }

        [Test]
        public void OpenFindStatusBusyAndClose()
        {
            var e = Assert.Throws<SdkException>(() => SdkSession.Open("/nonexistent/pairing.json", "unity-real", "unity"), "missing pairing file");
            Assert.True(e.Message.Contains("pairing"), "vs_last_error surfaced: " + e.Message);
            var s = SdkSession.Open(PairingFile("unity-real"), "unity-real", "unity");
            try
            {
                Assert.Equal(s.Handle, SdkSession.Find("unity-real").Handle, "find returns the open session");
                Assert.Equal(s.Handle, SdkSession.Open("ignored", "unity-real", "unity").Handle, "re-open returns it too (domain reload)");
                Assert.True(s.Poll() == null, "no host, no command");
                s.SetBusy("compiling scripts");
                s.SetBusy(null);
                var st = s.Status();
                Assert.Equal("unity-real", (string)st["engine"], "status engine");
                Assert.Equal("connecting", (string)st["state"], "status state");
            }
            finally { s.Close(); }
            Assert.True(SdkSession.Find("unity-real") == null, "closed");
        }

        [Test]
        public void EveryReplyAndEventShapeIsAcceptedBySdkTypes()
        {
            var s = SdkSession.Open(PairingFile("unity-shapes"), "unity-shapes", "unity");
            try
            {
                var adapter = new Adapter(new InMemoryScene());
                var cmds = new[]
                {
                    "{\"id\":1,\"kind\":\"apply\",\"tid\":1,\"ops\":[{\"op\":\"create_object\",\"args\":{\"id\":\"a\",\"name\":\"A\",\"kind\":\"mesh\",\"primitive\":null,\"parent\":null,\"transform\":null}},{\"op\":\"set_material\",\"args\":{\"id\":\"a\",\"metallic\":1}}]}",
                    "{\"id\":2,\"kind\":\"verify\",\"tid\":1,\"ids\":[\"a\",\"gone\"]}",
                    "{\"id\":3,\"kind\":\"snapshot\"}",
                    "{\"id\":4,\"kind\":\"commit\",\"tid\":1}",
                    "{\"id\":5,\"kind\":\"apply\",\"tid\":2,\"ops\":[{\"op\":\"delete_object\",\"args\":{\"id\":\"zz\"}}]}",
                    "{\"id\":6,\"kind\":\"resync\",\"objects\":[]}",
                    "{\"id\":7,\"kind\":\"freeze\",\"reason\":\"test\"}",
                    "{\"id\":8,\"kind\":\"preview\",\"width\":8,\"height\":8}",
                };
                foreach (var c in cmds) s.Reply(adapter.HandleJson(c));
                var bad = Assert.Throws<SdkException>(() => s.Reply("{\"id\":9,\"ok\":true}"), "a reply without result");
                Assert.True(bad.Message.Contains("vs_reply"), bad.Message);

                var objs = new Dictionary<string, SceneObject>();
                Func<string, SceneObject> read = id => objs.ContainsKey(id) ? objs[id].Clone() : null;
                var tracker = new ChangeTracker(0);
                tracker.Reset(new string[0], read);
                objs["p"] = new SceneObject { Id = "p", Name = "Café", Kind = "empty", Material = Material.Default() };
                objs["c"] = new SceneObject { Id = "c", Name = "Child", Kind = "light", Parent = "p" };
                var events = new List<string>();
                tracker.MarkAllDirty(0);
                events.Add(tracker.Flush(1, objs.Keys, read));
                objs["p"].Name = "Renamed";
                objs["p"].Transform.Rotation = new[] { 0.0, 1.0, 0.0, 0.0 };
                objs["p"].Material.Roughness = 0.1;
                objs["c"].Parent = null;
                tracker.MarkAllDirty(2);
                events.Add(tracker.Flush(3, objs.Keys, read));
                objs.Remove("p");
                tracker.MarkAllDirty(4);
                events.Add(tracker.Flush(5, objs.Keys, read));
                var kinds = string.Join(",", events.SelectMany(e => J.Arr(J.Obj(Json.Parse(e), "event")["ops"], "ops")).Select(o => (string)J.Obj(o, "op")["op"]));
                Assert.Equal("create_object,set_material,create_object,reparent_object,rename_object,set_transform,set_material,delete_object", kinds, "every op the tracker emits");
                foreach (var ev in events) s.PushEvent(ev);
            }
            finally { s.Close(); }
        }
    }
}
