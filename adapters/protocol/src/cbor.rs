//! A bounded CBOR well-formedness scanner: the first thing every received
//! frame goes through.
//!
//! It walks one data item without allocating per item and without recursion,
//! refusing what the protocol never sends (indefinite lengths, tags, reserved
//! additional-information values) and anything nested deeper than a limit,
//! *before* a serde decoder (which recurses) sees the bytes. It also splits
//! the frame's top-level map into key/value byte spans so the tag can be
//! checked over the exact received bytes. This is the fuzz target's surface.

use std::ops::Range;

/// Why bytes are not an acceptable CBOR item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("CBOR item ends early at byte {0}")]
    Truncated(usize),
    #[error("CBOR nesting deeper than {max} levels at byte {at}")]
    TooDeep { max: usize, at: usize },
    #[error("CBOR feature not used by the protocol at byte {at}: {what}")]
    Unsupported { at: usize, what: &'static str },
    #[error("CBOR {what} at byte {at} claims {len} entries but only {left} bytes remain")]
    ImpossibleLength {
        at: usize,
        what: &'static str,
        len: u64,
        left: usize,
    },
    #[error("{0} trailing bytes after the CBOR item")]
    Trailing(usize),
}

/// Reads the head of an item at `pos`: (major type, argument, head length).
fn head(buf: &[u8], pos: usize) -> Result<(u8, u64, usize), ScanError> {
    let b = *buf.get(pos).ok_or(ScanError::Truncated(pos))?;
    let major = b >> 5;
    let ai = b & 0x1f;
    let (arg, n) = match ai {
        0..=23 => (ai as u64, 1),
        24..=27 => {
            let len = 1usize << (ai - 24);
            let bytes = buf
                .get(pos + 1..pos + 1 + len)
                .ok_or(ScanError::Truncated(pos))?;
            let mut v = 0u64;
            for &x in bytes {
                v = (v << 8) | x as u64;
            }
            (v, 1 + len)
        }
        28..=30 => {
            return Err(ScanError::Unsupported {
                at: pos,
                what: "reserved additional information",
            });
        }
        _ => {
            return Err(ScanError::Unsupported {
                at: pos,
                what: "indefinite length",
            });
        }
    };
    Ok((major, arg, n))
}

/// Scans one item starting at `start`; returns the offset just past it.
/// `max_depth` counts arrays and maps (a flat map is depth 1).
pub fn skip_item(buf: &[u8], start: usize, max_depth: usize) -> Result<usize, ScanError> {
    // Stack of "items still to read" per open container.
    let mut stack: Vec<u64> = Vec::new();
    let mut pos = start;
    let mut pending: u64 = 1;
    loop {
        if pending == 0 {
            match stack.pop() {
                Some(p) => {
                    pending = p;
                    continue;
                }
                None => return Ok(pos),
            }
        }
        pending -= 1;
        let (major, arg, n) = head(buf, pos)?;
        let at = pos;
        pos += n;
        let left = buf.len() - pos;
        match major {
            0 | 1 => {}
            2 | 3 => {
                if arg > left as u64 {
                    return Err(ScanError::Truncated(at));
                }
                if major == 3 && std::str::from_utf8(&buf[pos..pos + arg as usize]).is_err() {
                    return Err(ScanError::Unsupported {
                        at,
                        what: "text string that is not UTF-8",
                    });
                }
                pos += arg as usize;
            }
            4 | 5 => {
                let (items, what) = if major == 4 {
                    (arg, "array")
                } else {
                    (arg.saturating_mul(2), "map")
                };
                // Every item takes at least one byte: refuse absurd counts
                // before looping over them.
                if items > left as u64 {
                    return Err(ScanError::ImpossibleLength {
                        at,
                        what,
                        len: arg,
                        left,
                    });
                }
                if stack.len() + 1 > max_depth {
                    return Err(ScanError::TooDeep { max: max_depth, at });
                }
                stack.push(pending);
                pending = items;
            }
            6 => return Err(ScanError::Unsupported { at, what: "tag" }),
            _ => {
                // major 7: simple values and floats; the head already
                // consumed the float's bytes.
                let ai = buf[at] & 0x1f;
                if ai == 24 && arg < 32 {
                    return Err(ScanError::Unsupported {
                        at,
                        what: "two-byte simple value below 32",
                    });
                }
            }
        }
    }
}

/// Checks that `buf` is exactly one well-formed item within `max_depth`.
pub fn check(buf: &[u8], max_depth: usize) -> Result<(), ScanError> {
    let end = skip_item(buf, 0, max_depth)?;
    if end != buf.len() {
        return Err(ScanError::Trailing(buf.len() - end));
    }
    Ok(())
}

/// Byte spans of one map entry: (key, value).
pub type Entry = (Range<usize>, Range<usize>);

/// Checks `buf` as [`check`] does and, if it is a map, splits it into
/// (key, value) spans in the same walk; `None` if it is another item.
pub fn map_entries(buf: &[u8], max_depth: usize) -> Result<Option<Vec<Entry>>, ScanError> {
    let (major, arg, n) = head(buf, 0)?;
    if major != 5 || max_depth == 0 {
        return check(buf, max_depth).map(|()| None);
    }
    let left = buf.len() - n;
    if arg.saturating_mul(2) > left as u64 {
        return Err(ScanError::ImpossibleLength {
            at: 0,
            what: "map",
            len: arg,
            left,
        });
    }
    // An entry is one level down; a refusal names the frame's limit.
    let skip = |at| {
        skip_item(buf, at, max_depth - 1).map_err(|e| match e {
            ScanError::TooDeep { at, .. } => ScanError::TooDeep { max: max_depth, at },
            e => e,
        })
    };
    let mut pos = n;
    let mut out = Vec::with_capacity(arg.min(16) as usize);
    for _ in 0..arg {
        let k_end = skip(pos)?;
        let v_end = skip(k_end)?;
        out.push((pos..k_end, k_end..v_end));
        pos = v_end;
    }
    if pos != buf.len() {
        return Err(ScanError::Trailing(buf.len() - pos));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_values_within_the_limit() {
        let v = serde_json::json!({"a": [1, 2, {"b": [true, false, 1.5, "x"]}]});
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &v).unwrap();
        check(&bytes, 4).unwrap();
        assert!(matches!(
            check(&bytes, 3),
            Err(ScanError::TooDeep { max: 3, .. })
        ));
    }

    #[test]
    fn refuses_deep_nesting_without_recursing() {
        // 100 000 nested one-element arrays: would overflow a recursive
        // decoder's stack.
        let mut bytes = vec![0x81u8; 100_000];
        bytes.push(0x00);
        assert!(matches!(
            check(&bytes, 32),
            Err(ScanError::TooDeep { max: 32, .. })
        ));
    }

    #[test]
    fn refuses_impossible_lengths_truncation_and_indefinite_items() {
        // array claiming 2^32 items in 5 bytes
        assert!(matches!(
            check(&[0x9a, 0xff, 0xff, 0xff, 0xff], 8),
            Err(ScanError::ImpossibleLength { .. })
        ));
        // byte string of 10 with 2 bytes
        assert!(matches!(
            check(&[0x4a, 1, 2], 8),
            Err(ScanError::Truncated(0))
        ));
        assert!(matches!(
            check(&[0x9f, 0xff], 8),
            Err(ScanError::Unsupported { .. })
        ));
        assert!(matches!(
            check(&[0xc1, 0x00], 8),
            Err(ScanError::Unsupported { .. })
        ));
        assert!(matches!(
            check(&[0x01, 0x02], 8),
            Err(ScanError::Trailing(1))
        ));
        assert!(matches!(
            check(&[0x62, 0xff, 0xfe], 8),
            Err(ScanError::Unsupported { .. })
        ));
    }

    #[test]
    fn map_entries_splits_the_top_level() {
        let v = serde_json::json!({"k": 1, "b": {"x": [1]}});
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &v).unwrap();
        let e = map_entries(&bytes, 8).unwrap().unwrap();
        assert_eq!(e.len(), 2);
        let keys: Vec<&[u8]> = e.iter().map(|(k, _)| &bytes[k.clone()]).collect();
        assert!(keys.contains(&&[0x61, b'k'][..]));
        // It checks what it splits, with `check`'s verdicts.
        assert_eq!(map_entries(&[0x01], 8), Ok(None));
        for bad in [
            [bytes.clone(), vec![0x00]].concat(),
            bytes.clone(),
            vec![0xb9, 0xff, 0xff, 0x01],
            vec![0xa1, 0x61, b'k', 0x7f],
        ] {
            let depth = if bad == bytes { 2 } else { 8 };
            assert_eq!(
                map_entries(&bad, depth),
                Err(check(&bad, depth).unwrap_err())
            );
        }
    }
}
