//! Batched frames (the `batch` capability of `hello`): several commands in
//! one `commands` frame, several replies in one `replies` frame.
//!
//! This module owns the packing and the schema rules of a batch. The packer
//! encodes every item once and groups the encoded items into frames under a
//! count and a byte budget, so a sender never builds a frame the receiver
//! must refuse for its size; a group of one travels as the plain `command`
//! or `reply` it always was. The receiver's rules ([`check_ids`], used by
//! `Message::decode_body`) refuse an empty batch, one with more than
//! [`MAX_BATCH`] items and one that repeats an id, each as `bad-body` with
//! the rule, the field and what to do. A batch is not atomic: each item
//! succeeds or fails alone, exactly as if sent one by one in that order.

use serde::Serialize;

use crate::frame::put_head;
use crate::msg::{Command, Reply};

/// Most items (commands or replies) one batch frame may carry.
pub const MAX_BATCH: usize = 256;

/// Body bytes the packer fills a batch frame up to: well under the control
/// stream's 1 MiB frame limit, so header and tag always fit. A single item
/// larger than this travels alone, as it did before batching.
pub const BATCH_BODY_BUDGET: usize = 256 << 10;

/// One frame's worth of packed items: its kind and its encoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packed {
    /// `command`/`reply` for a group of one, `commands`/`replies` otherwise.
    pub kind: &'static str,
    pub body: Vec<u8>,
    /// Items in the frame.
    pub count: usize,
}

/// How the packer groups items: at most `max_items` per frame and at most
/// `max_body` body bytes (a single larger item goes alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_items: usize,
    pub max_body: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_items: MAX_BATCH,
            max_body: BATCH_BODY_BUDGET,
        }
    }
}

/// Packs commands, in order, into `command` and `commands` frame bodies.
pub fn pack_commands(cmds: &[Command], budget: Budget) -> Vec<Packed> {
    pack(cmds, budget, ("command", "commands", "cmds"))
}

/// Packs replies, in order, into `reply` and `replies` frame bodies.
pub fn pack_replies(replies: &[Reply], budget: Budget) -> Vec<Packed> {
    pack(replies, budget, ("reply", "replies", "replies"))
}

/// `(single kind, batch kind, field of the batch body)`.
type Kinds = (&'static str, &'static str, &'static str);

fn pack<T: Serialize>(items: &[T], budget: Budget, (single, batch, field): Kinds) -> Vec<Packed> {
    let max_items = budget.max_items.max(1);
    let mut out = Vec::new();
    let mut group: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    let flush = |group: &mut Vec<Vec<u8>>, out: &mut Vec<Packed>| {
        let count = group.len();
        match count {
            0 => {}
            1 => out.push(Packed {
                kind: single,
                body: group.pop().expect("one item"),
                count,
            }),
            _ => {
                let mut body = Vec::with_capacity(group.iter().map(Vec::len).sum::<usize>() + 16);
                put_head(&mut body, 5, 1); // map(1)
                put_head(&mut body, 3, field.len() as u64);
                body.extend_from_slice(field.as_bytes());
                put_head(&mut body, 4, count as u64); // array(count)
                for item in group.drain(..) {
                    body.extend_from_slice(&item);
                }
                out.push(Packed {
                    kind: batch,
                    body,
                    count,
                });
            }
        }
    };
    for item in items {
        let enc = cbor4ii::serde::to_vec(Vec::new(), item).expect("messages always encode");
        if !group.is_empty() && (group.len() == max_items || bytes + enc.len() > budget.max_body) {
            flush(&mut group, &mut out);
            bytes = 0;
        }
        bytes += enc.len();
        group.push(enc);
    }
    flush(&mut group, &mut out);
    out
}

/// The schema rules every batch obeys beyond its items' own: 1 to
/// [`MAX_BATCH`] items, no id twice. `field` names the body field in the
/// refusal text.
pub fn check_ids(field: &str, ids: impl ExactSizeIterator<Item = u64>) -> Result<(), String> {
    let n = ids.len();
    if n == 0 {
        return Err(format!(
            "field `{field}` is empty; a batch carries 1 to {MAX_BATCH} items, send nothing instead"
        ));
    }
    if n > MAX_BATCH {
        return Err(format!(
            "field `{field}` holds {n} items, more than the {MAX_BATCH} a batch may carry; \
             split it into several frames"
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    for (i, id) in ids.enumerate() {
        if !seen.insert(id) {
            return Err(format!(
                "field `{field}[{i}].id` repeats id {id}; every item of a batch has its own id"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Refusal;
    use crate::msg::{CommandBody, Message};

    fn verify(id: u64) -> Command {
        Command {
            id,
            body: CommandBody::Verify {
                tid: id,
                ids: vec![format!("obj-{id}")],
            },
        }
    }

    fn decode(p: &Packed) -> Result<Message, Refusal> {
        Message::decode_body(p.kind, &p.body)
    }

    #[test]
    fn a_group_of_one_is_the_plain_single_message() {
        let c = verify(7);
        let packed = pack_commands(std::slice::from_ref(&c), Budget::default());
        assert_eq!(packed.len(), 1);
        assert_eq!(packed[0].kind, "command");
        assert_eq!(packed[0].body, Message::Command(c.clone()).encode_body());
        let r = Reply::ok(7, serde_json::json!({"hash": "ab"}));
        let packed = pack_replies(std::slice::from_ref(&r), Budget::default());
        assert_eq!((packed[0].kind, packed[0].count), ("reply", 1));
        assert_eq!(decode(&packed[0]).unwrap(), Message::Reply(r));
    }

    #[test]
    fn packed_batches_are_the_bytes_of_the_message_and_round_trip() {
        let cmds: Vec<Command> = (1..=5).map(verify).collect();
        let packed = pack_commands(&cmds, Budget::default());
        assert_eq!(packed.len(), 1);
        assert_eq!((packed[0].kind, packed[0].count), ("commands", 5));
        let msg = Message::Commands(cmds.clone());
        assert_eq!(
            packed[0].body,
            msg.encode_body(),
            "hand-built == serde-built"
        );
        assert_eq!(decode(&packed[0]).unwrap(), msg);

        let replies: Vec<Reply> = (1..=3)
            .map(|id| Reply::ok(id, serde_json::json!({"hash": "ab", "n": null})))
            .chain([Reply::err(4, "frozen", "the adapter is frozen")])
            .collect();
        let packed = pack_replies(&replies, Budget::default());
        let msg = Message::Replies(replies);
        assert_eq!(packed[0].body, msg.encode_body());
        assert_eq!(decode(&packed[0]).unwrap(), msg);
    }

    #[test]
    fn the_packer_splits_by_count_and_by_bytes_keeping_order() {
        let cmds: Vec<Command> = (1..=600).map(verify).collect();
        let packed = pack_commands(&cmds, Budget::default());
        assert_eq!(
            packed.iter().map(|p| p.count).collect::<Vec<_>>(),
            [256, 256, 88]
        );
        let mut ids = Vec::new();
        for p in &packed {
            let Message::Commands(c) = decode(p).unwrap() else {
                panic!("a batch")
            };
            ids.extend(c.iter().map(|c| c.id));
        }
        assert_eq!(
            ids,
            (1..=600).collect::<Vec<_>>(),
            "order kept across frames"
        );

        // By bytes: each item is ~30 bytes, a 100-byte budget holds 3.
        let small = Budget {
            max_items: 256,
            max_body: 100,
        };
        let one = Message::Command(verify(1)).encode_body().len();
        let per = 100 / one;
        let packed = pack_commands(&cmds[..10], small);
        assert!(packed.iter().all(|p| p.body.len() <= 100 + 16));
        assert_eq!(packed[0].count, per);
        assert_eq!(packed.iter().map(|p| p.count).sum::<usize>(), 10);

        // An item over the budget travels alone, as a plain command.
        let big = Command {
            id: 9,
            body: CommandBody::Freeze {
                reason: "x".repeat(300),
            },
        };
        let packed = pack_commands(&[verify(1), big, verify(2)], small);
        assert_eq!(
            packed.iter().map(|p| p.kind).collect::<Vec<_>>(),
            ["command", "command", "command"]
        );
    }

    #[test]
    fn malformed_batches_are_refused_naming_rule_field_and_remedy() {
        let refuse = |kind: &str, body: &[u8]| {
            let e = Message::decode_body(kind, body).unwrap_err();
            assert_eq!(e.code(), "bad-body", "{e}");
            e.to_string()
        };
        let enc = |v: &serde_json::Value| {
            cbor4ii::serde::to_vec(Vec::new(), &crate::msg::Json(v)).unwrap()
        };
        let cmd = |id: u64| serde_json::json!({"id": id, "kind": "snapshot"});

        let e = refuse("commands", &enc(&serde_json::json!({"cmds": []})));
        assert!(e.contains("field `cmds` is empty"), "{e}");
        let many: Vec<_> = (0..=MAX_BATCH as u64).map(cmd).collect();
        let e = refuse("commands", &enc(&serde_json::json!({"cmds": many})));
        assert!(e.contains("257 items") && e.contains("split"), "{e}");
        let e = refuse(
            "commands",
            &enc(&serde_json::json!({"cmds": [cmd(1), cmd(1)]})),
        );
        assert!(e.contains("`cmds[1].id` repeats id 1"), "{e}");
        let e = refuse(
            "commands",
            &enc(&serde_json::json!({"cmds": [cmd(1), {"id": 2, "kind": "explode"}]})),
        );
        assert!(e.contains("explode"), "{e}");
        let e = refuse("commands", &enc(&serde_json::json!({"commands": [cmd(1)]})));
        assert!(e.contains("cmds"), "{e}");

        let ok = serde_json::json!({"id": 1, "ok": true, "result": {}});
        let e = refuse(
            "replies",
            &enc(&serde_json::json!({"replies": [ok, {"id": 2, "ok": true}]})),
        );
        assert!(
            e.contains("field `replies[1]`") && e.contains("never both"),
            "{e}"
        );
        let e = refuse(
            "replies",
            &enc(
                &serde_json::json!({"replies": [ok, {"id": 2, "ok": false, "error": {"code": "nope", "message": ""}}]}),
            ),
        );
        assert!(e.contains("`replies[1]`") && e.contains("`nope`"), "{e}");
        let e = refuse("replies", &enc(&serde_json::json!({"replies": [ok, ok]})));
        assert!(e.contains("`replies[1].id` repeats id 1"), "{e}");
        let e = refuse("replies", &enc(&serde_json::json!({"replies": []})));
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn batches_are_sealed_like_any_frame_and_routed_one_way_only() {
        use crate::frame::{Channel, Direction, Receiver, Sender};
        use crate::keys::{KeyRing, RotationPolicy};
        const NOW: u64 = 1_700_000_000_000;
        let ring = || KeyRing::new(1, [5; 32], NOW, RotationPolicy::default());
        let (mut a, mut h) = (ring(), ring());
        let cmds: Vec<Command> = (1..=3).map(verify).collect();
        let packed = pack_commands(&cmds, Budget::default());

        // Host to adapter on control: opens, one sequence number for three.
        let mut tx = Sender::new(Channel::Control, Direction::HostToAdapter);
        let rec = tx.seal_packed(Some(&mut h), NOW, &packed[0]);
        let mut rx = Receiver::new(Channel::Control, Direction::HostToAdapter);
        let o = rx.open(&rec[4..], Some(&mut a), NOW).unwrap();
        assert_eq!((o.seq, o.msg), (1, Message::Commands(cmds.clone())));
        assert_eq!(tx.next_seq(), 2);
        // Replayed: refused like any frame.
        assert_eq!(
            rx.open(&rec[4..], Some(&mut a), NOW).unwrap_err().code(),
            "replay"
        );
        // Tampered: bad tag.
        let mut forged = tx.seal_packed(Some(&mut h), NOW, &packed[0]);
        let n = forged.len();
        forged[n - 40] ^= 1;
        assert_eq!(
            rx.open(&forged[4..], Some(&mut a), NOW).unwrap_err().code(),
            "bad-tag"
        );

        // `commands` from an adapter, `replies` from the host or on a bulk
        // stream: misrouted.
        let mut up = Sender::new(Channel::Control, Direction::AdapterToHost);
        let rec = up.seal_packed(Some(&mut a), NOW, &packed[0]);
        let mut host_rx = Receiver::new(Channel::Control, Direction::AdapterToHost);
        assert_eq!(
            host_rx
                .open(&rec[4..], Some(&mut h), NOW)
                .unwrap_err()
                .code(),
            "misrouted"
        );
        let replies: Vec<Reply> = (1..=2)
            .map(|i| Reply::ok(i, serde_json::json!({})))
            .collect();
        let rp = pack_replies(&replies, Budget::default());
        // (The misrouted frame did not use up its number: seq 1 again.)
        let mut up = Sender::new(Channel::Control, Direction::AdapterToHost);
        let rec = up.seal_packed(Some(&mut a), NOW, &rp[0]);
        assert_eq!(
            host_rx.open(&rec[4..], Some(&mut h), NOW).unwrap().msg,
            Message::Replies(replies)
        );
        let mut bulk = Sender::new(Channel::Bulk, Direction::AdapterToHost);
        let rec = bulk.seal_packed(Some(&mut a), NOW, &rp[0]);
        let mut bulk_rx = Receiver::new(Channel::Bulk, Direction::AdapterToHost);
        assert_eq!(
            bulk_rx
                .open(&rec[4..], Some(&mut h), NOW)
                .unwrap_err()
                .code(),
            "misrouted"
        );
    }

    #[test]
    fn hello_without_the_capability_is_an_old_adapter() {
        // An old adapter's hello: the four fields only.
        let hello = crate::msg::Hello {
            protocol: "vibesync/1".into(),
            engine: "e".into(),
            kind: "k".into(),
            nonce: crate::B32([1; 32]),
            batch: false,
        };
        let bytes = Message::Hello(hello.clone()).encode_body();
        assert!(
            !bytes.windows(5).any(|w| w == b"batch"),
            "not written when false"
        );
        let Message::Hello(back) = Message::decode_body("hello", &bytes).unwrap() else {
            panic!()
        };
        assert!(!back.batch);
        let new = crate::msg::Hello {
            batch: true,
            ..hello
        };
        let Message::Hello(back) =
            Message::decode_body("hello", &Message::Hello(new).encode_body()).unwrap()
        else {
            panic!()
        };
        assert!(back.batch);
    }
}
