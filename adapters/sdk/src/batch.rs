//! Which replies the network thread holds back to answer a `commands` frame
//! with one `replies` frame, and when it lets them go. Plain state, time
//! passed in: the engine still polls and answers one command at a time
//! (C ABI unchanged); this collects the answers.
//!
//! A batch's replies are released together when its last reply is given,
//! or when the oldest of them has waited [`HOLD_MS`] (a slow command does
//! not hold the others back; its own reply then goes alone when it comes).
//! A reply to a command that came alone is released at once, alone: only
//! the replies of one `commands` frame are ever packed together, so a host
//! that never sends `commands` never gets `replies`.

use vibesync_protocol::Reply;

/// Longest a given reply waits for the rest of its batch.
pub const HOLD_MS: u64 = 2;

/// The open batches of one session (from `commands` frames, oldest first).
#[derive(Debug, Default)]
pub struct ReplyBatcher {
    open: Vec<Open>,
}

#[derive(Debug)]
struct Open {
    /// Ids still unanswered.
    waiting: Vec<u64>,
    ready: Vec<Reply>,
    /// When the first of `ready` was given.
    since_ms: Option<u64>,
}

impl ReplyBatcher {
    /// A `commands` frame with these ids arrived: hold their replies.
    pub fn expect(&mut self, ids: Vec<u64>) {
        if ids.len() > 1 {
            self.open.push(Open {
                waiting: ids,
                ready: Vec::new(),
                since_ms: None,
            });
        }
    }

    /// The engine answered; returns the replies to send now, in order: the
    /// reply alone, or its whole batch (empty while that is incomplete).
    pub fn offer(&mut self, reply: Reply, now_ms: u64) -> Vec<Reply> {
        let Some(i) = self.open.iter().position(|b| b.waiting.contains(&reply.id)) else {
            return vec![reply];
        };
        let b = &mut self.open[i];
        b.waiting.retain(|id| *id != reply.id);
        b.ready.push(reply);
        b.since_ms.get_or_insert(now_ms);
        if b.waiting.is_empty() {
            return self.open.remove(i).ready;
        }
        Vec::new()
    }

    /// Replies held for [`HOLD_MS`] or more, one group per batch: their
    /// batches are given up (later replies of them go alone) and the held
    /// replies go now.
    pub fn due(&mut self, now_ms: u64) -> Vec<Vec<Reply>> {
        let mut out = Vec::new();
        self.open.retain_mut(|b| match b.since_ms {
            Some(t) if t + HOLD_MS <= now_ms => {
                out.push(std::mem::take(&mut b.ready));
                false
            }
            _ => true,
        });
        out
    }

    /// When [`ReplyBatcher::due`] next has something to release.
    pub fn deadline_ms(&self) -> Option<u64> {
        self.open
            .iter()
            .filter_map(|b| b.since_ms)
            .min()
            .map(|t| t + HOLD_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: u64) -> Reply {
        Reply::ok(id, serde_json::json!({}))
    }

    fn ids(rs: &[Reply]) -> Vec<u64> {
        rs.iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_batch_is_released_whole_when_its_last_reply_is_given() {
        let mut b = ReplyBatcher::default();
        b.expect(vec![1, 2, 3]);
        assert!(b.offer(r(1), 10).is_empty());
        assert_eq!(b.deadline_ms(), Some(10 + HOLD_MS));
        // A reply outside any batch goes at once.
        assert_eq!(ids(&b.offer(r(9), 10)), [9]);
        assert!(b.offer(r(3), 11).is_empty());
        assert_eq!(ids(&b.offer(r(2), 11)), [1, 3, 2], "in the order given");
        assert_eq!(b.deadline_ms(), None);
        assert!(b.due(1_000).is_empty());
    }

    #[test]
    fn a_slow_command_does_not_hold_the_others_back() {
        let mut b = ReplyBatcher::default();
        b.expect(vec![1, 2, 3]);
        b.expect(vec![4, 5]);
        assert_eq!(b.deadline_ms(), None, "nothing held yet");
        assert!(b.offer(r(1), 100).is_empty());
        assert!(b.offer(r(4), 101).is_empty());
        assert!(b.due(100 + HOLD_MS - 1).is_empty());
        assert_eq!(
            b.due(100 + HOLD_MS)
                .iter()
                .map(|g| ids(g))
                .collect::<Vec<_>>(),
            [[1]]
        );
        // The given-up batch's later replies go alone, at once.
        assert_eq!(ids(&b.offer(r(2), 103)), [2]);
        assert_eq!(ids(&b.offer(r(5), 103)), [4, 5]);
        assert_eq!(ids(&b.offer(r(3), 200)), [3]);
        assert_eq!(b.deadline_ms(), None);
    }

    #[test]
    fn a_single_command_is_never_held() {
        let mut b = ReplyBatcher::default();
        b.expect(vec![7]);
        assert_eq!(ids(&b.offer(r(7), 0)), [7]);
        assert_eq!(b.deadline_ms(), None);
    }
}
