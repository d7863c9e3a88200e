// A Unity editor stand-in for the live test (host/vibesync/tests/unity_live.rs):
// the core (Adapter, Pump, SdkSession) on the REAL adapter SDK, connected to a
// real `vibesync serve` over QUIC. It keeps the editor's structure where it
// matters for a domain reload:
//   - the scene lives in the default AppDomain (NativeScene), as Unity's
//     scene is native and survives a reload; so does its undo stack;
//   - the adapter, the pump and the SdkSession wrapper live in a child
//     AppDomain (LiveWorker) that "reload" unloads and recreates, while the
//     native SDK library and its session stay loaded;
//   - the main loop calls LiveWorker.Tick every 10 ms, as
//     EditorApplication.update would, and the new domain re-attaches with
//     vs_find exactly as the glue's static constructor does
//     (Editor/VibeSyncEditor.cs: TryConnect(reattachOnly: true)).
//
// Usage: tests.exe --live <pairing-file> <engine-name>
// Control lines on stdin:
//   stall <ms>    the main thread stops pumping for <ms> (a hung editor)
//   reload <ms>   unload the adapter's AppDomain, wait <ms>, create a new one
//   status        print the SDK status JSON
//   quit          close the session (bye) and exit (prints BYE)
// Lines on stdout (one per event, flushed):
//   READY <handle>, CMD <id> <kind> <domain-name>, STALLED, PUMPING, UNLOADED,
//   RELOADED <handle> same=<true|false> domain=<name>, STATUS <json>, ERROR <text>
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;

namespace VibeSync.Tests
{
    /// <summary>The engine's scene, outside the reloadable domain; crosses domains as JSON text.</summary>
    public sealed class NativeScene : MarshalByRefObject
    {
        readonly InMemoryScene scene = new InMemoryScene { NativeUndo = true };

        public override object InitializeLifetimeService() { return null; }

        public string[] TrackedIds() { return scene.TrackedIds().ToArray(); }

        public string Read(string id)
        {
            var o = scene.Read(id);
            return o == null ? null : Json.Write(o.ToJson());
        }

        public void Create(string id, string name, string kind, string primitive, string parent, string local)
        {
            scene.Create(id, name, kind, primitive, parent, Transform.FromJson(Json.Parse(local), "transform"));
        }

        public void Delete(string id) { scene.Delete(id); }
        public void Rename(string id, string name) { scene.Rename(id, name); }
        public void Reparent(string id, string parent) { scene.Reparent(id, parent); }
        public void SetTransform(string id, string local) { scene.SetTransform(id, Transform.FromJson(Json.Parse(local), "transform")); }
        public void SetMaterial(string id, string m) { scene.SetMaterial(id, Material.FromJson(Json.Parse(m), "material")); }
        public void RemoveMaterial(string id) { scene.RemoveMaterial(id); }
        public void Select(string[] ids, bool frame) { scene.Select(ids, frame); }
        public long BeginUndoGroup(string label) { return scene.BeginUndoGroup(label); }
        public void EndUndoGroup(long group) { scene.EndUndoGroup(group); }
        public bool RevertUndoGroup(long group) { return scene.RevertUndoGroup(group); }
    }

    /// <summary>IScene in the adapter's domain, forwarding to the NativeScene.</summary>
    public sealed class RemoteScene : IScene
    {
        readonly NativeScene native;

        public RemoteScene(NativeScene native) { this.native = native; }

        public IEnumerable<string> TrackedIds() { return native.TrackedIds(); }

        public SceneObject Read(string id)
        {
            var s = native.Read(id);
            return s == null ? null : SceneObject.FromJson(Json.Parse(s), "scene object");
        }

        public void Create(string id, string name, string kind, string primitive, string parent, Transform local)
        {
            native.Create(id, name, kind, primitive, parent, Json.Write(local.ToJson()));
        }

        public void Delete(string id) { native.Delete(id); }
        public void Rename(string id, string name) { native.Rename(id, name); }
        public void Reparent(string id, string parent) { native.Reparent(id, parent); }
        public void SetTransform(string id, Transform local) { native.SetTransform(id, Json.Write(local.ToJson())); }
        public void SetMaterial(string id, Material m) { native.SetMaterial(id, Json.Write(m.ToJson())); }
        public void RemoveMaterial(string id) { native.RemoveMaterial(id); }
        public void Select(IList<string> ids, bool frame) { native.Select(ids.ToArray(), frame); }
        public long BeginUndoGroup(string label) { return native.BeginUndoGroup(label); }
        public void EndUndoGroup(long group) { native.EndUndoGroup(group); }
        public bool RevertUndoGroup(long group) { return native.RevertUndoGroup(group); }
    }

    /// <summary>The SDK session as the pump sees it, noting every command taken (id, kind).</summary>
    sealed class RecordingChannel : ICommandChannel
    {
        readonly SdkSession session;
        public readonly List<string> Taken = new List<string>();

        public RecordingChannel(SdkSession session) { this.session = session; }

        public string Poll()
        {
            var c = session.Poll();
            if (c != null)
            {
                var o = J.Obj(Json.Parse(c), "command");
                Taken.Add(J.Get(o, "id") + " " + J.Get(o, "kind"));
            }
            return c;
        }

        public void Reply(string replyJson) { session.Reply(replyJson); }
        public void PushEvent(string eventJson) { session.PushEvent(eventJson); }
        public void SetBusy(string reason) { session.SetBusy(reason); }
    }

    /// <summary>Everything that a domain reload destroys: adapter, pump, session wrapper.</summary>
    public sealed class LiveWorker : MarshalByRefObject
    {
        static readonly Stopwatch Clock = Stopwatch.StartNew();
        SdkSession session;
        RecordingChannel channel;
        Pump pump;

        public override object InitializeLifetimeService() { return null; }

        /// <summary>Re-attach to this process's session of <paramref name="engine"/>, or open it; returns the handle.</summary>
        public ulong Attach(string pairing, string engine, NativeScene scene)
        {
            session = SdkSession.Find(engine) ?? SdkSession.Open(pairing, engine, "unity");
            var adapter = new Adapter(new RemoteScene(scene));
            channel = new RecordingChannel(session);
            pump = new Pump(channel, adapter.HandleJson, () => Clock.ElapsedMilliseconds, 8);
            session.SetBusy(null);
            // As the glue does: a fresh Adapter keeps a PANIC the previous domain was under.
            var st = session.Status();
            object panic;
            if (st.TryGetValue("panic", out panic) && panic is bool && (bool)panic)
                adapter.Freeze((st["panic_reason"] as string) ?? "PANIC (before the domain reload)");
            return session.Handle;
        }

        /// <summary>One editor tick; returns "id kind" of every command handled.</summary>
        public string[] Tick()
        {
            channel.Taken.Clear();
            pump.Tick();
            return channel.Taken.ToArray();
        }

        /// <summary>AssemblyReloadEvents.beforeAssemblyReload: keep the session, say why nothing is pumped.</summary>
        public void BeforeReload() { session.SetBusy("domain reload"); }

        public string Status() { return Json.Write(session.Status()); }

        public void Close() { session.Close(); }
    }

    public static class LiveEngine
    {
        static void Say(string line)
        {
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }

        static LiveWorker NewDomain(string name, out AppDomain domain)
        {
            var setup = new AppDomainSetup { ApplicationBase = AppDomain.CurrentDomain.BaseDirectory };
            domain = AppDomain.CreateDomain(name, null, setup);
            return (LiveWorker)domain.CreateInstanceAndUnwrap(typeof(LiveWorker).Assembly.FullName, typeof(LiveWorker).FullName);
        }

        public static int Run(string pairing, string engine)
        {
            var scene = new NativeScene();
            var control = new BlockingCollection<string>();
            var reader = new Thread(() =>
            {
                string line;
                while ((line = Console.In.ReadLine()) != null) control.Add(line.Trim());
                control.Add("quit");
            }) { IsBackground = true };
            reader.Start();

            int generation = 1;
            AppDomain domain;
            var worker = NewDomain("adapter-1", out domain);
            ulong handle = worker.Attach(pairing, engine, scene);
            Say("READY " + handle);
            long stallUntil = 0;
            var clock = Stopwatch.StartNew();
            while (true)
            {
                string cmd;
                while (control.TryTake(out cmd))
                {
                    var parts = cmd.Split(' ');
                    try
                    {
                        switch (parts[0])
                        {
                            case "stall":
                                stallUntil = clock.ElapsedMilliseconds + long.Parse(parts[1]);
                                Say("STALLED");
                                break;
                            case "reload":
                            {
                                worker.BeforeReload();
                                AppDomain.Unload(domain);
                                worker = null;
                                Say("UNLOADED");
                                Thread.Sleep(int.Parse(parts[1]));
                                generation++;
                                worker = NewDomain("adapter-" + generation, out domain);
                                ulong h = worker.Attach(pairing, engine, scene);
                                Say("RELOADED " + h + " same=" + (h == handle ? "true" : "false") + " domain=adapter-" + generation);
                                break;
                            }
                            case "status":
                                Say("STATUS " + worker.Status());
                                break;
                            case "quit":
                                worker.Close();
                                AppDomain.Unload(domain);
                                Say("BYE");
                                return 0;
                            case "":
                                break;
                            default:
                                Say("ERROR unknown control line: " + cmd);
                                break;
                        }
                    }
                    catch (Exception e)
                    {
                        Say("ERROR " + cmd + ": " + e.GetType().Name + ": " + e.Message);
                    }
                }
                if (stallUntil != 0 && clock.ElapsedMilliseconds >= stallUntil)
                {
                    stallUntil = 0;
                    Say("PUMPING");
                }
                if (stallUntil == 0)
                {
                    try
                    {
                        foreach (var t in worker.Tick()) Say("CMD " + t + " " + domain.FriendlyName);
                    }
                    catch (Exception e)
                    {
                        Say("ERROR tick: " + e.GetType().Name + ": " + e.Message);
                    }
                }
                Thread.Sleep(10);
            }
        }
    }
}
