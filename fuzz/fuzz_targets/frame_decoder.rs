//! Fuzzes everything a peer's bytes reach before they are trusted: the CBOR
//! scanner, the frame decoder and the receiver (tag check, time and sequence
//! checks, body decoding), under a session key and in the handshake phase.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vibesync_protocol::{Channel, Direction, KeyRing, Receiver, RotationPolicy, cbor};

const NOW: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let _ = cbor::check(data, 32);
    let _ = vibesync_protocol::decode(data, 32);
    let mut ring = KeyRing::new(1, [5; 32], NOW, RotationPolicy::default());
    for channel in [Channel::Control, Channel::Heartbeat, Channel::Bulk] {
        let mut rx = Receiver::new(channel, Direction::AdapterToHost);
        let _ = rx.open(data, Some(&mut ring), NOW);
        let mut hs = Receiver::new(channel, Direction::HostToAdapter);
        let _ = hs.open(data, None, NOW);
    }
    // Also as a body signed with the right key, so the body decoders are
    // reached, not only the tag check.
    for kind in [
        "command",
        "reply",
        "replies",
        "event",
        "heartbeat",
        "hello",
        "welcome",
        "rekey",
    ] {
        let rec = vibesync_protocol::seal_raw(1, Some(&[5; 32]), 0, 1, 1, NOW, kind, data);
        let mut rx = Receiver::new(Channel::Control, Direction::AdapterToHost);
        let _ = rx.open(&rec[4..], Some(&mut ring), NOW);
    }
});
