// The P/Invoke binding to the adapter SDK's C ABI (docs/adapter-api.md,
// adapters/sdk). Strings go in as NUL-terminated UTF-8 byte arrays and come
// out as pointers that are copied and then released with vs_string_free
// (vs_last_error's pointer is borrowed and never freed). Every failure raises
// SdkException with the SDK's own message. The library file is
// libvibesync_adapter_sdk.so / vibesync_adapter_sdk.dll / .dylib, resolved by
// the runtime from the plugin folder or the library path.
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace VibeSync
{
    public sealed class SdkException : Exception
    {
        public SdkException(string message) : base(message) { }
    }

    internal static class NativeMethods
    {
        const string Lib = "vibesync_adapter_sdk";

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern ulong vs_open(byte[] pairingPath, byte[] engineName, byte[] kind);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern ulong vs_find(byte[] engineName);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr vs_poll(ulong session);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int vs_reply(ulong session, byte[] replyJson);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int vs_push_event(ulong session, byte[] eventJson);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int vs_set_busy(ulong session, byte[] reasonOrNull);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr vs_status(ulong session);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int vs_close(ulong session);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr vs_last_error();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void vs_string_free(IntPtr s);
    }

    /// <summary>UTF-8 marshalling that does not depend on Marshal.PtrToStringUTF8 (absent from Unity's Mono profile).</summary>
    public static class Utf8
    {
        /// <summary>UTF-8 bytes plus a NUL terminator; null stays null. A string containing NUL is refused.</summary>
        public static byte[] ToNative(string s)
        {
            if (s == null) return null;
            if (s.IndexOf('\0') >= 0) throw new ArgumentException("a string passed to the SDK contains a NUL character");
            var b = Encoding.UTF8.GetBytes(s);
            var z = new byte[b.Length + 1];
            Buffer.BlockCopy(b, 0, z, 0, b.Length);
            return z;
        }

        /// <summary>Copy a NUL-terminated UTF-8 string; IntPtr.Zero gives null.</summary>
        public static string FromNative(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            var bytes = new List<byte>(64);
            for (int i = 0; ; i++)
            {
                byte b = Marshal.ReadByte(p, i);
                if (b == 0) break;
                bytes.Add(b);
            }
            return Encoding.UTF8.GetString(bytes.ToArray());
        }
    }

    /// <summary>One SDK session (a handle); implements the channel the Pump drives.</summary>
    public sealed class SdkSession : ICommandChannel
    {
        public readonly ulong Handle;

        SdkSession(ulong handle) { Handle = handle; }

        static string LastError(string call)
        {
            var msg = Utf8.FromNative(NativeMethods.vs_last_error());
            return call + " failed: " + (msg ?? "the SDK gave no reason");
        }

        /// <summary>Open, or re-attach to, the session of <paramref name="engineName"/> (idempotent across domain reloads).</summary>
        public static SdkSession Open(string pairingPath, string engineName, string kind)
        {
            ulong h = NativeMethods.vs_open(Utf8.ToNative(pairingPath), Utf8.ToNative(engineName), Utf8.ToNative(kind));
            if (h == 0) throw new SdkException(LastError("vs_open(" + pairingPath + ", " + engineName + ")"));
            return new SdkSession(h);
        }

        /// <summary>The live session of <paramref name="engineName"/> in this process, or null.</summary>
        public static SdkSession Find(string engineName)
        {
            ulong h = NativeMethods.vs_find(Utf8.ToNative(engineName));
            return h == 0 ? null : new SdkSession(h);
        }

        static string TakeString(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            try { return Utf8.FromNative(p); }
            finally { NativeMethods.vs_string_free(p); }
        }

        public string Poll()
        {
            return TakeString(NativeMethods.vs_poll(Handle));
        }

        void Check(int rc, string call)
        {
            if (rc != 0) throw new SdkException(LastError(call));
        }

        public void Reply(string replyJson) { Check(NativeMethods.vs_reply(Handle, Utf8.ToNative(replyJson)), "vs_reply"); }

        public void PushEvent(string eventJson) { Check(NativeMethods.vs_push_event(Handle, Utf8.ToNative(eventJson)), "vs_push_event"); }

        public void SetBusy(string reason) { Check(NativeMethods.vs_set_busy(Handle, Utf8.ToNative(reason)), "vs_set_busy"); }

        /// <summary>The status JSON (see docs/adapter-api.md) parsed.</summary>
        public Dictionary<string, object> Status()
        {
            var s = TakeString(NativeMethods.vs_status(Handle));
            if (s == null) throw new SdkException(LastError("vs_status"));
            return J.Obj(Json.Parse(s), "vs_status");
        }

        public void Close() { Check(NativeMethods.vs_close(Handle), "vs_close"); }
    }
}
