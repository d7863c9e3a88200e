// The editor bootstrap: opens (or re-attaches to) the SDK session, pumps
// commands from EditorApplication.update within a time budget, tells the host
// when Unity cannot mutate (compiling, updating, play mode), turns
// ObjectChangeEvents into change events, and survives domain reloads: the
// native session lives on in the SDK across a reload, so before it the pump
// only marks itself busy, and after it vs_find re-attaches to the same
// session (the host sees a short pause, not a new engine). Commands that
// arrive during the reload wait, in order, in the SDK's queue.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using UnityEditor;
using UnityEngine;
using UObject = UnityEngine.Object;

namespace VibeSync.Unity
{
    [InitializeOnLoad]
    public static class VibeSyncEditor
    {
        public const string PairingPathPref = "VibeSync.PairingPath";
        public const string EngineNamePref = "VibeSync.EngineName";
        /// <summary>Per-tick budget for commands: well under one editor frame.</summary>
        const long BudgetMs = 8;
        const long DebounceMs = 200;
        const long RetryMs = 5000;

        static readonly Stopwatch Clock = Stopwatch.StartNew();
        static readonly UnityScene Scene = new UnityScene();
        static readonly ChangeTracker Tracker = new ChangeTracker(DebounceMs);
        public static readonly Adapter Adapter = new Adapter(Scene) { Tracker = Tracker };
        static SdkSession session;
        static Pump pump;
        static string busy;
        static long nextAttemptMs;
        static long nextStatusMs;
        static bool trackerReady;
        /// <summary>False after the artist pressed Disconnect: no automatic reconnection.</summary>
        static bool autoConnect = true;

        /// <summary>Last status JSON from the SDK, for the window (null when not connected).</summary>
        public static Dictionary<string, object> Status { get; private set; }

        public static string LastError { get; private set; }

        public static bool Connected { get { return session != null; } }

        static long Now() { return Clock.ElapsedMilliseconds; }

        static VibeSyncEditor()
        {
            EditorApplication.update += Tick;
            EditorApplication.quitting += Disconnect;
            AssemblyReloadEvents.beforeAssemblyReload += BeforeReload;
            ObjectChangeEvents.changesPublished += OnChanges;
            VibeSyncId.IdAssigned += (c, copied) => Tracker.MarkDirty(c.Id, Now());
            // After a domain reload this finds the session the previous domain left open.
            TryConnect(reattachOnly: true);
        }

        static SceneObject ReadCanonical(string id) { return UnityFrame.ObjectToCanonical(Scene.Read(id)); }

        public static string PairingPath
        {
            get
            {
                var p = EditorPrefs.GetString(PairingPathPref, "");
                return p.Length > 0 ? p : Environment.GetEnvironmentVariable("VIBESYNC_PAIRING") ?? "";
            }
            set { EditorPrefs.SetString(PairingPathPref, value); }
        }

        public static string EngineName
        {
            get { return EditorPrefs.GetString(EngineNamePref, "unity"); }
            set { EditorPrefs.SetString(EngineNamePref, value); }
        }

        public static void TryConnect(bool reattachOnly)
        {
            if (!reattachOnly) autoConnect = true;
            try
            {
                session = SdkSession.Find(EngineName);
                if (session == null && !reattachOnly)
                {
                    if (PairingPath.Length == 0) throw new SdkException("no pairing file: set it in Window > VibeSync (written by `vibesync init`)");
                    session = SdkSession.Open(PairingPath, EngineName, "unity");
                }
                if (session == null) return;
                pump = new Pump(session, Adapter.HandleJson, Now, BudgetMs);
                busy = BusyReason();
                Adapter.BusyReason = busy;
                session.SetBusy(busy);
                // A new domain starts with a fresh Adapter: keep a PANIC the previous one was under.
                var st = session.Status();
                object panic;
                if (st.TryGetValue("panic", out panic) && panic is bool && (bool)panic)
                    Adapter.Freeze((st["panic_reason"] as string) ?? "PANIC (before the domain reload)");
                LastError = null;
            }
            catch (Exception e) when (e is SdkException || e is DllNotFoundException || e is EntryPointNotFoundException)
            {
                session = null;
                pump = null;
                LastError = e.Message;
            }
        }

        /// <summary>Close the session (the Disconnect button, editor quit); no automatic reconnection follows.</summary>
        public static void Disconnect()
        {
            autoConnect = false;
            if (session == null) return;
            try { session.Close(); }
            catch (SdkException e) { LastError = e.Message; }
            session = null;
            pump = null;
            Status = null;
        }

        static void BeforeReload()
        {
            // Keep the native session: the next domain re-attaches with vs_find.
            if (session != null) Report(() => session.SetBusy("domain reload"));
        }

        static string BusyReason()
        {
            if (EditorApplication.isCompiling) return "compiling scripts";
            if (EditorApplication.isUpdating) return "importing assets";
            if (EditorApplication.isPlayingOrWillChangePlaymode) return "play mode";
            return null;
        }

        static void Tick()
        {
            long now = Now();
            if (!trackerReady)
            {
                // The first tick comes after every VibeSyncId of the loaded scenes was enabled
                // (registered), so the scene as it is now is the known state, not a burst of creates.
                Tracker.Reset(Scene.TrackedIds(), ReadCanonical);
                trackerReady = true;
            }
            if (session == null)
            {
                if (autoConnect && now >= nextAttemptMs && PairingPath.Length > 0)
                {
                    nextAttemptMs = now + RetryMs;
                    TryConnect(reattachOnly: false);
                }
                return;
            }
            var reason = BusyReason();
            if (reason != busy)
            {
                busy = reason;
                Adapter.BusyReason = reason;
                Report(() => session.SetBusy(reason));
            }
            Report(() => pump.Tick());
            // Edits made while busy (play mode) wait: they are flushed once Unity is idle.
            if (busy == null)
            {
                var ev = Tracker.Flush(now, Scene.TrackedIds(), ReadCanonical);
                if (ev != null) Report(() => session.PushEvent(ev));
            }
            if (now >= nextStatusMs)
            {
                nextStatusMs = now + 500;
                Report(() => Status = session.Status());
            }
        }

        static void Report(Action a)
        {
            try { a(); }
            catch (SdkException e) { LastError = e.Message; }
        }

        static void OnChanges(ref ObjectChangeEventStream stream)
        {
            long now = Now();
            for (int i = 0; i < stream.length; i++)
            {
                switch (stream.GetEventType(i))
                {
                    case ObjectChangeKind.ChangeGameObjectOrComponentProperties:
                    {
                        ChangeGameObjectOrComponentPropertiesEventArgs e;
                        stream.GetChangeGameObjectOrComponentPropertiesEvent(i, out e);
                        var id = IdOf(EditorUtility.InstanceIDToObject(e.instanceId));
                        if (id != null) Tracker.MarkDirty(id, now);
                        else Tracker.MarkAllDirty(now);
                        break;
                    }
                    default:
                        // Creation, destruction, reparenting, structure changes, undo/redo:
                        // re-read every tracked object (cheap at the scales tracked).
                        Tracker.MarkAllDirty(now);
                        break;
                }
            }
        }

        static string IdOf(UObject o)
        {
            var go = o as GameObject;
            var comp = o as Component;
            if (go == null && comp != null) go = comp.gameObject;
            if (go == null) return null;
            var c = go.GetComponent<VibeSyncId>();
            return c == null ? null : c.Id;
        }
    }
}
