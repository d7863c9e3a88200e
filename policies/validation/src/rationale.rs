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
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        .map(str::to_lowercase)
        .collect();
    if text.chars().count() < MIN_CHARS || words.len() < MIN_WORDS {
        return Err(format!(
            "{text:?} is too short (at least {MIN_WORDS} words, {MIN_CHARS} characters)"
        ));
    }
    let mut distinct: Vec<&str> = words.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let meaningful = distinct
        .iter()
        .filter(|w| !PLACEHOLDERS.contains(w))
        .count();
    if meaningful < MIN_DISTINCT {
        return Err(format!("{text:?} is a placeholder or repeats itself"));
    }
    let mut chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    chars.sort_unstable();
    let most = chars
        .chunk_by(|a, b| a == b)
        .map(<[char]>::len)
        .max()
        .unwrap_or(0);
    if most * 2 > chars.len() {
        return Err(format!("{text:?} is mostly one repeated character"));
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
}
