//! Flattening a JSON tree into the leaves a policy reads.
//!
//! WIT has no recursive types, so the host hands a policy its op's arguments
//! as a flat list of `(RFC 6901 pointer, scalar)` in document order, with map
//! keys in canonical CBOR order (shorter keys first, then bytewise) so the
//! leaves and [`crate::canonical_cbor`] walk the tree the same way.

use serde_json::Value;

use crate::{Leaf, Leaves, ScalarRef, json::as_non_finite};

/// Flatten a JSON tree into leaves (RFC 6901 pointers, document order, map
/// keys sorted as canonical CBOR sorts them, empty map/list -> one Null leaf).
/// JSON numbers that are integers (and fit an `i64`) -> Int, others -> Float.
pub fn flatten(value: &Value) -> Vec<Leaf> {
    let mut out = Vec::new();
    walk(value, &mut String::new(), &mut |path, v| {
        out.push(Leaf {
            path: path.to_owned(),
            value: v.to_owned(),
        })
    });
    out
}

/// [`flatten`] straight into the packed form, with no allocation per leaf.
pub fn flatten_packed(value: &Value) -> Leaves {
    let mut out = Leaves::new();
    walk(value, &mut String::new(), &mut |path, v| out.push(path, v));
    out
}

/// Escape one reference token of a JSON pointer (`~` -> `~0`, `/` -> `~1`).
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Map keys in canonical CBOR order: the encoded keys compared bytewise, which
/// for text keys is shorter first, then bytewise.
pub(crate) fn canonical_key_order(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|(a, _), (b, _)| {
        a.len()
            .cmp(&b.len())
            .then_with(|| a.as_bytes().cmp(b.as_bytes()))
    });
    entries
}

fn walk(value: &Value, path: &mut String, out: &mut impl FnMut(&str, ScalarRef<'_>)) {
    let scalar = match value {
        Value::Null => ScalarRef::Null,
        Value::Bool(b) => ScalarRef::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarRef::Int(i),
            None => ScalarRef::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => ScalarRef::Text(s),
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk(item, path, out);
                path.truncate(len);
            }
            return;
        }
        Value::Object(map) if !map.is_empty() => {
            if let Some(f) = as_non_finite(value) {
                ScalarRef::Float(f)
            } else {
                for (key, item) in canonical_key_order(map) {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&escape_pointer_token(key));
                    walk(item, path, out);
                    path.truncate(len);
                }
                return;
            }
        }
        Value::Array(_) | Value::Object(_) => ScalarRef::Null,
    };
    out(path, scalar);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scalar;
    use serde_json::json;

    fn paths(v: &Value) -> Vec<String> {
        flatten(v).into_iter().map(|l| l.path).collect()
    }

    #[test]
    fn arrays_in_order_keys_in_canonical_order() {
        let v = json!({"translation": [1.0, 2.0, 3.0], "id": "obj-1", "aa": 1, "b": 2});
        assert_eq!(
            paths(&v),
            [
                "/b",
                "/aa",
                "/id",
                "/translation/0",
                "/translation/1",
                "/translation/2"
            ]
        );
    }

    #[test]
    fn integers_and_floats() {
        let v = json!({"a": 3, "b": 3.0, "c": -7, "d": u64::MAX});
        let l = flatten(&v);
        assert_eq!(l[0].value, Scalar::Int(3));
        assert_eq!(l[1].value, Scalar::Float(3.0));
        assert_eq!(l[2].value, Scalar::Int(-7));
        assert_eq!(l[3].value, Scalar::Float(u64::MAX as f64));
    }

    #[test]
    fn empty_containers_keep_one_null_leaf() {
        let v = json!({"ids": [], "meta": {}, "x": null});
        let l = flatten(&v);
        assert_eq!(l.len(), 3);
        assert!(l.iter().all(|l| l.value == Scalar::Null));
        assert_eq!(paths(&v), ["/x", "/ids", "/meta"]);
        assert_eq!(flatten(&json!({}))[0].path, "");
    }

    #[test]
    fn scalar_root_has_empty_path() {
        let l = flatten(&json!("hi"));
        assert_eq!(
            l,
            vec![Leaf {
                path: String::new(),
                value: Scalar::Text("hi".into())
            }]
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let v = json!({"a/b": {"m~n": true}});
        assert_eq!(paths(&v), ["/a~1b/m~0n"]);
    }

    #[test]
    fn nested_document_order() {
        let v = json!({"transform": {"translation": [0, 1], "scale": [1, 1, 1]}, "kind": "mesh"});
        assert_eq!(
            paths(&v),
            [
                "/kind",
                "/transform/scale/0",
                "/transform/scale/1",
                "/transform/scale/2",
                "/transform/translation/0",
                "/transform/translation/1"
            ]
        );
    }
}
