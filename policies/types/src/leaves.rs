//! The packed forms of an intent's leaves and string lists, as they cross
//! into a policy and as the policy reads them.
//!
//! A 1000-leaf payload used to be rebuilt inside every policy: each guest
//! decoded the canonical CBOR into a `Vec<Leaf>` of two heap strings per
//! leaf, which cost more than the three built-in rule sets together. Now the
//! host flattens an op once, into [`Leaves`]: parallel arrays (every path in
//! one text, every text value in another, one kind byte and one 64-bit value
//! per leaf) that lower into a guest as six block copies and that the guest
//! adopts as they are, after an O(n) bounds check ([`Leaves::from_parts`]).
//! Rules read them through borrowed views ([`LeafRef`], [`ScalarRef`]), so
//! nothing is allocated per leaf on either side. [`StringList`] does the same
//! for `objects` and `engines`.
//!
//! The owned [`Leaf`]/[`Scalar`] stay the form of configuration tables,
//! fixture files and JSON, and serde reads and writes both packed types as
//! those lists, so the JSON spelling of an intent did not change.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Leaf, Scalar};

/// Why packed leaves or a packed string list were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The arrays of a leaf table do not fit together.
    Leaves { index: usize, reason: &'static str },
    /// The end offsets of a packed string list do not cut its text.
    Strings { index: usize, reason: &'static str },
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Leaves { index, reason } => write!(f, "leaf table entry {index}: {reason}"),
            WireError::Strings { index, reason } => {
                write!(f, "packed string list entry {index}: {reason}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// `kinds` byte of each scalar type (the WIT `leaf-table` documents them).
pub mod kind {
    pub const NULL: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const FLOAT: u8 = 3;
    pub const TEXT: u8 = 4;
    pub const BYTES: u8 = 5;
}

/// A scalar borrowed from [`Leaves`] (or from a [`Scalar`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalarRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// May be NaN or infinite: that is what `nan-audit` is for.
    Float(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> ScalarRef<'a> {
    /// The value as a float if it is a number (integers widen).
    #[inline]
    pub fn as_f64(self) -> Option<f64> {
        match self {
            ScalarRef::Int(i) => Some(i as f64),
            ScalarRef::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The value as text if it is a string.
    #[inline]
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            ScalarRef::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool if it is one.
    #[inline]
    pub fn as_bool(self) -> Option<bool> {
        match self {
            ScalarRef::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A short name of the scalar's type, for messages (`"float"`, `"text"`...).
    pub fn type_name(self) -> &'static str {
        match self {
            ScalarRef::Null => "null",
            ScalarRef::Bool(_) => "bool",
            ScalarRef::Int(_) => "integer",
            ScalarRef::Float(_) => "float",
            ScalarRef::Text(_) => "text",
            ScalarRef::Bytes(_) => "bytes",
        }
    }

    /// An owned copy.
    pub fn to_owned(self) -> Scalar {
        match self {
            ScalarRef::Null => Scalar::Null,
            ScalarRef::Bool(b) => Scalar::Bool(b),
            ScalarRef::Int(i) => Scalar::Int(i),
            ScalarRef::Float(f) => Scalar::Float(f),
            ScalarRef::Text(s) => Scalar::Text(s.to_owned()),
            ScalarRef::Bytes(b) => Scalar::Bytes(b.to_vec()),
        }
    }
}

impl Scalar {
    /// A borrowed view.
    pub fn as_ref(&self) -> ScalarRef<'_> {
        match self {
            Scalar::Null => ScalarRef::Null,
            Scalar::Bool(b) => ScalarRef::Bool(*b),
            Scalar::Int(i) => ScalarRef::Int(*i),
            Scalar::Float(f) => ScalarRef::Float(*f),
            Scalar::Text(s) => ScalarRef::Text(s),
            Scalar::Bytes(b) => ScalarRef::Bytes(b),
        }
    }
}

/// One leaf of [`Leaves`]: its RFC 6901 pointer ([`LeafRef::path`]) and its
/// scalar ([`LeafRef::value`]), each read only when asked for, so a rule that
/// filters on one never pays for the other.
#[derive(Clone, Copy)]
pub struct LeafRef<'a> {
    leaves: &'a Leaves,
    index: usize,
}

impl<'a> LeafRef<'a> {
    /// The leaf's JSON pointer.
    #[inline]
    pub fn path(self) -> &'a str {
        self.leaves.path(self.index)
    }

    /// The leaf's scalar.
    #[inline]
    pub fn value(self) -> ScalarRef<'a> {
        self.leaves.value(self.index)
    }

    /// An owned copy.
    pub fn to_owned(self) -> Leaf {
        Leaf {
            path: self.path().to_owned(),
            value: self.value().to_owned(),
        }
    }
}

impl PartialEq for LeafRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.path() == other.path() && self.value() == other.value()
    }
}

impl std::fmt::Debug for LeafRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("path", &self.path())
            .field("value", &self.value())
            .finish()
    }
}

/// Leaves in document order, packed as parallel arrays (the WIT
/// `leaf-table`). Every constructor keeps the invariants
/// [`Leaves::from_parts`] checks, so reading never fails.
#[derive(Clone, Default, PartialEq)]
pub struct Leaves {
    paths: StringList,
    kinds: Vec<u8>,
    values: Vec<u64>,
    texts: String,
    bytes: Vec<u8>,
}

/// The arrays of [`Leaves`], borrowed (what the host lowers into a guest).
#[derive(Debug, Clone, Copy)]
pub struct LeafParts<'a> {
    /// Every path, concatenated.
    pub paths: &'a str,
    /// Byte offset in `paths` where each leaf's path ends.
    pub path_ends: &'a [u32],
    /// Each leaf's [`kind`].
    pub kinds: &'a [u8],
    /// Each leaf's value: a bool as 0/1, an integer as its two's complement,
    /// a float as its IEEE 754 bits, text or bytes as `start << 32 | end`,
    /// a byte range of `texts` or `bytes`; 0 for null.
    pub values: &'a [u64],
    pub texts: &'a str,
    pub bytes: &'a [u8],
}

#[inline]
fn range(v: u64) -> (usize, usize) {
    ((v >> 32) as usize, (v & 0xffff_ffff) as usize)
}

/// An offset as a `u32`; the host refuses payloads anywhere near 4 GiB, so
/// this only fails on a broken invariant.
fn offset(n: usize) -> u32 {
    u32::try_from(n).expect("a leaf table is far below 4 GiB")
}

impl Leaves {
    /// No leaves.
    pub fn new() -> Leaves {
        Leaves::default()
    }

    /// Append a leaf.
    pub fn push(&mut self, path: &str, value: ScalarRef<'_>) {
        self.paths.push(path);
        let (k, v) = match value {
            ScalarRef::Null => (kind::NULL, 0),
            ScalarRef::Bool(b) => (kind::BOOL, b as u64),
            ScalarRef::Int(i) => (kind::INT, i as u64),
            ScalarRef::Float(f) => (kind::FLOAT, f.to_bits()),
            ScalarRef::Text(s) => {
                let start = self.texts.len() as u64;
                self.texts.push_str(s);
                (kind::TEXT, start << 32 | offset(self.texts.len()) as u64)
            }
            ScalarRef::Bytes(b) => {
                let start = self.bytes.len() as u64;
                self.bytes.extend_from_slice(b);
                (kind::BYTES, start << 32 | offset(self.bytes.len()) as u64)
            }
        };
        self.kinds.push(k);
        self.values.push(v);
    }

    /// Adopt arrays received from elsewhere (a guest, from its host), after
    /// checking every offset and kind: O(n), nothing copied.
    pub fn from_parts(
        paths: String,
        path_ends: Vec<u32>,
        kinds: Vec<u8>,
        values: Vec<u64>,
        texts: String,
        bytes: Vec<u8>,
    ) -> Result<Leaves, WireError> {
        let bad = |index, reason| Err(WireError::Leaves { index, reason });
        if kinds.len() != path_ends.len() || values.len() != path_ends.len() {
            return bad(0, "the paths, kinds and values lists differ in length");
        }
        let paths = StringList::from_parts(paths, path_ends).map_err(|e| match e {
            WireError::Strings { index, .. } => WireError::Leaves {
                index,
                reason: "path end out of order, past the text or inside a character",
            },
            other => other,
        })?;
        for (index, (&k, &v)) in kinds.iter().zip(&values).enumerate() {
            let (s, e) = range(v);
            let ok = match k {
                kind::NULL | kind::BOOL | kind::INT | kind::FLOAT => true,
                kind::TEXT => {
                    s <= e
                        && e <= texts.len()
                        && texts.is_char_boundary(s)
                        && texts.is_char_boundary(e)
                }
                kind::BYTES => s <= e && e <= bytes.len(),
                _ => return bad(index, "unknown kind"),
            };
            if !ok {
                return bad(index, "text or bytes range outside its list");
            }
        }
        Ok(Leaves {
            paths,
            kinds,
            values,
            texts,
            bytes,
        })
    }

    /// The arrays, borrowed.
    pub fn parts(&self) -> LeafParts<'_> {
        let (paths, path_ends) = self.paths.parts();
        LeafParts {
            paths,
            path_ends,
            kinds: &self.kinds,
            values: &self.values,
            texts: &self.texts,
            bytes: &self.bytes,
        }
    }

    /// Number of leaves.
    #[inline]
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    // `path` and `value` are the hot loop of every rule (a 1000-leaf op is
    // read several times over), so they index without checks: with checks,
    // merely skipping a text leaf cost ~10 ns, 15x the same loop over owned
    // leaves, because the compiler must keep each slice's panic path.
    //
    // SAFETY (`value`; `StringList::at` for the path): `i < self.len()`,
    // since a `LeafRef` is only made from `0..len` (`iter`, `get`); the
    // per-leaf lists have one length; and every constructor keeps what
    // `from_parts` checks (text and bytes ranges ordered, within their
    // lists, texts cut on character boundaries). So every index and range
    // below is in bounds and every `str` range cuts whole characters.

    /// The path of leaf `i` (`i < len`).
    #[inline]
    fn path(&self, i: usize) -> &str {
        self.paths.at(i)
    }

    /// The value of leaf `i` (`i < len`).
    #[inline]
    fn value(&self, i: usize) -> ScalarRef<'_> {
        debug_assert!(i < self.len());
        let (k, v) = unsafe { (*self.kinds.get_unchecked(i), *self.values.get_unchecked(i)) };
        match k {
            kind::BOOL => ScalarRef::Bool(v != 0),
            kind::INT => ScalarRef::Int(v as i64),
            kind::FLOAT => ScalarRef::Float(f64::from_bits(v)),
            kind::TEXT => {
                let (s, e) = range(v);
                ScalarRef::Text(unsafe { self.texts.get_unchecked(s..e) })
            }
            kind::BYTES => {
                let (s, e) = range(v);
                ScalarRef::Bytes(unsafe { self.bytes.get_unchecked(s..e) })
            }
            _ => ScalarRef::Null,
        }
    }

    /// Every leaf, in document order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = LeafRef<'_>> + Clone + '_ {
        (0..self.len()).map(|index| LeafRef {
            leaves: self,
            index,
        })
    }

    /// Every leaf's path, in document order (cheaper than [`Leaves::iter`]
    /// when only paths are compared).
    #[inline]
    pub fn paths(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        (0..self.len()).map(|i| self.path(i))
    }

    /// The scalar at exactly `path`, if any.
    #[inline]
    pub fn get(&self, path: &str) -> Option<ScalarRef<'_>> {
        (0..self.len())
            .find(|&i| self.path(i) == path)
            .map(|i| self.value(i))
    }

    /// Owned copies of every leaf.
    pub fn to_vec(&self) -> Vec<Leaf> {
        self.iter().map(LeafRef::to_owned).collect()
    }
}

impl<'l> FromIterator<&'l Leaf> for Leaves {
    fn from_iter<I: IntoIterator<Item = &'l Leaf>>(iter: I) -> Leaves {
        let mut out = Leaves::new();
        for l in iter {
            out.push(&l.path, l.value.as_ref());
        }
        out
    }
}

impl std::fmt::Debug for Leaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Leaves {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(LeafRef::to_owned))
    }
}

impl<'de> Deserialize<'de> for Leaves {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Leaves, D::Error> {
        Ok(Vec::<Leaf>::deserialize(d)?.iter().collect())
    }
}

/// A list of strings packed as one text and the offset where each one ends
/// (the WIT `string-list`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StringList {
    text: String,
    ends: Vec<u32>,
}

impl StringList {
    /// Adopt a packed list, after checking every end offset: ascending,
    /// within `text` and on a character boundary.
    pub fn from_parts(text: String, ends: Vec<u32>) -> Result<StringList, WireError> {
        let mut start = 0usize;
        for (index, &end) in ends.iter().enumerate() {
            let end = end as usize;
            if end < start || end > text.len() || !text.is_char_boundary(end) {
                return Err(WireError::Strings {
                    index,
                    reason: "end offset out of order, past the text or inside a character",
                });
            }
            start = end;
        }
        Ok(StringList { text, ends })
    }

    /// The packed text and end offsets, borrowed.
    pub fn parts(&self) -> (&str, &[u32]) {
        (&self.text, &self.ends)
    }

    /// Number of strings.
    #[inline]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i` (`i < len`), read without checks: `Leaves` reads every
    /// path through here in its rules' hot loops.
    #[inline]
    fn at(&self, i: usize) -> &str {
        debug_assert!(i < self.len());
        // SAFETY: callers pass `i < len`, and every constructor keeps what
        // `from_parts` checks (ends ascending, within `text`, on character
        // boundaries), so the range is in bounds and cuts whole characters.
        unsafe {
            let end = *self.ends.get_unchecked(i) as usize;
            let start = match i {
                0 => 0,
                _ => *self.ends.get_unchecked(i - 1) as usize,
            };
            self.text.get_unchecked(start..end)
        }
    }

    /// Append a string.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(offset(self.text.len()));
    }

    /// Every string, in order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        (0..self.len()).map(|i| self.at(i))
    }

    /// Whether `s` is in the list.
    pub fn contains(&self, s: &str) -> bool {
        self.iter().any(|x| x == s)
    }
}

impl<S: AsRef<str>> FromIterator<S> for StringList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> StringList {
        let mut out = StringList::default();
        for s in iter {
            out.push(s.as_ref());
        }
        out
    }
}

impl From<Vec<String>> for StringList {
    fn from(v: Vec<String>) -> StringList {
        v.iter().collect()
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for StringList {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for StringList {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<'a> IntoIterator for &'a StringList {
    type Item = &'a str;
    type IntoIter = Box<dyn Iterator<Item = &'a str> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl std::fmt::Debug for StringList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for StringList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StringList, D::Error> {
        Ok(Vec::<String>::deserialize(d)?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten;

    fn sample() -> Vec<Leaf> {
        flatten(&serde_json::json!({
            "name": "Crâte", "n": -3, "x": 1.5, "ok": true, "none": null,
            "list": ["a", "", "ü"], "empty": {}
        }))
    }

    #[test]
    fn packing_keeps_every_leaf_in_order() {
        let leaves: Leaves = sample().iter().collect();
        assert_eq!(leaves.to_vec(), sample());
        assert_eq!(leaves.len(), sample().len());
        assert_eq!(leaves.get("/list/2"), Some(ScalarRef::Text("ü")));
        assert_eq!(leaves.get("/list"), None);
        let mut b = Leaves::new();
        b.push("/blob", ScalarRef::Bytes(&[1, 2, 3]));
        assert_eq!(b.get("/blob"), Some(ScalarRef::Bytes(&[1, 2, 3])));
    }

    #[test]
    fn parts_round_trip_through_the_checks() {
        let leaves: Leaves = sample().iter().collect();
        let p = leaves.parts();
        let back = Leaves::from_parts(
            p.paths.into(),
            p.path_ends.into(),
            p.kinds.into(),
            p.values.into(),
            p.texts.into(),
            p.bytes.into(),
        )
        .unwrap();
        assert_eq!(back, leaves);
    }

    #[test]
    fn every_broken_offset_or_kind_is_refused() {
        let leaves: Leaves = sample().iter().collect();
        let p = leaves.parts();
        let text_at = p.kinds.iter().position(|&k| k == kind::TEXT).unwrap();
        type Break<'f> = &'f dyn Fn(&mut Vec<u32>, &mut Vec<u8>, &mut Vec<u64>);
        let build = |f: Break| {
            let (mut e, mut k, mut v) = (p.path_ends.to_vec(), p.kinds.to_vec(), p.values.to_vec());
            f(&mut e, &mut k, &mut v);
            Leaves::from_parts(p.paths.into(), e, k, v, p.texts.into(), p.bytes.into())
        };
        let cases: [(&str, Break); 6] = [
            ("short kinds", &|_, k, _| {
                k.pop();
            }),
            ("path past the text", &|e, _, _| *e.last_mut().unwrap() += 1),
            ("paths out of order", &|e, _, _| e.swap(0, 1)),
            ("unknown kind", &|_, k, _| k[0] = 9),
            ("text past its list", &|_, _, v| {
                v[text_at] = 1 << 32 | 10_000
            }),
            ("text range reversed", &|_, _, v| v[text_at] = 3 << 32 | 1),
        ];
        for (why, f) in cases {
            assert!(build(f).is_err(), "{why} was accepted");
        }
        // Inside a character: "ü" is two bytes.
        let mut l = Leaves::new();
        l.push("/t", ScalarRef::Text("ü"));
        let p = l.parts();
        let split = Leaves::from_parts(
            p.paths.into(),
            p.path_ends.into(),
            p.kinds.into(),
            vec![1],
            p.texts.into(),
            vec![],
        );
        assert!(split.is_err());
    }

    #[test]
    fn string_lists_pack_and_check() {
        let list: StringList = ["obj-1", "", "ü"].into_iter().collect();
        assert_eq!(list.iter().collect::<Vec<_>>(), ["obj-1", "", "ü"]);
        assert!(list.contains("ü") && !list.contains("obj"));
        let (t, e) = list.parts();
        assert_eq!(StringList::from_parts(t.into(), e.into()).unwrap(), list);
        for ends in [vec![6, 5, 7], vec![5, 5, 8], vec![5, 5, 6]] {
            assert!(StringList::from_parts(t.into(), ends).is_err());
        }
    }

    #[test]
    fn serde_spells_both_as_plain_lists() {
        let leaves: Leaves = sample().iter().collect();
        let json = serde_json::to_value(&leaves).unwrap();
        assert_eq!(json, serde_json::to_value(sample()).unwrap());
        assert_eq!(serde_json::from_value::<Leaves>(json).unwrap(), leaves);
        let list: StringList = vec!["a".to_string(), "b".to_string()].into();
        assert_eq!(serde_json::to_string(&list).unwrap(), r#"["a","b"]"#);
    }
}
