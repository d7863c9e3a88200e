//! `sandbox-probe`: applies the production profile (the same
//! `Profile::for_host` + `apply` that `serve` calls) to itself, then tries,
//! from several threads, what the profile must refuse and what the host must
//! still be able to do, and prints every outcome as one JSON line on stdout.
//! The enforcement tests spawn it; nothing here decides pass or fail.
//!
//! `sandbox-probe <scenario> <root>` where `<root>` holds `state/`,
//! `policies/policy.wasm` and `outside/secret.txt` (created by the test):
//! - `confined`: Mode::Require with no thread before; batteries on the main
//!   thread, a plain thread, tokio workers and tokio's blocking pool; UDP
//!   with quinn's socket layer (GSO/GRO), wasmtime JIT and traps. Then it
//!   waits for a line on stdin, so the test can read `/proc/<pid>/status`.
//! - `pre-thread`: a thread exists before applying: Require must refuse,
//!   BestEffort applies and reports the gap; the old thread is then probed.
//! - `kill`: applies, then calls `init_module`: the kernel must kill it.
//! - `unconfined`: the harmless attempts without any sandbox, as a control
//!   that the refusals above come from the profile, not from the machine.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde_json::{Value, json};
use vibesync_sandbox::{HostPaths, Mode, NetRules, Profile};

fn errno_name(e: i32) -> String {
    match e {
        libc::EACCES => "EACCES".into(),
        libc::EPERM => "EPERM".into(),
        libc::ENOSYS => "ENOSYS".into(),
        libc::ENOENT => "ENOENT".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::EAFNOSUPPORT => "EAFNOSUPPORT".into(),
        libc::EADDRINUSE => "EADDRINUSE".into(),
        libc::ECONNREFUSED => "ECONNREFUSED".into(),
        other => format!("errno {other}"),
    }
}

fn outcome<T>(r: std::io::Result<T>) -> Value {
    match r {
        Ok(_) => json!({ "ok": true }),
        Err(e) => {
            json!({ "ok": false, "errno": e.raw_os_error().map(errno_name), "error": e.to_string() })
        }
    }
}

/// Result of a raw call returning -1/errno.
fn sys(rc: i64) -> std::io::Result<i64> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn socket(domain: i32, ty: i32, proto: i32) -> std::io::Result<i64> {
    // SAFETY: plain socket(2); the descriptor is closed right away.
    let fd = sys(unsafe { libc::socket(domain, ty, proto) }.into())?;
    unsafe { libc::close(fd as i32) };
    Ok(fd)
}

struct Ctx {
    root: PathBuf,
    tcp_listed: u16,
    tcp_unlisted: u16,
}

/// Everything one thread tries. `dangerous` = false keeps to attempts that
/// are harmless if they succeed (the unconfined control run).
fn battery(ctx: &Ctx, label: &str) -> Value {
    attempts(ctx, label, true)
}

fn attempts(ctx: &Ctx, label: &str, dangerous: bool) -> Value {
    let tid = unsafe { libc::gettid() };
    let outside = ctx.root.join("outside");
    let state = ctx.root.join("state");
    let mut m = BTreeMap::<&str, Value>::new();
    // Must be refused.
    m.insert("read_secret", outcome(fs::read(outside.join("secret.txt"))));
    m.insert("read_etc_shadow", outcome(fs::read("/etc/shadow")));
    m.insert("list_etc", outcome(fs::read_dir("/etc")));
    m.insert(
        "write_outside",
        outcome(File::create(outside.join(format!("new-{tid}.txt")))),
    );
    m.insert(
        "write_policy_dir",
        outcome(File::create(
            ctx.root.join("policies").join(format!("new-{tid}.wasm")),
        )),
    );
    m.insert(
        "raw_socket",
        outcome(socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)),
    );
    m.insert(
        "netlink_socket",
        outcome(socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )),
    );
    m.insert(
        "tcp_bind_unlisted",
        outcome(TcpListener::bind(("127.0.0.1", ctx.tcp_unlisted))),
    );
    m.insert("unlisted_syscall_mlock", {
        let page = [0u8; 1];
        outcome(sys(unsafe {
            libc::syscall(libc::SYS_mlock, page.as_ptr(), 1)
        }))
    });
    if !dangerous {
        return json!({ "label": label, "tid": tid, "attempts": m });
    }
    m.insert("execve_bin_sh", {
        let sh = CString::new("/bin/sh").unwrap();
        let c = CString::new("-c").unwrap();
        let cmd = CString::new("exit 97").unwrap();
        let argv = [sh.as_ptr(), c.as_ptr(), cmd.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        // SAFETY: valid NUL-terminated arrays; on success the process is replaced
        // and exits 97, which the test reports as a failure.
        outcome(sys(unsafe {
            libc::execve(sh.as_ptr(), argv.as_ptr(), envp.as_ptr())
        }
        .into()))
    });
    // SAFETY: ptrace and the raw calls below take integer arguments or
    // null pointers the kernel never dereferences once refused.
    m.insert(
        "ptrace_traceme",
        outcome(sys(unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) })),
    );
    m.insert(
        "ptrace_attach_parent",
        outcome(sys(unsafe {
            libc::ptrace(libc::PTRACE_ATTACH, libc::getppid(), 0, 0)
        })),
    );
    m.insert("process_vm_readv", {
        let mut buf = [0u8; 8];
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: 8,
        };
        let remote = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 8,
        };
        outcome(sys(
            unsafe { libc::process_vm_readv(libc::getppid(), &local, 1, &remote, 1, 0) } as i64,
        ))
    });
    m.insert(
        "packet_socket",
        outcome(socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0)),
    );
    m.insert(
        "icmp_ping_socket",
        outcome(socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP)),
    );
    m.insert(
        "tcp_connect_unlisted",
        outcome(std::net::TcpStream::connect((
            "127.0.0.1",
            ctx.tcp_unlisted,
        ))),
    );
    m.insert(
        "fork",
        outcome(sys(unsafe { libc::fork() }.into()).inspect(|&pid| {
            if pid == 0 {
                // The child of a fork the profile failed to refuse: leave at once.
                unsafe { libc::_exit(98) }
            }
        })),
    );
    m.insert(
        "unshare_user_namespace",
        outcome(sys(unsafe { libc::unshare(libc::CLONE_NEWUSER) }.into())),
    );
    m.insert("mount_tmpfs", {
        let (src, dst, ty) = (
            c"none",
            CString::new(state.to_str().unwrap()).unwrap(),
            c"tmpfs",
        );
        outcome(sys(unsafe {
            libc::mount(src.as_ptr(), dst.as_ptr(), ty.as_ptr(), 0, std::ptr::null())
        }
        .into()))
    });
    m.insert(
        "bpf",
        outcome(sys(unsafe {
            libc::syscall(libc::SYS_bpf, 0, std::ptr::null::<u8>(), 0)
        })),
    );
    m.insert(
        "kill_parent_signal0",
        outcome(sys(unsafe { libc::kill(libc::getppid(), 0) }.into())),
    );
    // Must still work.
    m.insert(
        "state_write_fdatasync_rename",
        outcome(wal_like_append(&state, tid)),
    );
    m.insert(
        "read_policy",
        outcome(fs::read(ctx.root.join("policies").join("policy.wasm"))),
    );
    m.insert(
        "tcp_bind_listed",
        outcome(TcpListener::bind(("127.0.0.1", ctx.tcp_listed))),
    );
    m.insert("getrandom", {
        let mut b = [0u8; 32];
        outcome(sys(
            unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) } as i64,
        ))
    });
    m.insert("spawn_thread", {
        let secret = outside.join("secret.txt");
        match std::thread::Builder::new()
            .name("nested".into())
            .spawn(move || outcome(fs::read(secret)))
        {
            Ok(h) => json!({ "ok": true, "nested_read_secret": h.join().unwrap() }),
            Err(e) => outcome::<()>(Err(e)),
        }
    });
    json!({ "label": label, "tid": tid, "attempts": m })
}

fn wal_like_append(state: &Path, tid: i32) -> std::io::Result<()> {
    let tmp = state.join(format!("{tid}.wal.tmp"));
    let mut f = OpenOptions::new().create(true).append(true).open(&tmp)?;
    f.write_all(b"record\n")?;
    f.sync_data()?;
    fs::rename(&tmp, state.join(format!("{tid}.wal")))
}

/// quinn's UDP layer on tokio sockets: GSO send, GRO/ECN/PKTINFO receive.
async fn udp_roundtrip() -> Value {
    use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
    use std::io::IoSliceMut;
    use tokio::io::Interest;
    let run = async {
        let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let sa = UdpSocketState::new((&a).into())?;
        let sb = UdpSocketState::new((&b).into())?;
        let segments = sa.max_gso_segments().min(4);
        let seg = 1200;
        let payload = vec![0x5a; seg * segments];
        let t = Transmit {
            destination: b.local_addr()?,
            ecn: None,
            contents: &payload,
            segment_size: (segments > 1).then_some(seg),
            src_ip: None,
        };
        a.writable().await?;
        a.try_io(Interest::WRITABLE, || sa.send((&a).into(), &t))?;
        let mut got = 0;
        let mut datagrams = 0;
        while got < payload.len() {
            let mut bufs = [vec![0u8; 65536]];
            let mut slices: Vec<IoSliceMut> = bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            let mut meta = [RecvMeta::default()];
            b.readable().await?;
            let Ok(n) = b.try_io(Interest::READABLE, || {
                sb.recv((&b).into(), &mut slices, &mut meta)
            }) else {
                continue;
            };
            for m in &meta[..n] {
                got += m.len;
                datagrams += m.len.div_ceil(m.stride.max(1));
            }
        }
        std::io::Result::Ok(json!({
            "ok": got == payload.len(),
            "bytes": got,
            "datagrams": datagrams,
            "gso_segments": sa.max_gso_segments(),
            "gro_segments": sb.gro_segments(),
        }))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), run).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => outcome::<()>(Err(e)),
        Err(_) => json!({ "ok": false, "error": "timed out" }),
    }
}

/// A hand-assembled module: `add(i32,i32)->i32`, `boom` (unreachable: SIGILL
/// path), `oob` (load past a 64 KiB memory: SIGSEGV path).
const WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x0e, 0x03, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00, 0x60, 0x00, 0x01,
    0x7f, // types
    0x03, 0x04, 0x03, 0x00, 0x01, 0x02, // functions
    0x05, 0x03, 0x01, 0x00, 0x01, // memory 1 page
    0x07, 0x14, 0x03, 0x03, b'a', b'd', b'd', 0x00, 0x00, 0x04, b'b', b'o', b'o', b'm', 0x00, 0x01,
    0x03, b'o', b'o', b'b', 0x00, 0x02, // exports
    0x0a, 0x17, 0x03, 0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b, 0x03, 0x00, 0x00, 0x0b, 0x09,
    0x00, 0x41, 0x80, 0x80, 0x08, 0x28, 0x02, 0x00, 0x0b, // code
];

fn wasm_jit() -> Value {
    use wasmtime::{Engine, Instance, Module, Store, Trap};
    let run = || -> wasmtime::Result<Value> {
        let engine = Engine::default();
        let module = Module::new(&engine, WASM)?;
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[])?;
        let add = instance.get_typed_func::<(i32, i32), i32>(&mut store, "add")?;
        let sum = add.call(&mut store, (2, 3))?;
        let trap = |r: wasmtime::Result<()>| {
            r.err()
                .and_then(|e| e.downcast_ref::<Trap>().map(|t| format!("{t:?}")))
        };
        let boom = trap(
            instance
                .get_typed_func::<(), ()>(&mut store, "boom")?
                .call(&mut store, ()),
        );
        let oob = trap(
            instance
                .get_typed_func::<(), i32>(&mut store, "oob")?
                .call(&mut store, ())
                .map(drop),
        );
        Ok(json!({ "ok": sum == 5, "add": sum, "boom_trap": boom, "oob_trap": oob }))
    };
    run().unwrap_or_else(|e| json!({ "ok": false, "error": format!("{e:#}") }))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn profile(ctx: &Ctx) -> Profile {
    let paths = HostPaths {
        state_dir: ctx.root.join("state"),
        policy_dir: ctx.root.join("policies"),
        cache_dir: None,
        extra_read_only: vec![],
    };
    let net = NetRules {
        udp_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        tcp_bind: vec![ctx.tcp_listed],
        tcp_connect: vec![],
    };
    Profile::for_host(&paths, &net).expect("the test prepared the directories")
}

/// Prints the result, then waits for the test to read /proc and say go.
fn emit_and_pause(v: Value) {
    println!("{v}");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

fn confined(ctx: Ctx) {
    let report = profile(&ctx).apply(Mode::Require);
    let (applied, summary, report_json) = match &report {
        Ok(r) => (
            r.fully_enforced(),
            r.summary(),
            serde_json::to_value(r).unwrap(),
        ),
        Err(e) => (false, e.to_string(), Value::Null),
    };
    let mut threads = vec![battery(&ctx, "main")];
    let ctx = std::sync::Arc::new(ctx);
    let c = ctx.clone();
    threads.push(
        std::thread::spawn(move || battery(&c, "plain thread after apply"))
            .join()
            .unwrap(),
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (work, more) = rt.block_on(async {
        let c = ctx.clone();
        let worker = tokio::spawn(async move { battery(&c, "tokio worker") })
            .await
            .unwrap();
        let c = ctx.clone();
        let blocking = tokio::task::spawn_blocking(move || battery(&c, "tokio blocking pool"))
            .await
            .unwrap();
        let udp = tokio::spawn(udp_roundtrip()).await.unwrap();
        let wasm = tokio::spawn(async { wasm_jit() }).await.unwrap();
        (
            json!({ "udp_quinn_udp": udp, "wasm_jit": wasm }),
            vec![worker, blocking],
        )
    });
    threads.extend(more);
    let os_threads = vibesync_sandbox::thread_count().unwrap_or(0);
    emit_and_pause(json!({
        "scenario": "confined",
        "applied": applied,
        "summary": summary,
        "report": report_json,
        "threads": threads,
        "work": work,
        "os_threads_at_pause": os_threads,
    }));
    drop(rt);
}

fn pre_thread(ctx: Ctx) {
    let ctx = std::sync::Arc::new(ctx);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (result_tx, result_rx) = mpsc::channel::<Value>();
    let c = ctx.clone();
    // Started before apply; stays alive through the pause so the test can
    // read its /proc/<pid>/task/<tid>/status.
    let old = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        result_tx
            .send(battery(&c, "thread started before apply"))
            .unwrap();
        let _ = go_rx.recv();
    });
    let p = profile(&ctx);
    let require = p.apply(Mode::Require).err().map(|e| e.to_string());
    let best = p.apply(Mode::BestEffort);
    let (summary, gaps) = match &best {
        Ok(r) => (r.summary(), json!(r.not_enforced)),
        Err(e) => (e.to_string(), Value::Null),
    };
    let main = battery(&ctx, "main");
    go_tx.send(()).unwrap();
    let old_result = result_rx.recv().unwrap();
    emit_and_pause(json!({
        "scenario": "pre-thread",
        "require_error": require,
        "best_effort_summary": summary,
        "best_effort_gaps": gaps,
        "threads": [main, old_result],
    }));
    drop(go_tx);
    old.join().unwrap();
}

fn kill(ctx: Ctx) {
    let report = profile(&ctx).apply(Mode::Require).expect("profile applies");
    println!(
        "{}",
        json!({ "scenario": "kill", "applied": report.fully_enforced() })
    );
    std::io::stdout().flush().unwrap();
    let params = c"";
    // SAFETY: init_module with an empty image; the filter kills before the kernel looks at it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_init_module,
            std::ptr::null::<u8>(),
            0usize,
            params.as_ptr(),
        )
    };
    println!(
        "{}",
        json!({ "survived_init_module": rc, "errno": std::io::Error::last_os_error().raw_os_error() })
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(scenario), Some(root)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: sandbox-probe confined|pre-thread|kill <root with state/ policies/ outside/>"
        );
        std::process::exit(2);
    };
    let tcp_listed = free_port();
    let tcp_unlisted = std::iter::repeat_with(free_port)
        .find(|&p| p != tcp_listed)
        .unwrap();
    let ctx = Ctx {
        root: PathBuf::from(root),
        tcp_listed,
        tcp_unlisted,
    };
    // Sanity: the fixture is readable before confinement (as root, so is /etc/shadow).
    let mut s = String::new();
    File::open(ctx.root.join("outside/secret.txt"))
        .and_then(|mut f| f.read_to_string(&mut s))
        .expect("fixture secret");
    match scenario.as_str() {
        "confined" => confined(ctx),
        "pre-thread" => pre_thread(ctx),
        "kill" => kill(ctx),
        "unconfined" => println!("{}", attempts(&ctx, "unconfined control", false)),
        other => {
            eprintln!("unknown scenario {other}");
            std::process::exit(2);
        }
    }
}
