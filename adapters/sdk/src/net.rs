//! The SDK's network thread: connect, handshake, then serve one session
//! (control stream in and out, heartbeats every second, key rotation) and
//! reconnect after a loss, until the engine closes the session.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{RecvStream, SendStream};
use tokio::sync::mpsc;
use vibesync_protocol::{
    AdapterHandshake, Budget, Bye, Channel, CommandBody, Direction, Heartbeat, KeyRing, Message,
    Pairing, Receiver, Reply, Sender, pack_replies,
};

use crate::batch::ReplyBatcher;
use crate::{Outbound, Shared, now_ms};

const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// Replies larger than this go on their own bulk stream.
const BULK_THRESHOLD: usize = 512 << 10;
const STREAM_HEARTBEAT: u8 = 1;
const STREAM_BULK: u8 = 2;

pub fn run(
    shared: Arc<Shared>,
    pairing: Pairing,
    self_tx: mpsc::UnboundedSender<Outbound>,
    mut out: mpsc::UnboundedReceiver<Outbound>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            shared.status().last_error = Some(format!("cannot start the network runtime: {e}"));
            shared.status().state = "closed".into();
            return;
        }
    };
    rt.block_on(async {
        let mut backoff = Duration::from_millis(100);
        while !shared.closing.load(Ordering::Relaxed) {
            let attempt = tokio::select! {
                r = connect_and_serve(&shared, &pairing, &self_tx, &mut out) => r,
                // A connect can take the whole QUIC timeout: closing must not wait for it.
                _ = closed(&shared) => break,
            };
            match attempt {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    let mut st = shared.status();
                    st.last_error = Some(e);
                    st.state = "connecting".into();
                }
            }
            if shared.closing.load(Ordering::Relaxed) {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shared.wake.notified() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    });
    shared.status().state = "closed".into();
}

async fn closed(shared: &Shared) {
    while !shared.closing.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Leave the serving session time to say `bye` first.
    tokio::time::sleep(Duration::from_millis(600)).await;
}

fn client_config(pairing: &Pairing) -> Result<quinn::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let fingerprint = pairing.fingerprint().map_err(|e| e.to_string())?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::verify::Pinned {
            fingerprint,
            provider,
        }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![vibesync_protocol::PROTOCOL.as_bytes().to_vec()];
    let q = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    let mut c = quinn::ClientConfig::new(Arc::new(q));
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_secs(1)));
    t.max_idle_timeout(Some(Duration::from_secs(30).try_into().expect("fits")));
    // Fewer ACK-only packets, as the host asks too (`vibesync-link`).
    let mut acks = quinn::AckFrequencyConfig::default();
    acks.ack_eliciting_threshold(quinn::VarInt::from_u32(10))
        .max_ack_delay(Some(Duration::from_millis(2)));
    t.ack_frequency_config(Some(acks));
    c.transport_config(Arc::new(t));
    Ok(c)
}

enum Read {
    End,
    Frame(Message),
    Refused(String),
    /// Refused, and the stream can accept no later frame
    /// (`Receiver::is_wedged`): the session must end.
    Wedged(String),
}

async fn read(
    rs: &mut RecvStream,
    rx: &mut Receiver,
    ring: Option<&Mutex<KeyRing>>,
    buf: &mut Vec<u8>,
) -> Read {
    let mut len = [0u8; 4];
    if rs.read_exact(&mut len).await.is_err() {
        return Read::End;
    }
    let len = u32::from_be_bytes(len) as usize;
    if let Err(r) = rx.check_len(len) {
        // The host never sends oversize frames: treat as a broken session.
        return Read::Refused(r.to_string());
    }
    buf.resize(len, 0);
    if rs.read_exact(buf).await.is_err() {
        return Read::End;
    }
    let now = now_ms();
    let res = match ring {
        Some(k) => rx.open(buf, Some(&mut k.lock().expect("key ring lock")), now),
        None => rx.open(buf, None, now),
    };
    match res {
        Ok(o) => Read::Frame(o.msg),
        Err(r) if rx.is_wedged() => Read::Wedged(r.to_string()),
        Err(r) => Read::Refused(r.to_string()),
    }
}

async fn connect_and_serve(
    shared: &Arc<Shared>,
    pairing: &Pairing,
    self_tx: &mpsc::UnboundedSender<Outbound>,
    out: &mut mpsc::UnboundedReceiver<Outbound>,
) -> Result<(), String> {
    let addr: SocketAddr = tokio::net::lookup_host(&pairing.endpoint)
        .await
        .map_err(|e| format!("cannot resolve host endpoint `{}`: {e}", pairing.endpoint))?
        .next()
        .ok_or_else(|| format!("host endpoint `{}` resolves to nothing", pairing.endpoint))?;
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("addr")
    } else {
        "[::]:0".parse().expect("addr")
    };
    let mut endpoint =
        quinn::Endpoint::client(bind).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    endpoint.set_default_client_config(client_config(pairing)?);
    let conn = endpoint
        .connect(addr, &pairing.server_name)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let result = serve(shared, pairing, self_tx, out, &conn).await;
    conn.close(0u32.into(), b"adapter done");
    endpoint.wait_idle().await;
    result
}

async fn serve(
    shared: &Arc<Shared>,
    pairing: &Pairing,
    self_tx: &mpsc::UnboundedSender<Outbound>,
    out: &mut mpsc::UnboundedReceiver<Outbound>,
    conn: &quinn::Connection,
) -> Result<(), String> {
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| format!("cannot open the control stream: {e}"))?;
    let mut tx = Sender::new(Channel::Control, Direction::AdapterToHost);
    let mut rx = Receiver::new(Channel::Control, Direction::HostToAdapter);
    let mut buf = Vec::new();
    let secret = pairing.secret().map_err(|e| e.to_string())?;
    let mut nonce = [0u8; 32];
    rand::fill(&mut nonce);
    let mut hs = AdapterHandshake::new(&shared.engine, &shared.kind, secret, nonce);
    let w = |e: quinn::WriteError| format!("control stream write failed: {e}");
    send.write_all(&tx.seal(None, now_ms(), &Message::Hello(hs.hello())))
        .await
        .map_err(w)?;
    let expect = |m: Read, what: &str| -> Result<Message, String> {
        match m {
            Read::Frame(Message::Refused(r)) => Err(format!(
                "host refused the handshake: {}: {}",
                r.code, r.message
            )),
            Read::Frame(m) => Ok(m),
            Read::Refused(r) | Read::Wedged(r) => {
                Err(format!("host frame refused during the handshake: {r}"))
            }
            Read::End => Err(format!(
                "host closed the connection while waiting for `{what}`"
            )),
        }
    };
    let Message::Challenge(ch) =
        expect(read(&mut recv, &mut rx, None, &mut buf).await, "challenge")?
    else {
        return Err("host broke the handshake: expected `challenge`".into());
    };
    send.write_all(&tx.seal(None, now_ms(), &Message::Prove(hs.on_challenge(ch))))
        .await
        .map_err(w)?;
    let Message::Welcome(welcome) =
        expect(read(&mut recv, &mut rx, None, &mut buf).await, "welcome")?
    else {
        return Err("host broke the handshake: expected `welcome`".into());
    };
    hs.on_welcome(&welcome).map_err(|e| e.to_string())?;
    let ring = Arc::new(Mutex::new(KeyRing::new(
        welcome.key_id,
        welcome.key.0,
        now_ms(),
        welcome.rotation,
    )));

    // A new session: commands and replies of the old one are void (the host
    // failed them when the old session dropped).
    shared.inbox.lock().expect("inbox lock").clear();
    let mut carried = Vec::new();
    while let Ok(o) = out.try_recv() {
        // Engine edits are still news: they are sent on the new session.
        if let Outbound::Event(e) = o {
            carried.push(e);
        }
    }
    {
        let mut st = shared.status();
        st.state = if st.panic {
            "frozen".into()
        } else {
            "connected".into()
        };
        st.session_id = Some(welcome.session_id.clone());
        st.sessions += 1;
        st.key_id = welcome.key_id;
        st.last_error = None;
    }

    let mut hb = conn
        .open_uni()
        .await
        .map_err(|e| format!("cannot open the heartbeat stream: {e}"))?;
    hb.write_all(&[STREAM_HEARTBEAT]).await.map_err(w)?;
    let hb_task = tokio::spawn(heartbeats(shared.clone(), hb, ring.clone()));

    // Reading is not cancel-safe, so it runs in its own task. Commands go
    // straight to the main-thread queue from here (no extra hop).
    let (in_tx, mut in_rx) = mpsc::unbounded_channel();
    let reader = {
        let (ring, shared, self_tx) = (ring.clone(), shared.clone(), self_tx.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                let r = read(&mut recv, &mut rx, Some(&ring), &mut buf).await;
                let r = match r {
                    // A new key must be in place before the next frame is
                    // opened, so it is installed here and not in the main loop.
                    Read::Frame(Message::Rekey(k)) => {
                        ring.lock()
                            .expect("ring")
                            .install(k.key_id, k.key.0, now_ms());
                        shared.status().key_id = k.key_id;
                        continue;
                    }
                    Read::Frame(Message::Command(c)) => {
                        on_command(&shared, c, &self_tx);
                        continue;
                    }
                    Read::Frame(Message::Commands(cs)) => {
                        let _ = self_tx.send(Outbound::Batch(cs.iter().map(|c| c.id).collect()));
                        for c in cs {
                            on_command(&shared, c, &self_tx);
                        }
                        continue;
                    }
                    other => other,
                };
                let end = matches!(r, Read::End | Read::Wedged(_));
                if in_tx.send(r).is_err() || end {
                    return;
                }
            }
        })
    };
    for e in carried {
        let rec = tx.seal(
            Some(&mut ring.lock().expect("ring")),
            now_ms(),
            &Message::Event(e),
        );
        send.write_all(&rec).await.map_err(w)?;
    }
    let mut bulk_tx = Sender::new(Channel::Bulk, Direction::AdapterToHost);
    let mut batcher = ReplyBatcher::default();
    #[cfg(feature = "fault-injection")]
    let mut last_record: Vec<u8> = Vec::new();
    let result = loop {
        if shared.closing.load(Ordering::Relaxed) {
            let rec = tx.seal(
                Some(&mut ring.lock().expect("ring")),
                now_ms(),
                &Message::Bye(Bye {
                    reason: "adapter closed".into(),
                }),
            );
            let _ = send.write_all(&rec).await;
            let _ = send.finish();
            let _ = tokio::time::timeout(Duration::from_millis(500), send.stopped()).await;
            break Ok(());
        }
        let hold = batcher
            .deadline_ms()
            .map(|t| Duration::from_millis(t.saturating_sub(now_ms())));
        tokio::select! {
            r = in_rx.recv() => match r {
                None | Some(Read::End) => break Err(conn.close_reason().map_or("host closed the control stream".to_string(), |r| format!("connection lost: {r}"))),
                Some(Read::Refused(e)) => {
                    let mut st = shared.status();
                    st.frames_refused += 1;
                    st.last_error = Some(format!("refused a host frame: {e}"));
                }
                Some(Read::Wedged(e)) => break Err(format!("control stream wedged ({e}): a host frame was refused at the position the stream expected; reconnecting")),
                Some(Read::Frame(m)) => on_message(shared, m)?,
            },
            o = out.recv() => {
                let Some(first) = o else { break Ok(()) };
                // Drain what else is ready: one write for a burst of replies.
                let mut batch = vec![first];
                while batch.len() < 256 {
                    match out.try_recv() {
                        Ok(o) => batch.push(o),
                        Err(_) => break,
                    }
                }
                let now = now_ms();
                let mut records = Vec::new();
                #[cfg_attr(not(feature = "fault-injection"), allow(unused_mut))]
                let mut end = None;
                for o in batch {
                    match o {
                        Outbound::Batch(ids) => batcher.expect(ids),
                        Outbound::Reply(r) => {
                            let group = batcher.offer(r, now);
                            records.extend(seal_replies(&group, &mut tx, &mut bulk_tx, &ring, conn).await?);
                        }
                        Outbound::Event(e) => {
                            records.push(tx.seal(Some(&mut ring.lock().expect("ring")), now, &Message::Event(e)));
                        }
                        #[cfg(feature = "fault-injection")]
                        Outbound::Drop => end = Some("connection dropped by fault injection".to_string()),
                        #[cfg(feature = "fault-injection")]
                        Outbound::Attack(a) => {
                            if let Some(r) = records.last() { last_record.clone_from(r); }
                            records.push(crate::net::attack(a, &mut tx, &ring, &last_record));
                        }
                    }
                }
                #[cfg(feature = "fault-injection")]
                if let Some(r) = records.last() { last_record.clone_from(r); }
                write_records(&mut send, records).await.map_err(w)?;
                if let Some(e) = end {
                    break Err(e);
                }
            }
            _ = tokio::time::sleep(hold.unwrap_or_default()), if hold.is_some() => {
                let mut records = Vec::new();
                for group in batcher.due(now_ms()) {
                    records.extend(seal_replies(&group, &mut tx, &mut bulk_tx, &ring, conn).await?);
                }
                #[cfg(feature = "fault-injection")]
                if let Some(r) = records.last() { last_record.clone_from(r); }
                write_records(&mut send, records).await.map_err(w)?;
            }
            _ = shared.wake.notified() => {}
        }
    };
    hb_task.abort();
    reader.abort();
    result
}

/// Seals one group the batcher released for the control stream: a lone
/// reply as `reply`, the replies of one `commands` frame packed into
/// `replies` frames. A lone reply too large for the control stream goes on
/// a bulk stream of its own. Returns the control records, in order.
async fn seal_replies(
    replies: &[Reply],
    tx: &mut Sender,
    bulk_tx: &mut Sender,
    ring: &Mutex<KeyRing>,
    conn: &quinn::Connection,
) -> Result<Vec<Vec<u8>>, String> {
    let mut records = Vec::new();
    let now = now_ms();
    for p in pack_replies(replies, Budget::default()) {
        if p.count == 1 && p.body.len() > BULK_THRESHOLD {
            let rec = bulk_tx.seal_packed(Some(&mut ring.lock().expect("ring")), now, &p);
            let mut s = conn
                .open_uni()
                .await
                .map_err(|e| format!("cannot open a bulk stream: {e}"))?;
            let w = |e: quinn::WriteError| format!("bulk stream write failed: {e}");
            s.write_all(&[STREAM_BULK]).await.map_err(w)?;
            s.write_all(&rec).await.map_err(w)?;
            let _ = s.finish();
        } else {
            records.push(tx.seal_packed(Some(&mut ring.lock().expect("ring")), now, &p));
        }
    }
    Ok(records)
}

/// Writes control records with one stream write.
async fn write_records(
    send: &mut SendStream,
    records: Vec<Vec<u8>>,
) -> Result<(), quinn::WriteError> {
    match records.len() {
        0 => Ok(()),
        1 => send.write_all(&records[0]).await,
        _ => send.write_all(&records.concat()).await,
    }
}

/// A command from the host: track PANIC, refuse new mutations while frozen
/// without bothering the engine (fail closed), else queue it for `poll`.
fn on_command(
    shared: &Shared,
    c: vibesync_protocol::Command,
    self_tx: &mpsc::UnboundedSender<Outbound>,
) {
    let frozen = {
        let mut st = shared.status();
        match &c.body {
            CommandBody::Freeze { reason } => {
                st.panic = true;
                st.panic_reason = Some(reason.clone());
                st.state = "frozen".into();
            }
            CommandBody::Thaw => {
                st.panic = false;
                st.panic_reason = None;
                st.state = "connected".into();
            }
            _ => {}
        }
        st.panic
            .then(|| st.panic_reason.clone().unwrap_or_default())
    };
    if let Some(reason) = frozen.filter(|_| c.body.is_new_mutation()) {
        let _ = self_tx.send(Outbound::Reply(Reply::err(
            c.id,
            "frozen",
            format!("the adapter is frozen ({reason}); the host must thaw it first"),
        )));
        return;
    }
    shared.inbox.lock().expect("inbox lock").push_back(c);
    shared.inbox_cv.notify_all();
}

fn on_message(shared: &Shared, m: Message) -> Result<(), String> {
    match m {
        Message::Refused(r) => {
            shared.status().last_error =
                Some(format!("host refused a frame: {}: {}", r.code, r.message))
        }
        Message::Bye(b) => return Err(format!("host closed the session: {}", b.reason)),
        other => {
            shared.status().last_error =
                Some(format!("unexpected `{}` from the host", other.kind()))
        }
    }
    Ok(())
}

async fn heartbeats(shared: Arc<Shared>, mut hb: SendStream, ring: Arc<Mutex<KeyRing>>) {
    let mut tx = Sender::new(Channel::Heartbeat, Direction::AdapterToHost);
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tick.tick().await;
        let now = now_ms();
        let last = shared.last_poll_ms.load(Ordering::Relaxed);
        let msg = Message::Heartbeat(Heartbeat {
            last_pump_ms: last,
            pump_age_ms: now.saturating_sub(last),
            busy: shared.busy.lock().expect("busy lock").clone(),
            queue_depth: shared.inbox.lock().expect("inbox lock").len() as u32,
            frozen: shared.status().panic,
        });
        let rec = tx.seal(Some(&mut ring.lock().expect("ring")), now, &msg);
        if hb.write_all(&rec).await.is_err() {
            return;
        }
    }
}

/// Crafts one hostile frame with the session's real key (tests only). None
/// of them consumes a sequence number of the honest sender.
#[cfg(feature = "fault-injection")]
pub(crate) fn attack(
    a: crate::Attack,
    tx: &mut Sender,
    ring: &Mutex<KeyRing>,
    last: &[u8],
) -> Vec<u8> {
    use crate::Attack::*;
    if a == BadBatch {
        // Authentic and in order, so it uses up its number (bad-body).
        let dup = [
            Reply::ok(0, serde_json::json!({})),
            Reply::ok(0, serde_json::json!({})),
        ];
        let packed = pack_replies(&dup, Budget::default());
        return tx.seal_packed(Some(&mut ring.lock().expect("ring")), now_ms(), &packed[0]);
    }
    let r = ring.lock().expect("ring");
    let (kid, key) = (
        r.current_id(),
        *r.lookup(r.current_id(), now_ms()).expect("current key"),
    );
    let body = Message::Event(vibesync_protocol::Event::Change { ops: vec![] }).encode_body();
    let seq = tx.next_seq();
    let now = now_ms();
    let c = Channel::Control as u8;
    let d = Direction::AdapterToHost as u8;
    let seal = |seq, ts, body: &[u8]| {
        vibesync_protocol::seal_raw(kid, Some(&key), c, d, seq, ts, "event", body)
    };
    match a {
        Replay => last.to_vec(),
        // Not the honest next seq: a late frame that is next in order uses
        // its seq up (docs/protocol.md section 3), and an attacker cannot
        // sign one anyway.
        Stale => seal(seq + 1, now - 6_000, &body),
        Future => seal(seq + 1, now + 5_000, &body),
        Reorder => seal(seq + 1, now, &body),
        BadTag => {
            let mut rec = seal(seq, now, &body);
            let n = rec.len();
            rec[n - 1] ^= 0x01;
            rec
        }
        Oversize => {
            let len = 2usize << 20;
            let mut rec = (len as u32).to_be_bytes().to_vec();
            rec.resize(4 + len, 0);
            rec
        }
        DeepNesting => {
            let mut deep = vec![0x81u8; 40];
            deep.push(0);
            seal(seq, now, &deep)
        }
        Garbage => {
            let mut g = [0u8; 64];
            rand::fill(&mut g);
            let mut rec = 64u32.to_be_bytes().to_vec();
            rec.extend_from_slice(&g);
            rec
        }
        BadBatch => unreachable!("sealed above"),
    }
}
