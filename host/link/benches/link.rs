//! Round trip of a small command host → engine → ack, and frames per second
//! through one session, beside a raw quinn echo over the same loopback, TLS
//! 1.3 and ALPN, measured in the same run as the floor.
//!
//! The engine side is the adapter SDK in-process with a responder thread
//! standing in for the engine main thread (`poll_wait` + `reply`), so the
//! measured path is the whole product path: host task → QUIC → SDK network
//! thread → main-thread queue → reply → QUIC → host.
//!
//! The raw echo server runs on its own OS thread with a current-thread tokio
//! runtime, as the SDK's network thread does, and echoes one message of the
//! size of a sealed `verify` command frame on one long-lived bidirectional
//! stream (the control stream's pattern).
//!
//! Besides criterion's timing, it prints p50/p99 over 3000 sequential round
//! trips and pipelined throughput (64 in flight) for both paths.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use vibesync_adapter_sdk::{Reply, Session};
use vibesync_link::{Link, LinkConfig};
use vibesync_protocol::CommandBody;

struct Vs {
    link: Link,
    session: Arc<Session>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

async fn vibesync() -> Vs {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LinkConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("state"));
    cfg.engines
        .insert("bench".into(), vibesync_link::random_key());
    let link = Link::start(cfg).await.unwrap();
    let session = Arc::new(
        Session::open_pairing(
            link.pairing("bench", "reference").unwrap(),
            "bench",
            "reference",
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (session.clone(), stop.clone());
    std::thread::spawn(move || {
        while !st.load(Ordering::Relaxed) {
            if let Some(c) = s.poll_wait(Duration::from_millis(50)) {
                s.reply(Reply::ok(c.id, serde_json::json!({"hash": "00"})))
                    .unwrap();
            }
        }
    });
    while !link.engine("bench").is_some_and(|e| e.connected) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Vs {
        link,
        session,
        stop,
        _dir: dir,
    }
}

fn small() -> CommandBody {
    CommandBody::Verify {
        tid: 1,
        ids: vec!["obj-1".into()],
    }
}

/// A raw quinn echo server and a connected client stream pair.
struct Raw {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    _conn: quinn::Connection,
}

/// The size of a sealed `verify` command frame (asserted in `report`).
const MSG: usize = 110;

async fn raw() -> Raw {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    tls.alpn_protocols = vec![b"echo".to_vec()];
    let server = quinn::ServerConfig::with_crypto(Arc::new(
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap(),
    ));
    // The echo side runs like the SDK's network thread: its own OS thread
    // with a current-thread runtime, so both paths have the same thread
    // topology up to the engine main thread hop, which is the product's.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ep = quinn::Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
            addr_tx.send(ep.local_addr().unwrap()).unwrap();
            let conn = ep.accept().await.unwrap().await.unwrap();
            let (mut s, mut r) = conn.accept_bi().await.unwrap();
            let mut buf = [0u8; MSG];
            while r.read_exact(&mut buf).await.is_ok() {
                if s.write_all(&buf).await.is_err() {
                    return;
                }
            }
        });
    });
    let addr = addr_rx.recv().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut ctls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ctls.alpn_protocols = vec![b"echo".to_vec()];
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client.set_default_client_config(quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(ctls).unwrap(),
    )));
    let conn = client.connect(addr, "localhost").unwrap().await.unwrap();
    let (mut send, recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0u8; 0]).await.unwrap();
    let mut r = Raw {
        send,
        recv,
        _conn: conn,
    };
    raw_rt(&mut r).await; // the server accepts the stream on first data
    r
}

async fn raw_rt(r: &mut Raw) {
    let msg = [7u8; MSG];
    r.send.write_all(&msg).await.unwrap();
    let mut back = [0u8; MSG];
    r.recv.read_exact(&mut back).await.unwrap();
}

fn pct(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn report(rt: &tokio::runtime::Runtime, vs: &Vs, raw: &mut Raw) {
    use vibesync_protocol::{Channel, Command, Direction, Message, Reply as R, Sender};
    let now = 1_700_000_000_000;
    let cmd = Sender::new(Channel::Control, Direction::HostToAdapter).seal(
        None,
        now,
        &Message::Command(Command {
            id: 5000,
            body: small(),
        }),
    );
    let reply = Sender::new(Channel::Control, Direction::AdapterToHost).seal(
        None,
        now,
        &Message::Reply(R::ok(5000, serde_json::json!({"hash": "00"}))),
    );
    println!(
        "REPORT frame bytes: command {} reply {}; raw echo message {MSG}",
        cmd.len(),
        reply.len()
    );
    const N: usize = 3000;
    let (vs_p, raw_p) = rt.block_on(async {
        for _ in 0..300 {
            vs.link.send("bench", small()).await.unwrap();
            raw_rt(raw).await;
        }
        let mut a = Vec::with_capacity(N);
        let mut b = Vec::with_capacity(N);
        for _ in 0..N {
            let t = Instant::now();
            vs.link.send("bench", small()).await.unwrap();
            a.push(t.elapsed());
            let t = Instant::now();
            raw_rt(raw).await;
            b.push(t.elapsed());
        }
        (pct(a), pct(b))
    });
    println!(
        "REPORT round trip vibesync p50 {:?} p99 {:?}",
        vs_p.0, vs_p.1
    );
    println!(
        "REPORT round trip raw-quinn p50 {:?} p99 {:?}",
        raw_p.0, raw_p.1
    );
    println!(
        "REPORT ratio p50 {:.2}x p99 {:.2}x",
        vs_p.0.as_secs_f64() / raw_p.0.as_secs_f64(),
        vs_p.1.as_secs_f64() / raw_p.1.as_secs_f64()
    );

    // Throughput: 20 000 commands, 64 in flight.
    const T: usize = 20_000;
    let vs_rate = rt.block_on(async {
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let link = vs.link.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..T / 64 {
                    link.send("bench", small()).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        (T / 64 * 64) as f64 / t.elapsed().as_secs_f64()
    });
    let raw_rate = rt.block_on(async {
        let t = Instant::now();
        let msg = [7u8; MSG];
        let mut back = vec![0u8; MSG];
        let mut inflight = 0;
        for _ in 0..T {
            raw.send.write_all(&msg).await.unwrap();
            inflight += 1;
            if inflight == 64 {
                raw.recv.read_exact(&mut back).await.unwrap();
                inflight -= 1;
            }
        }
        for _ in 0..inflight {
            raw.recv.read_exact(&mut back).await.unwrap();
        }
        T as f64 / t.elapsed().as_secs_f64()
    });
    println!(
        "REPORT throughput vibesync {:.0} commands/s = {:.0} frames/s (command + reply)",
        vs_rate,
        vs_rate * 2.0
    );
    println!(
        "REPORT throughput raw-quinn {:.0} echoes/s = {:.0} messages/s",
        raw_rate,
        raw_rate * 2.0
    );
    println!(
        "REPORT throughput ratio raw/vibesync {:.2}x",
        raw_rate / vs_rate
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let vs = rt.block_on(vibesync());
    let mut raw = rt.block_on(raw());
    report(&rt, &vs, &mut raw);

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("round_trip");
    g.bench_function("vibesync_command_ack", |b| {
        b.to_async(&rt)
            .iter(|| async { vs.link.send("bench", small()).await.unwrap() });
    });
    let raw = tokio::sync::Mutex::new(raw);
    g.bench_function("raw_quinn_echo", |b| {
        b.to_async(&rt)
            .iter(|| async { raw_rt(&mut *raw.lock().await).await });
    });
    g.finish();
    c.final_summary();
    vs.stop.store(true, Ordering::Relaxed);
    vs.session.close();
}
