//! Lenient JSON intake: the one way non-finite floats reach a policy.
//!
//! JSON has no NaN or infinity, yet the NaN audit exists to catch exactly
//! those (an engine plug-in or a buggy agent can produce them, and a JSON
//! encoder will often write them as the strings `"NaN"`, `"Infinity"`,
//! `"-Infinity"`). [`parse_lenient`] reads JSON and replaces each string
//! that is *exactly* one of those three spellings by a marker object
//! `{"$vibesync:non-finite": "NaN"}` that [`crate::flatten`] turns into a
//! `Scalar::Float(NaN)` leaf and [`crate::canonical_cbor`] into the CBOR
//! half-precision NaN. Nothing else changes: `"NaN in the title"` stays text.
//!
//! `serde_json::Value` cannot hold a non-finite `f64`, hence the marker. A
//! marker written literally in the input is read the same way; that can only
//! make a payload more suspicious (the NaN audit denies it), never less.

/// The key of the marker object that stands for a non-finite float.
pub const NON_FINITE_KEY: &str = "$vibesync:non-finite";

/// Parse `text` as JSON, reading the strings `"NaN"`, `"Infinity"` and
/// `"-Infinity"` as non-finite floats (see the module docs).
pub fn parse_lenient(text: &str) -> Result<serde_json::Value, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(text)?;
    mark_non_finite(&mut value);
    Ok(value)
}

/// Replace, in place, every string that spells a non-finite float by its marker.
pub fn mark_non_finite(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) if spelled_non_finite(s).is_some() => {
            let spelling = std::mem::take(s);
            *value = non_finite_marker(&spelling);
        }
        Value::Array(items) => items.iter_mut().for_each(mark_non_finite),
        Value::Object(map) => map.values_mut().for_each(mark_non_finite),
        _ => {}
    }
}

/// The marker for one of the three spellings.
fn non_finite_marker(spelling: &str) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert(
        NON_FINITE_KEY.to_owned(),
        serde_json::Value::String(spelling.to_owned()),
    );
    serde_json::Value::Object(map)
}

/// The non-finite float a marker object stands for, if `value` is one.
pub fn as_non_finite(value: &serde_json::Value) -> Option<f64> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    spelled_non_finite(map.get(NON_FINITE_KEY)?.as_str()?)
}

fn spelled_non_finite(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scalar, flatten};

    #[test]
    fn exact_spellings_become_non_finite_floats() {
        let v = parse_lenient(r#"{"t": ["NaN", "Infinity", "-Infinity", 1.5]}"#).unwrap();
        let leaves = flatten(&v);
        let floats: Vec<f64> = leaves.iter().map(|l| l.value.as_f64().unwrap()).collect();
        assert!(floats[0].is_nan());
        assert_eq!(floats[1], f64::INFINITY);
        assert_eq!(floats[2], f64::NEG_INFINITY);
        assert_eq!(floats[3], 1.5);
        assert_eq!(leaves[0].path, "/t/0");
    }

    #[test]
    fn other_strings_stay_text() {
        let v = parse_lenient(r#"{"name": "NaN in the title", "b": "nan", "c": "inf"}"#).unwrap();
        for leaf in flatten(&v) {
            assert!(matches!(leaf.value, Scalar::Text(_)), "{leaf:?}");
        }
    }

    #[test]
    fn marker_needs_exactly_one_key() {
        let v: serde_json::Value = serde_json::json!({ NON_FINITE_KEY: "NaN", "other": 1 });
        assert_eq!(as_non_finite(&v), None);
        let v = serde_json::json!({ NON_FINITE_KEY: "NaN" });
        assert!(as_non_finite(&v).unwrap().is_nan());
    }

    #[test]
    fn invalid_json_is_an_error() {
        assert!(parse_lenient("{\"a\": NaN}").is_err());
    }
}
