// The error codes of docs/adapter-api.md, and the one exception type the core
// throws for a refusal the host should see. Every message names the field or
// object and what to do about it.
using System;

namespace VibeSync
{
    public static class ErrorCode
    {
        public const string NoSuchObject = "no-such-object";
        public const string AlreadyExists = "already-exists";
        public const string Cycle = "cycle";
        public const string Malformed = "malformed";
        public const string Frozen = "frozen";
        public const string Busy = "busy";
        public const string UndoTokenLost = "undo-token-lost";
        public const string ScriptError = "script-error";
        public const string Unsupported = "unsupported";
        public const string Internal = "internal";
    }

    /// <summary>A refusal with a wire error code (see <see cref="ErrorCode"/>).</summary>
    public sealed class AdapterException : Exception
    {
        public readonly string Code;

        public AdapterException(string code, string message) : base(message) { Code = code; }
    }
}
