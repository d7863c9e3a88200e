//! Per-frame CPU cost of sealing and opening a small control frame (the
//! `verify` command of the link round-trip bench), and, in the same run, the
//! HMAC key setup the key ring now does once per key instead of once per
//! frame: `Hmac::new_from_slice` (two SHA-256 blocks for the pads) against a
//! clone of the keyed state.

use std::hint::black_box;

use criterion::Criterion;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use vibesync_protocol::{
    Channel, Command, CommandBody, Direction, KeyRing, Message, Receiver, RotationPolicy, Sender,
};

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let now = 1_700_000_000_000;
    let msg = Message::Command(Command {
        id: 5000,
        body: CommandBody::Verify {
            tid: 1,
            ids: vec!["obj-1".into()],
        },
    });
    let policy = RotationPolicy {
        rotate_after_frames: u64::MAX,
        ..RotationPolicy::default()
    };

    let mut g = c.benchmark_group("frame");
    g.bench_function("seal_verify_command", |b| {
        let mut ring = KeyRing::new(1, [7; 32], now, policy);
        let mut tx = Sender::new(Channel::Control, Direction::HostToAdapter);
        b.iter(|| black_box(tx.seal(Some(&mut ring), now, black_box(&msg))));
    });
    g.bench_function("seal_and_open_verify_command", |b| {
        let mut tx_ring = KeyRing::new(1, [7; 32], now, policy);
        let mut rx_ring = tx_ring.clone();
        let mut tx = Sender::new(Channel::Control, Direction::HostToAdapter);
        let mut rx = Receiver::new(Channel::Control, Direction::HostToAdapter);
        b.iter(|| {
            let rec = tx.seal(Some(&mut tx_ring), now, &msg);
            black_box(
                rx.open(&rec[4..], Some(&mut rx_ring), now)
                    .expect("honest frame"),
            );
        });
    });
    g.finish();

    let mut g = c.benchmark_group("hmac_110_bytes");
    let data = [0x5au8; 110];
    let key = [7u8; 32];
    g.bench_function("new_from_slice_per_frame", |b| {
        b.iter(|| {
            let mut m = Hmac::<Sha256>::new_from_slice(black_box(&key)).expect("any key length");
            m.update(&data);
            black_box(m.finalize().into_bytes())
        });
    });
    let keyed = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    g.bench_function("clone_keyed_state", |b| {
        b.iter(|| {
            let mut m = black_box(&keyed).clone();
            m.update(&data);
            black_box(m.finalize().into_bytes())
        });
    });
    g.finish();
    c.final_summary();
}
