//! Moving records between quinn streams and the sans-IO receiver: the only
//! place the host reads frame bytes.

use quinn::{RecvStream, SendStream};
use vibesync_protocol::{KeyRing, Opened, Receiver, Refusal};

/// Bytes of an oversize frame the reader will skip to keep the stream;
/// beyond this the stream is abandoned.
const MAX_DISCARD: usize = 256 << 20;

pub enum Read {
    /// The peer finished the stream at a frame boundary (or reset it).
    End,
    Frame(Opened),
    Refused(Refusal),
}

/// Reads one record and judges it. `keys` is `None` during the handshake.
pub async fn read(
    rs: &mut RecvStream,
    rx: &mut Receiver,
    keys: Option<&std::sync::Mutex<KeyRing>>,
    buf: &mut Vec<u8>,
) -> Read {
    let mut len = [0u8; 4];
    if rs.read_exact(&mut len).await.is_err() {
        return Read::End;
    }
    let len = u32::from_be_bytes(len) as usize;
    if let Err(r) = rx.check_len(len) {
        if len > MAX_DISCARD || discard(rs, len).await.is_err() {
            return Read::End;
        }
        return Read::Refused(r);
    }
    buf.resize(len, 0);
    if rs.read_exact(buf).await.is_err() {
        return Read::End;
    }
    let now = crate::now_ms();
    let res = match keys {
        Some(k) => rx.open(buf, Some(&mut k.lock().expect("key ring lock")), now),
        None => rx.open(buf, None, now),
    };
    match res {
        Ok(o) => Read::Frame(o),
        Err(r) => Read::Refused(r),
    }
}

async fn discard(rs: &mut RecvStream, mut left: usize) -> Result<(), ()> {
    let mut scratch = vec![0u8; 64 << 10];
    while left > 0 {
        let n = left.min(scratch.len());
        rs.read_exact(&mut scratch[..n]).await.map_err(|_| ())?;
        left -= n;
    }
    Ok(())
}

pub async fn write(ss: &mut SendStream, record: &[u8]) -> Result<(), quinn::WriteError> {
    ss.write_all(record).await
}
