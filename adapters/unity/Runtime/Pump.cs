// The main-thread pump. The command queue itself lives in the SDK (its
// network thread fills it; vs_poll takes from it). Each editor tick the pump
// drains it on the main thread until the tick's time budget is spent, so a burst of commands
// never freezes the editor; what does not fit stays queued in the SDK, in
// order, for the next tick. It always polls at least once per tick: that poll
// is the heartbeat's evidence that the main thread is alive. The clock is
// injected, so the budget logic is tested without time passing.
using System;

namespace VibeSync
{
    /// <summary>The SDK session as the core sees it (SdkSession in production, a fake in tests).</summary>
    public interface ICommandChannel
    {
        /// <summary>Next command JSON, or null when none is waiting. Never blocks.</summary>
        string Poll();
        void Reply(string replyJson);
        void PushEvent(string eventJson);
        /// <summary>Null: idle again.</summary>
        void SetBusy(string reason);
    }

    public sealed class Pump
    {
        readonly ICommandChannel channel;
        readonly Func<string, string> handle;
        readonly Func<long> nowMs;
        readonly long budgetMs;

        public long Handled { get; private set; }

        /// <param name="handle">command JSON -> reply JSON (Adapter.HandleJson)</param>
        /// <param name="nowMs">a monotonic clock in milliseconds</param>
        /// <param name="budgetMs">time per tick after which no further command is started</param>
        public Pump(ICommandChannel channel, Func<string, string> handle, Func<long> nowMs, long budgetMs)
        {
            if (budgetMs <= 0) throw new ArgumentOutOfRangeException("budgetMs", "the per-tick budget must be positive");
            this.channel = channel;
            this.handle = handle;
            this.nowMs = nowMs;
            this.budgetMs = budgetMs;
        }

        /// <summary>One editor tick; returns how many commands were handled.</summary>
        public int Tick()
        {
            long start = nowMs();
            int n = 0;
            while (true)
            {
                var cmd = channel.Poll();
                if (cmd == null) break;
                channel.Reply(handle(cmd));
                n++;
                Handled++;
                if (nowMs() - start >= budgetMs) break;
            }
            return n;
        }
    }
}
