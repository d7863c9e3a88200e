//! The compact forms an intent crosses the host/guest boundary in, and their
//! inverses.
//!
//! The canonical ABI copies every string of a `list<string>` or of a
//! `list<leaf>` with its own call into the guest's allocator, which made the
//! lowering of a 1000-leaf payload cost more than every rule together. So the
//! `intent` record of `wit/policy.wit` carries:
//! - the op's arguments once, as canonical CBOR; the guest SDK rebuilds the
//!   leaves from it with [`leaves_from_cbor`], which yields exactly what
//!   [`crate::flatten`] yields on the JSON the CBOR was made from;
//! - string lists (`objects`, `engines`) as one text plus end offsets
//!   ([`pack_strings`] / [`unpack_strings`]).
//!
//! Both decoders check everything and fail with a [`WireError`] (the SDK turns
//! it into a deny): the guest never trusts a byte it did not check.

use crate::tree::escape_pointer_token;
use crate::{Leaf, Scalar};

/// Why a compact form could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The payload is not canonical-CBOR-shaped data this crate encodes.
    Cbor { offset: usize, reason: &'static str },
    /// The end offsets of a packed string list do not cut its text.
    Strings { index: usize, reason: &'static str },
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Cbor { offset, reason } => {
                write!(f, "payload-cbor byte {offset}: {reason}")
            }
            WireError::Strings { index, reason } => {
                write!(f, "packed string list entry {index}: {reason}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Deepest nesting [`leaves_from_cbor`] follows (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 256;

/// Pack strings into one text and the byte offset where each one ends.
pub fn pack_strings<S: AsRef<str>>(strings: &[S]) -> (String, Vec<u32>) {
    let mut text = String::with_capacity(strings.iter().map(|s| s.as_ref().len()).sum());
    let mut ends = Vec::with_capacity(strings.len());
    for s in strings {
        text.push_str(s.as_ref());
        ends.push(text.len() as u32);
    }
    (text, ends)
}

/// Inverse of [`pack_strings`]: every end must be ascending, within `text`
/// and on a character boundary.
pub fn unpack_strings(text: &str, ends: &[u32]) -> Result<Vec<String>, WireError> {
    let mut start = 0usize;
    let mut out = Vec::with_capacity(ends.len());
    for (index, &end) in ends.iter().enumerate() {
        let end = end as usize;
        if end < start || end > text.len() {
            return Err(WireError::Strings {
                index,
                reason: "end offset out of order or past the text",
            });
        }
        if !text.is_char_boundary(end) {
            return Err(WireError::Strings {
                index,
                reason: "end offset splits a UTF-8 character",
            });
        }
        out.push(text[start..end].to_owned());
        start = end;
    }
    Ok(out)
}

/// The leaves of a CBOR item, exactly as [`crate::flatten`] gives them for the
/// JSON tree that [`crate::canonical_cbor`] encoded: RFC 6901 pointers in
/// encoded order, integers that fit `i64` as `Int` and other numbers as
/// `Float`, an empty array or map as one `Null` leaf, byte strings as `Bytes`.
/// Rejects indefinite lengths, tags, non-text map keys, invalid UTF-8,
/// nesting deeper than [`MAX_DEPTH`] and trailing bytes.
pub fn leaves_from_cbor(bytes: &[u8]) -> Result<Vec<Leaf>, WireError> {
    let mut d = Decoder {
        bytes,
        pos: 0,
        out: Vec::new(),
        path: String::new(),
    };
    d.item(0)?;
    if d.pos != bytes.len() {
        return Err(d.err("trailing bytes after the payload"));
    }
    Ok(d.out)
}

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
    out: Vec<Leaf>,
    path: String,
}

impl<'a> Decoder<'a> {
    fn err(&self, reason: &'static str) -> WireError {
        WireError::Cbor {
            offset: self.pos,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.err("truncated"));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Initial byte and its argument (definite lengths only).
    fn head(&mut self) -> Result<(u8, u8, u64), WireError> {
        let b = self.take(1)?[0];
        let (major, info) = (b >> 5, b & 0x1f);
        let arg = match info {
            0..=23 => info as u64,
            24 => self.take(1)?[0] as u64,
            25 => u16::from_be_bytes(self.take(2)?.try_into().unwrap()) as u64,
            26 => u32::from_be_bytes(self.take(4)?.try_into().unwrap()) as u64,
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap()),
            _ => return Err(self.err("indefinite length or reserved additional information")),
        };
        Ok((major, info, arg))
    }

    fn len(&self, arg: u64) -> Result<usize, WireError> {
        // Every element takes at least one byte: a longer count is a lie.
        usize::try_from(arg)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.pos)
            .ok_or_else(|| self.err("length longer than the payload"))
    }

    fn text(&mut self, arg: u64) -> Result<&'a str, WireError> {
        let n = self.len(arg)?;
        let raw = self.take(n)?;
        std::str::from_utf8(raw).map_err(|_| self.err("text is not UTF-8"))
    }

    fn leaf(&mut self, value: Scalar) {
        self.out.push(Leaf {
            path: self.path.clone(),
            value,
        });
    }

    fn item(&mut self, depth: usize) -> Result<(), WireError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested deeper than the limit"));
        }
        let (major, info, arg) = self.head()?;
        match major {
            0 => self.leaf(match i64::try_from(arg) {
                Ok(i) => Scalar::Int(i),
                Err(_) => Scalar::Float(arg as f64),
            }),
            1 => self.leaf(match i64::try_from(arg) {
                Ok(n) => Scalar::Int(-1 - n),
                Err(_) => Scalar::Float(-1.0 - arg as f64),
            }),
            2 => {
                let n = self.len(arg)?;
                let b = self.take(n)?.to_vec();
                self.leaf(Scalar::Bytes(b));
            }
            3 => {
                let t = self.text(arg)?.to_owned();
                self.leaf(Scalar::Text(t));
            }
            4 => {
                let n = self.len(arg)?;
                if n == 0 {
                    self.leaf(Scalar::Null);
                }
                for i in 0..n {
                    let len = self.path.len();
                    self.path.push('/');
                    self.path.push_str(itoa(i, &mut [0u8; 20]));
                    self.item(depth + 1)?;
                    self.path.truncate(len);
                }
            }
            5 => {
                let n = self.len(arg)?;
                if n == 0 {
                    self.leaf(Scalar::Null);
                }
                for _ in 0..n {
                    let (kmajor, _, karg) = self.head()?;
                    if kmajor != 3 {
                        return Err(self.err("map key is not text"));
                    }
                    let key = self.text(karg)?;
                    let len = self.path.len();
                    self.path.push('/');
                    if key.contains(['~', '/']) {
                        self.path.push_str(&escape_pointer_token(key));
                    } else {
                        self.path.push_str(key);
                    }
                    self.item(depth + 1)?;
                    self.path.truncate(len);
                }
            }
            6 => return Err(self.err("tagged items are not part of the payload encoding")),
            _ => self.leaf(match (info, arg) {
                (20, _) => Scalar::Bool(false),
                (21, _) => Scalar::Bool(true),
                (22, _) | (23, _) => Scalar::Null,
                (25, h) => Scalar::Float(half_to_f64(h as u16)),
                (26, s) => Scalar::Float(f32::from_bits(s as u32) as f64),
                (27, d) => Scalar::Float(f64::from_bits(d)),
                _ => return Err(self.err("unknown simple value")),
            }),
        }
        Ok(())
    }
}

/// Decimal digits of `i` without allocating.
fn itoa(mut i: usize, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (i % 10) as u8;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

/// IEEE 754 half precision to double (exact).
fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let mant = (h & 0x3ff) as f64;
    sign * match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mant / 1024.0) * 2f64.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_lenient;
    use crate::{canonical_cbor, flatten};
    use serde_json::json;

    /// Leaves compare with NaN equal to NaN (flatten and the decoder must agree on it too).
    fn same(a: &[Leaf], b: &[Leaf]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.path == y.path
                    && match (&x.value, &y.value) {
                        (Scalar::Float(p), Scalar::Float(q)) => {
                            p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan())
                        }
                        (p, q) => p == q,
                    }
            })
    }

    fn round_trip(v: &serde_json::Value) {
        let decoded = leaves_from_cbor(&canonical_cbor(v)).expect("decodes");
        assert!(
            same(&decoded, &flatten(v)),
            "{v}\n decoded {decoded:?}\n flatten {:?}",
            flatten(v)
        );
    }

    #[test]
    fn decoding_canonical_cbor_gives_the_flattened_leaves() {
        for v in [
            json!(null),
            json!(0),
            json!(-1),
            json!(23),
            json!(24),
            json!(1000000000000u64),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(1.0),
            json!(-0.0),
            json!(1.1),
            json!(65504.0),
            json!(100000.0),
            json!(1e300),
            json!(5.960464477539063e-8),
            json!(3.4028234663852886e38),
            json!(""),
            json!("ü"),
            json!([]),
            json!({}),
            json!({"a": [], "b": {}}),
            json!({"a~b": {"c/d": 1}, "": 2, "zz": [true, false, null]}),
            json!({"id": "obj-1", "translation": [1.0, 2.0, 3.0], "rotation": [0, 0, 0, 1], "scale": [1.5, 1e-9, -7]}),
            json!({"ids": (0..300).map(|i| format!("obj-{i}")).collect::<Vec<_>>(), "frame": true}),
            json!([[[[[1]]]], {"x": [{"y": "z"}]}]),
        ] {
            round_trip(&v);
        }
        round_trip(&parse_lenient(r#"{"q": ["NaN", "Infinity", "-Infinity", 2]}"#).unwrap());
    }

    #[test]
    fn every_fixture_payload_round_trips() {
        let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let mut cases = 0;
        for p in ["firewall", "nan-audit", "validation"] {
            for f in ["benign.json", "hostile.json"] {
                let path = policies.join(p).join("fixtures").join(f);
                let file =
                    crate::FixtureFile::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
                for case in &file.cases {
                    round_trip(&case.args);
                    cases += 1;
                }
            }
        }
        assert!(cases >= 180, "{cases} fixture cases");
    }

    #[test]
    fn malformed_payloads_are_refused() {
        for (bytes, why) in [
            (&[][..], "truncated"),
            (&[0x82, 0x01][..], "length"),
            (&[0x19, 0x01][..], "truncated"),
            (&[0x63, 0x61][..], "length"),
            (&[0x01, 0x02][..], "trailing"),
            (&[0x9f, 0x01, 0xff][..], "indefinite"),
            (&[0xa1, 0x01, 0x02][..], "key is not text"),
            (&[0x62, 0xff, 0xfe][..], "UTF-8"),
            (&[0xc0, 0x01][..], "tagged"),
            (
                &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
                "length",
            ),
            (&[0xf8, 0x20][..], "simple"),
        ] {
            let e = leaves_from_cbor(bytes).expect_err(why).to_string();
            assert!(e.contains(why), "{bytes:02x?}: {e}");
        }
        let deep = [vec![0x81u8; MAX_DEPTH + 2], vec![0x01]].concat();
        assert!(
            leaves_from_cbor(&deep)
                .unwrap_err()
                .to_string()
                .contains("deeper")
        );
    }

    #[test]
    fn string_lists_pack_and_unpack() {
        let s = ["obj-1", "", "Würfel", "a/b"];
        let (text, ends) = pack_strings(&s);
        assert_eq!(text, "obj-1Würfela/b");
        assert_eq!(unpack_strings(&text, &ends).unwrap(), s);
        assert_eq!(unpack_strings("", &[]).unwrap(), Vec::<String>::new());
        assert!(
            unpack_strings("abc", &[2, 1])
                .unwrap_err()
                .to_string()
                .contains("order")
        );
        assert!(
            unpack_strings("abc", &[4])
                .unwrap_err()
                .to_string()
                .contains("past")
        );
        assert!(
            unpack_strings("ü", &[1])
                .unwrap_err()
                .to_string()
                .contains("splits")
        );
    }
}
