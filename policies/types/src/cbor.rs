//! Canonical CBOR (RFC 8949 section 4.2.1) of a JSON tree.
//!
//! Deterministic encoding, written out by hand because it is short and the
//! rules are exact: preferred (shortest) argument lengths, definite lengths
//! only, map keys sorted by their encoded bytes, and every float in the
//! shortest of half/single/double precision that keeps its value (NaN is
//! `f9 7e00`). JSON integers that fit `u64`/`i64` encode as CBOR integers.

use serde_json::Value;

use crate::json::as_non_finite;
use crate::tree::canonical_key_order;

/// Canonical CBOR (RFC 8949 §4.2.1: shortest forms, sorted keys) of a JSON tree.
pub fn canonical_cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                head(0, u, out);
            } else if let Some(i) = n.as_i64() {
                // i < 0 here: CBOR negative integers encode -1 - i.
                head(1, (-1 - i) as u64, out);
            } else {
                float(n.as_f64().unwrap_or(f64::NAN), out);
            }
        }
        Value::String(s) => {
            head(3, s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            head(4, items.len() as u64, out);
            items.iter().for_each(|i| encode(i, out));
        }
        Value::Object(map) => {
            if let Some(f) = as_non_finite(value) {
                float(f, out);
                return;
            }
            head(5, map.len() as u64, out);
            for (k, v) in canonical_key_order(map) {
                head(3, k.len() as u64, out);
                out.extend_from_slice(k.as_bytes());
                encode(v, out);
            }
        }
    }
}

/// A major type with its argument in the shortest form.
fn head(major: u8, arg: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match arg {
        0..=23 => out.push(m | arg as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

/// A float in the shortest precision that represents it exactly.
fn float(x: f64, out: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
    } else if let Some(h) = f16_bits(x) {
        out.push(0xf9);
        out.extend_from_slice(&h.to_be_bytes());
    } else if (x as f32) as f64 == x {
        out.push(0xfa);
        out.extend_from_slice(&(x as f32).to_bits().to_be_bytes());
    } else {
        out.push(0xfb);
        out.extend_from_slice(&x.to_bits().to_be_bytes());
    }
}

/// The IEEE 754 half-precision bits of `x` if `x` (not NaN) is exactly representable.
fn f16_bits(x: f64) -> Option<u16> {
    let sign = if x.is_sign_negative() { 0x8000u16 } else { 0 };
    let a = x.abs();
    if a == 0.0 {
        return Some(sign);
    }
    if a.is_infinite() {
        return Some(sign | 0x7c00);
    }
    let bits = a.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let mantissa = bits & ((1u64 << 52) - 1);
    if (-14..=15).contains(&exp) {
        // Normal half: 10 mantissa bits, the low 42 of the double must be zero.
        if mantissa & ((1u64 << 42) - 1) == 0 {
            return Some(sign | (((exp + 15) as u16) << 10) | (mantissa >> 42) as u16);
        }
        return None;
    }
    // Subnormal half: an integer multiple (< 1024) of 2^-24. Scaling by a
    // power of two is exact here.
    let scaled = a * (1u64 << 24) as f64;
    if exp < -14 && scaled.fract() == 0.0 && scaled < 1024.0 {
        return Some(sign | scaled as u16);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_lenient;
    use serde_json::json;

    fn hex(v: &Value) -> String {
        canonical_cbor(v)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Vectors from RFC 8949 Appendix A (those JSON can express).
    #[test]
    fn rfc8949_appendix_a_vectors() {
        let cases: &[(&str, &str)] = &[
            ("0", "00"),
            ("23", "17"),
            ("24", "1818"),
            ("100", "1864"),
            ("1000", "1903e8"),
            ("1000000", "1a000f4240"),
            ("1000000000000", "1b000000e8d4a51000"),
            ("18446744073709551615", "1bffffffffffffffff"),
            ("-1", "20"),
            ("-10", "29"),
            ("-100", "3863"),
            ("-1000", "3903e7"),
            ("0.0", "f90000"),
            ("-0.0", "f98000"),
            ("1.0", "f93c00"),
            ("1.1", "fb3ff199999999999a"),
            ("1.5", "f93e00"),
            ("65504.0", "f97bff"),
            ("100000.0", "fa47c35000"),
            ("3.4028234663852886e+38", "fa7f7fffff"),
            ("1.0e+300", "fb7e37e43c8800759c"),
            ("5.960464477539063e-8", "f90001"),
            ("0.00006103515625", "f90400"),
            ("-4.0", "f9c400"),
            ("-4.1", "fbc010666666666666"),
            ("false", "f4"),
            ("true", "f5"),
            ("null", "f6"),
            ("\"\"", "60"),
            ("\"a\"", "6161"),
            ("\"IETF\"", "6449455446"),
            ("\"\\u00fc\"", "62c3bc"),
            ("[]", "80"),
            ("[1, 2, 3]", "83010203"),
            ("[1, [2, 3], [4, 5]]", "8301820203820405"),
            ("{}", "a0"),
            ("{\"a\": 1, \"b\": [2, 3]}", "a26161016162820203"),
            ("[\"a\", {\"b\": \"c\"}]", "826161a161626163"),
        ];
        for (json_text, want) in cases {
            let v: Value = serde_json::from_str(json_text).unwrap();
            assert_eq!(hex(&v), *want, "{json_text}");
        }
    }

    #[test]
    fn non_finite_floats() {
        let v = parse_lenient(r#"["NaN", "Infinity", "-Infinity"]"#).unwrap();
        assert_eq!(hex(&v), "83f97e00f97c00f9fc00");
    }

    #[test]
    fn keys_sort_shorter_first_then_bytewise() {
        // "b" (1 byte) before "aa" before "ab".
        let v = json!({"ab": 1, "b": 2, "aa": 3});
        assert_eq!(hex(&v), "a361620262616103626162 01".replace(' ', ""));
    }

    #[test]
    fn subnormal_and_boundary_halves() {
        // Smallest normal half and just-not-representable neighbours.
        assert_eq!(f16_bits(6.103515625e-5), Some(0x0400));
        assert_eq!(f16_bits(65504.0), Some(0x7bff));
        assert_eq!(f16_bits(65520.0), None);
        assert_eq!(f16_bits(2f64.powi(-25)), None);
        assert_eq!(f16_bits(3.0 * 2f64.powi(-24)), Some(3));
    }

    #[test]
    fn output_decodes_with_an_independent_decoder() {
        let v = json!({"id": "obj-1", "translation": [1.5, -2.25, 1e10], "n": -300, "ok": true});
        let bytes = canonical_cbor(&v);
        let mut reader = cbor4ii::core::utils::SliceReader::new(&bytes);
        let decoded: cbor4ii::core::Value =
            cbor4ii::core::dec::Decode::decode(&mut reader).expect("valid CBOR");
        let cbor4ii::core::Value::Map(entries) = decoded else {
            panic!("not a map: {decoded:?}")
        };
        let keys: Vec<_> = entries
            .iter()
            .map(|(k, _)| match k {
                cbor4ii::core::Value::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(keys, ["n", "id", "ok", "translation"]);
    }
}
