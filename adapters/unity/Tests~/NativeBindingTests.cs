// The P/Invoke binding against fake-sdk/fake_sdk.c, a C library with the
// SDK's ABI and no network (the real SDK was not available to link against):
// signatures, UTF-8 both ways, ownership (every string the SDK returns is
// freed exactly once), error messages from vs_last_error, and the domain
// reload: an AppDomain holding the adapter is unloaded and a new one
// re-attaches to the same native session with vs_find; no second session is
// opened and no queued command is lost or answered twice.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;

namespace VibeSync.Tests
{
    static class Fake
    {
        const string Lib = "vibesync_adapter_sdk";
        [DllImport(Lib)] public static extern int fake_enqueue(ulong h, byte[] json);
        [DllImport(Lib)] public static extern int fake_replies(ulong h);
        [DllImport(Lib)] public static extern IntPtr fake_last_reply(ulong h);
        [DllImport(Lib)] public static extern IntPtr fake_busy(ulong h);
        [DllImport(Lib)] public static extern int fake_opens();
        [DllImport(Lib)] public static extern int fake_live_strings();

        public static void Enqueue(ulong h, string json) { Assert.Equal(0, fake_enqueue(h, Utf8.ToNative(json)), "enqueue"); }
    }

    public class NativeBindingTests
    {
        [Test]
        public void SessionCommandsRepliesAndOwnership()
        {
            var s = SdkSession.Open("/tmp/pairing.toml", "binding-test", "unity");
            Assert.Equal(s.Handle, SdkSession.Open("/tmp/pairing.toml", "binding-test", "unity").Handle, "open is idempotent per engine");
            Assert.Equal(s.Handle, SdkSession.Find("binding-test").Handle, "find");
            Assert.True(SdkSession.Find("nobody") == null, "find of an unknown engine");
            Assert.True(s.Poll() == null, "empty queue polls null");
            Fake.Enqueue(s.Handle, "{\"id\":1,\"kind\":\"snapshot\",\"note\":\"Café 立方体 🧊\"}");
            var cmd = s.Poll();
            Assert.True(cmd.Contains("Café 立方体 🧊"), "UTF-8 from native: " + cmd);
            s.Reply("{\"id\":1,\"ok\":true,\"result\":{\"name\":\"naïve\"}}");
            Assert.Equal(1, Fake.fake_replies(s.Handle), "one reply");
            Assert.True(Utf8.FromNative(Fake.fake_last_reply(s.Handle)).Contains("naïve"), "UTF-8 to native");
            s.SetBusy("compiling scripts");
            Assert.Equal("compiling scripts", Utf8.FromNative(Fake.fake_busy(s.Handle)), "busy reason");
            s.SetBusy(null);
            Assert.True(Fake.fake_busy(s.Handle) == IntPtr.Zero, "busy cleared with NULL");
            Assert.Equal("connected", (string)s.Status()["state"], "status parsed");
            Assert.Equal(0, Fake.fake_live_strings(), "every returned string freed with vs_string_free");
            s.Close();
            var e = Assert.Throws<SdkException>(() => s.Reply("{}"), "closed session");
            Assert.True(e.Message.Contains("no session with handle"), "vs_last_error surfaced: " + e.Message);
            var open = Assert.Throws<SdkException>(() => SdkSession.Open("", "x", "unity"), "bad pairing");
            Assert.True(open.Message.Contains("vibesync init"), open.Message);
        }

        /// <summary>Runs inside a separate AppDomain: attach (or open), handle up to max commands with a real Adapter.</summary>
        public sealed class Worker : MarshalByRefObject
        {
            public ulong Attach(string engine)
            {
                var s = SdkSession.Find(engine) ?? SdkSession.Open("/tmp/pairing.toml", engine, "unity");
                return s.Handle;
            }

            public int Handle(string engine, int max)
            {
                var s = SdkSession.Find(engine);
                var adapter = new Adapter(new InMemoryScene());
                int n = 0;
                string cmd;
                while (n < max && (cmd = s.Poll()) != null)
                {
                    s.Reply(adapter.HandleJson(cmd));
                    n++;
                }
                return n;
            }
        }

        static Worker NewDomain(string name, out AppDomain domain)
        {
            var setup = new AppDomainSetup { ApplicationBase = AppDomain.CurrentDomain.BaseDirectory };
            domain = AppDomain.CreateDomain(name, null, setup);
            return (Worker)domain.CreateInstanceAndUnwrap(typeof(Worker).Assembly.FullName, typeof(Worker).FullName);
        }

        [Test]
        public void DomainReloadReattachesWithoutLosingOrRepeatingCommands()
        {
            const string engine = "reload-test";
            int opensBefore = Fake.fake_opens();
            AppDomain d1;
            var w1 = NewDomain("before-reload", out d1);
            ulong h = w1.Attach(engine);
            for (int i = 1; i <= 3; i++) Fake.Enqueue(h, "{\"id\":" + i + ",\"kind\":\"snapshot\"}");
            Assert.Equal(1, w1.Handle(engine, 1), "first domain handles one command");
            AppDomain.Unload(d1);
            // Commands keep arriving while no domain is attached.
            for (int i = 4; i <= 5; i++) Fake.Enqueue(h, "{\"id\":" + i + ",\"kind\":\"snapshot\"}");
            AppDomain d2;
            var w2 = NewDomain("after-reload", out d2);
            Assert.Equal(h, w2.Attach(engine), "the new domain re-attaches to the same native session");
            Assert.Equal(4, w2.Handle(engine, 100), "the rest, once each");
            AppDomain.Unload(d2);
            Assert.Equal(opensBefore + 1, Fake.fake_opens(), "one session opened in all (no duplicate engine)");
            Assert.Equal(5, Fake.fake_replies(h), "every command answered exactly once");
            Assert.True(Utf8.FromNative(Fake.fake_last_reply(h)).StartsWith("{\"id\":5,\"ok\":true"), "last reply is for the last command");
            Assert.Equal(0, Fake.fake_live_strings(), "no leaked SDK strings");
            SdkSession.Find(engine).Close();
        }
    }
}
