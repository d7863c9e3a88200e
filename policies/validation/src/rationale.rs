//! Is a rationale substantive? A cheap, explainable heuristic.
//!
//! The journal is only useful if every change says why. A rationale must have
//! at least [`MIN_WORDS`] words of two or more letters, at least
//! [`MIN_DISTINCT`] distinct ones, at least [`MIN_CHARS`] characters, not be
//! dominated by one character, and not be a known placeholder.

pub const MIN_WORDS: usize = 3;
pub const MIN_DISTINCT: usize = 3;
pub const MIN_CHARS: usize = 12;

/// Words that say nothing on their own ("asdf asdf asdf", "test test test").
const PLACEHOLDERS: &[&str] = &[
    "asdf", "qwerty", "test", "testing", "todo", "tbd", "fixme", "xxx", "foo", "bar", "baz",
    "lorem", "ipsum", "na", "none", "nothing", "because", "stuff", "things", "whatever", "blah",
    "hjkl", "jkl",
];

/// `Ok` if `text` reads as a reason, else what is wrong with it.
pub fn substantive(text: &str) -> Result<(), String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty".to_owned());
    }
    // Every rationale is checked on every op, and nearly all are ASCII: that
    // case is counted in place, without lower-casing or sorting copies.
    let verdict = if text.is_ascii() {
        judge_ascii(text)
    } else {
        judge(text)
    };
    verdict.map_err(|fault| match fault {
        Fault::TooShort => {
            format!("{text:?} is too short (at least {MIN_WORDS} words, {MIN_CHARS} characters)")
        }
        Fault::Placeholder => format!("{text:?} is a placeholder or repeats itself"),
        Fault::OneCharacter => format!("{text:?} is mostly one repeated character"),
    })
}

/// What is wrong with a non-empty, trimmed rationale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    TooShort,
    Placeholder,
    OneCharacter,
}

/// A word: a run of letters, digits and apostrophes with two or more letters.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
}

/// The rules on any text.
fn judge(text: &str) -> Result<(), Fault> {
    let words: Vec<String> = words(text).map(str::to_lowercase).collect();
    if text.chars().count() < MIN_CHARS || words.len() < MIN_WORDS {
        return Err(Fault::TooShort);
    }
    let mut distinct: Vec<&str> = words.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let meaningful = distinct
        .iter()
        .filter(|w| !PLACEHOLDERS.contains(w))
        .count();
    if meaningful < MIN_DISTINCT {
        return Err(Fault::Placeholder);
    }
    let mut chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    chars.sort_unstable();
    let most = chars
        .chunk_by(|a, b| a == b)
        .map(<[char]>::len)
        .max()
        .unwrap_or(0);
    if most * 2 > chars.len() {
        return Err(Fault::OneCharacter);
    }
    Ok(())
}

/// The same rules on ASCII text, without allocating: words compared
/// ignoring ASCII case, the distinct ones counted only up to
/// [`MIN_DISTINCT`], characters counted in a table.
fn judge_ascii(text: &str) -> Result<(), Fault> {
    let mut count = 0;
    let mut meaningful: [&[u8]; MIN_DISTINCT] = [b""; MIN_DISTINCT];
    let mut found = 0;
    let words = text
        .as_bytes()
        .split(|b| !b.is_ascii_alphanumeric() && *b != b'\'')
        .filter(|w| w.iter().filter(|b| b.is_ascii_alphabetic()).count() >= 2);
    for word in words {
        count += 1;
        if found < MIN_DISTINCT
            && !PLACEHOLDERS
                .iter()
                .any(|p| p.as_bytes().eq_ignore_ascii_case(word))
            && !meaningful[..found]
                .iter()
                .any(|m| m.eq_ignore_ascii_case(word))
        {
            meaningful[found] = word;
            found += 1;
        }
    }
    if text.len() < MIN_CHARS || count < MIN_WORDS {
        return Err(Fault::TooShort);
    }
    if found < MIN_DISTINCT {
        return Err(Fault::Placeholder);
    }
    let mut counts = [0u32; 128];
    let mut total = 0;
    // `char::is_whitespace` on ASCII: tab to carriage return, and space.
    for &b in text.as_bytes() {
        if !matches!(b, b'\t'..=b'\r' | b' ') {
            counts[b as usize] += 1;
            total += 1;
        }
    }
    let most = counts.iter().copied().max().unwrap_or(0);
    if most * 2 > total {
        return Err(Fault::OneCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substantive_sentences_pass() {
        for ok in [
            "Move the lamp closer to the desk for better key light",
            "Rename cube to match the naming convention",
            "Scale crates down, they dwarf the player",
        ] {
            assert_eq!(substantive(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn empty_placeholder_and_mash_fail() {
        for bad in [
            "",
            "   ",
            "asdf",
            "asdf asdf asdf asdf",
            "test test test test",
            "fix",
            "aaaaaaaaaaaaaaaa",
            "a a a a a a a a a a",
            "todo: tbd xxx",
            "!!!!!!!!!!!!!!!!!!!!",
            "ok do it",
        ] {
            assert!(substantive(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn non_ascii_text_is_judged_by_the_same_rules() {
        assert_eq!(substantive("Déplace la lampe près du bureau"), Ok(()));
        assert!(substantive("ééééééééééééééé ab cd").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// The ASCII fast path agrees with the general rules on every ASCII
        /// text, drawn from an alphabet that makes words, placeholders,
        /// one dominant letter and every kind of ASCII whitespace likely.
        #[test]
        fn ascii_fast_path_agrees_with_the_general_rules(
            text in "(aaaa|Ab|ba|cd|test|TODO|asdf|'|0|!|[ \\t\\n\\x0b\\x0c\\r]{1,3}){0,30}"
        ) {
            let text = text.trim();
            proptest::prop_assume!(!text.is_empty());
            proptest::prop_assert_eq!(judge_ascii(text), judge(text), "{:?}", text);
        }
    }
}
