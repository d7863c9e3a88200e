//! The confinement's cost. Confinement is irreversible, so the comparison
//! needs two processes: this bench re-executes itself twice in the same run,
//! once unconfined (the baseline) and once under the production profile
//! (`Profile::for_host(..).apply(Mode::Require)`), runs the same criterion
//! workloads in each, then prints confined/unconfined ratios.
//!
//! Workloads: a WAL-like 256-byte append + fdatasync, a 1200-byte UDP round
//! trip through quinn's socket layer on loopback, a wasm instantiate + call
//! through wasmtime, and an open+read+close of a policy file (the Landlock
//! path-walk cost).
//!
//! `cargo bench -p vibesync-sandbox --bench overhead` (rounds:
//! `VIBESYNC_SANDBOX_BENCH_ROUNDS`, default 3).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use std::hint::black_box;
use vibesync_sandbox::{HostPaths, Mode, NetRules, Profile};

const CHILD_ENV: &str = "VIBESYNC_SANDBOX_BENCH_CHILD";
const ROOT_ENV: &str = "VIBESYNC_SANDBOX_BENCH_ROOT";
const ROUNDS_ENV: &str = "VIBESYNC_SANDBOX_BENCH_ROUNDS";
const MODES: [&str; 2] = ["unconfined", "confined"];
const WORKLOADS: &[&str] = &[
    "wal_append_fdatasync",
    "udp_roundtrip_quinn_udp",
    "wasm_instantiate_call",
    "open_read_policy",
];

/// `(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))`
const WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01,
    0x7f, 0x03, 0x02, 0x01, 0x00, 0x07, 0x07, 0x01, 0x03, b'a', b'd', b'd', 0x00, 0x00, 0x0a, 0x09,
    0x01, 0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b,
];

fn main() {
    match std::env::var(CHILD_ENV) {
        Ok(mode) => child(
            &mode,
            PathBuf::from(std::env::var(ROOT_ENV).expect("root dir")),
        ),
        Err(_) => parent(),
    }
}

fn parent() {
    // Alternate the two processes over several rounds so load drift on a
    // shared machine hits both alike; compare the medians of the rounds.
    let rounds: usize = std::env::var(ROUNDS_ENV)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut means = [vec![], vec![]]; // [mode][round][workload]
    for round in 0..rounds {
        for (m, mode) in MODES.iter().enumerate() {
            eprintln!("\n== round {}/{rounds}: {mode} ==", round + 1);
            means[m].push(run_child(mode));
        }
    }
    println!(
        "\nsandbox overhead: median over {rounds} alternating rounds of the criterion mean per iteration"
    );
    println!(
        "{:<26} {:>14} {:>14} {:>8}   per-round ratios",
        "workload", "unconfined", "confined", "ratio"
    );
    for (i, w) in WORKLOADS.iter().enumerate() {
        let base = median(means[0].iter().map(|r: &Vec<f64>| r[i]).collect());
        let conf = median(means[1].iter().map(|r: &Vec<f64>| r[i]).collect());
        let per_round: Vec<String> = (0..rounds)
            .map(|r| format!("{:.3}", means[1][r][i] / means[0][r][i]))
            .collect();
        println!(
            "{w:<26} {:>11.0} ns {:>11.0} ns {:>8.3}   {}",
            base,
            conf,
            conf / base,
            per_round.join(" ")
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run_child(mode: &str) -> Vec<f64> {
    let root = tempfile::tempdir().unwrap();
    for d in ["state", "policies"] {
        std::fs::create_dir(root.path().join(d)).unwrap();
    }
    std::fs::write(
        root.path().join("policies/policy.wasm"),
        vec![0u8; 64 * 1024],
    )
    .unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(std::env::args().skip(1))
        .env(CHILD_ENV, mode)
        .env(ROOT_ENV, root.path())
        .status()
        .expect("re-run the bench as a child");
    assert!(status.success(), "{mode} child failed: {status:?}");
    WORKLOADS
        .iter()
        .map(|w| mean_ns(&root.path().join("state/criterion"), w))
        .collect()
}

fn mean_ns(dir: &Path, workload: &str) -> f64 {
    let path = dir.join(workload).join("new/estimates.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["mean"]["point_estimate"]
        .as_f64()
        .expect("criterion estimates format")
}

fn child(mode: &str, root: PathBuf) {
    let state = root.join("state");
    // Everything a host opens at start-up is opened before apply (criterion
    // probes for gnuplot, a process spawn the profile refuses).
    let mut c = Criterion::default()
        .output_directory(&state.join("criterion"))
        .without_plots()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut wal = OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("bench.wal"))
        .unwrap();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    if mode == "confined" {
        let paths = HostPaths {
            state_dir: state.clone(),
            policy_dir: root.join("policies"),
            cache_dir: None,
            extra_read_only: vec![],
        };
        let net = NetRules {
            udp_listen: Some(b.local_addr().unwrap()),
            tcp_bind: vec![],
            tcp_connect: vec![],
        };
        let report = Profile::for_host(&paths, &net)
            .unwrap()
            .apply(Mode::Require)
            .expect("apply the production profile");
        eprintln!("{}", report.summary());
    }

    let record = [0x42u8; 256];
    c.bench_function(WORKLOADS[0], |bench| {
        bench.iter(|| {
            wal.write_all(&record).unwrap();
            wal.sync_data().unwrap();
        })
    });

    let (sa, sb) = (
        quinn_udp::UdpSocketState::new((&a).into()).unwrap(),
        quinn_udp::UdpSocketState::new((&b).into()).unwrap(),
    );
    let payload = [7u8; 1200];
    let (to_b, to_a) = (b.local_addr().unwrap(), a.local_addr().unwrap());
    let mut buf = vec![0u8; 65536];
    let mut roundtrip = |from: &UdpSocket,
                         fs: &quinn_udp::UdpSocketState,
                         to: &UdpSocket,
                         ts: &quinn_udp::UdpSocketState,
                         dest| {
        let t = quinn_udp::Transmit {
            destination: dest,
            ecn: None,
            contents: &payload,
            segment_size: None,
            src_ip: None,
        };
        fs.send(from.into(), &t).unwrap();
        let mut meta = [quinn_udp::RecvMeta::default()];
        let mut slices = [std::io::IoSliceMut::new(&mut buf)];
        ts.recv(to.into(), &mut slices, &mut meta).unwrap();
        black_box(meta[0].len);
    };
    c.bench_function(WORKLOADS[1], |bench| {
        bench.iter(|| {
            roundtrip(&a, &sa, &b, &sb, to_b);
            roundtrip(&b, &sb, &a, &sa, to_a);
        })
    });

    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, WASM).unwrap();
    c.bench_function(WORKLOADS[2], |bench| {
        bench.iter(|| {
            let mut store = wasmtime::Store::new(&engine, ());
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
            let add = instance
                .get_typed_func::<(i32, i32), i32>(&mut store, "add")
                .unwrap();
            black_box(add.call(&mut store, (2, 3)).unwrap())
        })
    });

    let policy = root.join("policies/policy.wasm");
    let mut bytes = Vec::with_capacity(64 * 1024);
    c.bench_function(WORKLOADS[3], |bench| {
        bench.iter(|| {
            bytes.clear();
            File::open(&policy)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            black_box(bytes.len())
        })
    });
    c.final_summary();
}
