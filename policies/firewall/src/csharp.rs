//! C# (Unity) script analysis: a real lexer, then rules over token sequences.
//!
//! The lexer knows comments, preprocessor lines, regular / verbatim / raw /
//! interpolated strings (the code inside `{...}` holes is lexed as code),
//! character literals and identifiers including `@verbatim` identifiers and
//! `\uXXXX` escapes (C# allows `\u0050rocess` for `Process`). Text inside
//! strings and comments is never matched as code; identifiers are matched
//! whole, so `ProcessMesh` is not `Process`. Unterminated strings or comments
//! are refused (fail closed).
//!
//! The rules look at qualified names (`A.B.C`, with `using X = ...;` aliases
//! expanded) and a few keywords.

use std::collections::BTreeMap;

pub use crate::script::{Issue, Report};

pub const REFLECTION: &str = "firewall.csharp-reflection";
pub const PROCESS: &str = "firewall.csharp-process";
pub const NATIVE: &str = "firewall.csharp-native";
pub const UNSAFE: &str = "firewall.csharp-unsafe";
pub const FILE_WRITE: &str = "firewall.csharp-file-write";
pub const NETWORK: &str = "firewall.csharp-network";
pub const SYNTAX: &str = "firewall.csharp-syntax";

/// One lexical token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// The literal text of a string (escapes not interpreted).
    Str(String),
    Punct(char),
    /// Numbers and character literals: never interesting to the rules.
    Other,
}

/// A token with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

/// Lex `code` into tokens, or say where it is malformed.
pub fn lex(code: &str) -> Result<Vec<Token>, String> {
    let mut lexer = Lexer {
        chars: code.chars().collect(),
        pos: 0,
        line: 1,
        out: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.out)
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    out: Vec<Token>,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.push(Token { tok, line });
    }

    fn run(&mut self) -> Result<(), String> {
        let mut at_line_start = true;
        while let Some(c) = self.peek(0) {
            let line = self.line;
            match c {
                '\n' => {
                    self.bump();
                    at_line_start = true;
                    continue;
                }
                c if c.is_whitespace() => {
                    self.bump();
                    continue;
                }
                '#' if at_line_start => self.skip_line(),
                '/' if self.peek(1) == Some('/') => self.skip_line(),
                '/' if self.peek(1) == Some('*') => {
                    self.pos += 2;
                    loop {
                        match self.bump() {
                            Some('*') if self.peek(0) == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                            None => return Err(format!("line {line}: unterminated /* comment")),
                        }
                    }
                }
                '"' | '$' | '@' if self.string_ahead() => self.string(line)?,
                '\'' => self.char_literal(line)?,
                c if c.is_ascii_digit() => {
                    while self
                        .peek(0)
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    {
                        self.bump();
                    }
                    self.push(Tok::Other, line);
                }
                c if c == '@' || c == '_' || c == '\\' || c.is_alphabetic() => self.ident(line)?,
                c => {
                    self.bump();
                    self.push(Tok::Punct(c), line);
                }
            }
            at_line_start = false;
        }
        Ok(())
    }

    fn skip_line(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    /// Whether a string literal starts here (`"`, `@"`, `$"`, `$@"`, `@$"`, `$$"""`...).
    fn string_ahead(&self) -> bool {
        let mut i = 0;
        while matches!(self.peek(i), Some('$' | '@')) {
            i += 1;
        }
        self.peek(i) == Some('"')
    }

    fn string(&mut self, line: usize) -> Result<(), String> {
        let (mut verbatim, mut dollars) = (false, 0usize);
        while let Some(c @ ('$' | '@')) = self.peek(0) {
            if c == '@' {
                verbatim = true;
            } else {
                dollars += 1;
            }
            self.bump();
        }
        let mut quotes = 0;
        while self.peek(quotes) == Some('"') {
            quotes += 1;
        }
        let mut text = String::new();
        if quotes >= 3 {
            // Raw string: ends at the same run of quotes; holes take `dollars` braces.
            self.pos += quotes;
            loop {
                if (0..quotes).all(|i| self.peek(i) == Some('"')) {
                    self.pos += quotes;
                    break;
                }
                if dollars > 0
                    && (0..dollars).all(|i| self.peek(i) == Some('{'))
                    && self.peek(dollars) != Some('{')
                {
                    self.pos += dollars;
                    self.hole(line)?;
                    continue;
                }
                match self.bump() {
                    Some(c) => text.push(c),
                    None => return Err(format!("line {line}: unterminated raw string")),
                }
            }
        } else if quotes == 2 && !verbatim {
            // The empty string "".
            self.pos += 2;
        } else {
            self.bump(); // opening quote
            loop {
                match self.bump() {
                    None => return Err(format!("line {line}: unterminated string")),
                    Some('"') if verbatim && self.peek(0) == Some('"') => {
                        self.bump();
                        text.push('"');
                    }
                    Some('"') => break,
                    Some('\\') if !verbatim => {
                        text.push('\\');
                        if let Some(c) = self.bump() {
                            text.push(c);
                        }
                    }
                    Some('\n') if !verbatim => {
                        return Err(format!("line {line}: newline in string"));
                    }
                    Some('{') if dollars > 0 && self.peek(0) == Some('{') => {
                        self.bump();
                        text.push('{');
                    }
                    Some('{') if dollars > 0 => self.hole(line)?,
                    Some(c) => text.push(c),
                }
            }
        }
        self.push(Tok::Str(text), line);
        Ok(())
    }

    /// The code inside an interpolation hole, up to its matching `}`: lexed as code.
    fn hole(&mut self, line: usize) -> Result<(), String> {
        let start = self.pos;
        let mut depth = 1;
        let mut in_str = false;
        while depth > 0 {
            match self.bump() {
                None => return Err(format!("line {line}: unterminated interpolation hole")),
                Some('"') => in_str = !in_str,
                Some('{') if !in_str => depth += 1,
                Some('}') if !in_str => depth -= 1,
                Some(_) => {}
            }
        }
        let inner: String = self.chars[start..self.pos - 1].iter().collect();
        let tokens = lex(&inner).map_err(|e| format!("line {line}: in interpolation: {e}"))?;
        self.out.extend(tokens.into_iter().map(|t| Token {
            line: line + t.line - 1,
            ..t
        }));
        Ok(())
    }

    fn char_literal(&mut self, line: usize) -> Result<(), String> {
        self.bump();
        loop {
            match self.bump() {
                Some('\\') => {
                    self.bump();
                }
                Some('\'') => break,
                Some('\n') | None => {
                    return Err(format!("line {line}: unterminated character literal"));
                }
                Some(_) => {}
            }
        }
        self.push(Tok::Other, line);
        Ok(())
    }

    fn ident(&mut self, line: usize) -> Result<(), String> {
        if self.peek(0) == Some('@') {
            self.bump();
        }
        let mut name = String::new();
        loop {
            match self.peek(0) {
                Some(c) if c.is_alphanumeric() || c == '_' => {
                    self.bump();
                    name.push(c);
                }
                Some('\\') if matches!(self.peek(1), Some('u' | 'U')) => {
                    let digits = if self.peek(1) == Some('u') { 4 } else { 8 };
                    let hex: String = (2..2 + digits).filter_map(|i| self.peek(i)).collect();
                    let decoded = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == digits)
                        .and_then(char::from_u32);
                    let Some(c) = decoded else {
                        return Err(format!("line {line}: bad unicode escape in identifier"));
                    };
                    self.pos += 2 + digits;
                    name.push(c);
                }
                _ => break,
            }
        }
        if name.is_empty() {
            let c = self.bump().unwrap_or('\\');
            self.push(Tok::Punct(c), line);
        } else {
            self.push(Tok::Ident(name), line);
        }
        Ok(())
    }
}

/// A qualified name as written (`System.IO.File.WriteAllText`), with the token
/// before it (to see `new`) and its line.
struct Qualified<'a> {
    segments: Vec<&'a str>,
    line: usize,
    after_new: bool,
}

fn qualified_names(tokens: &[Token]) -> Vec<Qualified<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let Tok::Ident(first) = &tokens[i].tok else {
            i += 1;
            continue;
        };
        let after_new = i > 0 && tokens[i - 1].tok == Tok::Ident("new".into());
        let line = tokens[i].line;
        let mut segments = vec![first.as_str()];
        i += 1;
        loop {
            // `.` or `::` (as in `global::System`) followed by an identifier.
            let sep = match (
                tokens.get(i).map(|t| &t.tok),
                tokens.get(i + 1).map(|t| &t.tok),
            ) {
                (Some(Tok::Punct('.')), _) => 1,
                (Some(Tok::Punct(':')), Some(Tok::Punct(':'))) => 2,
                _ => break,
            };
            match tokens.get(i + sep).map(|t| &t.tok) {
                Some(Tok::Ident(next)) => {
                    segments.push(next.as_str());
                    i += sep + 1;
                }
                _ => break,
            }
        }
        out.push(Qualified {
            segments,
            line,
            after_new,
        });
    }
    out
}

fn has_run(segments: &[&str], run: &[&str]) -> bool {
    segments.windows(run.len()).any(|w| w == run)
}

/// Analyse `code`.
pub fn analyse(code: &str) -> Report {
    let tokens = match lex(code) {
        Ok(t) => t,
        Err(e) => {
            return Report {
                issues: vec![Issue {
                    rule: SYNTAX,
                    line: 0,
                    message: format!(
                        "the script does not lex as C# ({e}); send well-formed C#, malformed code is refused"
                    ),
                }],
                strings: Vec::new(),
            };
        }
    };
    let strings: Vec<String> = tokens
        .iter()
        .filter_map(|t| match &t.tok {
            Tok::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let mut issues = Vec::new();
    let mut issue = |rule: &'static str, line: usize, message: String| {
        issues.push(Issue {
            rule,
            line,
            message: format!("line {line}: {message}"),
        });
    };

    for t in &tokens {
        if let Tok::Ident(word) = &t.tok {
            match word.as_str() {
                "unsafe" => issue(
                    UNSAFE,
                    t.line,
                    "`unsafe` code is refused; use safe C#".into(),
                ),
                "extern" => issue(
                    NATIVE,
                    t.line,
                    "`extern` (native code) is refused; call Unity's managed API".into(),
                ),
                "DllImport" | "LibraryImport" => issue(
                    NATIVE,
                    t.line,
                    format!("`{word}` loads native code and is refused; call Unity's managed API"),
                ),
                _ => {}
            }
        }
    }

    // `using Alias = Some.Qualified.Name;` and `using static Some.Type;`
    let mut aliases: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for i in 0..tokens.len().saturating_sub(2) {
        if tokens[i].tok != Tok::Ident("using".into()) {
            continue;
        }
        match (&tokens[i + 1].tok, &tokens[i + 2].tok) {
            (Tok::Ident(alias), Tok::Punct('=')) => {
                if let Some(q) = qualified_names(&tokens[i + 3..]).into_iter().next() {
                    aliases.insert(alias.as_str(), q.segments);
                }
            }
            (Tok::Ident(s), _) if s == "static" => {
                let Some(q) = qualified_names(&tokens[i + 2..]).into_iter().next() else {
                    continue;
                };
                let rule = match q.segments.last().copied() {
                    Some("File" | "Directory") => FILE_WRITE,
                    Some("Activator" | "Assembly" | "Type") => REFLECTION,
                    _ => continue,
                };
                issue(
                    rule,
                    q.line,
                    format!(
                        "`using static {}` hides calls that are refused; call only the scene API",
                        q.segments.join(".")
                    ),
                );
            }
            _ => {}
        }
    }

    let mut network = false;
    for q in qualified_names(&tokens) {
        let mut segments = q.segments.clone();
        if let Some(expanded) = aliases.get(segments[0]) {
            segments.splice(0..1, expanded.iter().copied());
        }
        let first = segments[0];
        let line = q.line;
        if has_run(&segments, &["System", "Reflection"])
            || segments.iter().any(|s| {
                matches!(
                    *s,
                    "MethodInfo"
                        | "FieldInfo"
                        | "PropertyInfo"
                        | "ConstructorInfo"
                        | "MemberInfo"
                        | "BindingFlags"
                        | "GetMethod"
                        | "GetMethods"
                        | "GetField"
                        | "GetFields"
                        | "GetProperty"
                        | "GetProperties"
                        | "GetMember"
                        | "GetMembers"
                        | "InvokeMember"
                        | "GetConstructor"
                        | "GetConstructors"
                        | "DynamicMethod"
                        | "ILGenerator"
                        | "CSharpCodeProvider"
                        | "CodeDomProvider"
                )
            })
            || has_run(&segments, &["Type", "GetType"])
            || first == "Activator"
            || first == "AppDomain"
            || segments.windows(2).any(|w| {
                w[0] == "Assembly" && w[1].starts_with("Load")
                    || w == ["Assembly", "UnsafeLoadFrom"]
            })
        {
            issue(
                REFLECTION,
                line,
                format!(
                    "`{}` uses reflection or dynamic code loading; call the API you need directly",
                    segments.join(".")
                ),
            );
        }
        if has_run(&segments, &["Diagnostics", "Process"])
            || first == "Process" && (segments.len() > 1 || q.after_new)
            || segments.contains(&"ProcessStartInfo")
        {
            issue(
                PROCESS,
                line,
                format!(
                    "`{}` starts or controls processes and is refused",
                    segments.join(".")
                ),
            );
        }
        if has_run(&segments, &["Runtime", "InteropServices"]) || first == "Marshal" {
            issue(
                NATIVE,
                line,
                format!(
                    "`{}` reaches native memory or code and is refused",
                    segments.join(".")
                ),
            );
        }
        let file_write = segments.windows(2).any(|w| {
            matches!(w[0], "File" | "Directory")
                && [
                    "Write",
                    "Append",
                    "Create",
                    "Delete",
                    "Copy",
                    "Move",
                    "Replace",
                    "Open",
                    "SetAttributes",
                    "Encrypt",
                    "Decrypt",
                ]
                .iter()
                .any(|p| w[1].starts_with(p))
        }) || segments.iter().any(|s| {
            matches!(
                *s,
                "FileStream"
                    | "StreamWriter"
                    | "BinaryWriter"
                    | "FileInfo"
                    | "DirectoryInfo"
                    | "TextWriter"
                    | "FileSystemWatcher"
            )
        });
        if file_write {
            issue(
                FILE_WRITE,
                line,
                format!(
                    "`{}` writes, moves or deletes files; scripts may only change the scene",
                    segments.join(".")
                ),
            );
        }
        if has_run(&segments, &["System", "Net"])
            || segments.iter().any(|s| {
                matches!(
                    *s,
                    "WebClient"
                        | "HttpClient"
                        | "TcpClient"
                        | "UdpClient"
                        | "TcpListener"
                        | "Socket"
                        | "WebRequest"
                        | "HttpWebRequest"
                        | "UnityWebRequest"
                        | "Dns"
                        | "WebSocket"
                        | "ClientWebSocket"
                )
            })
        {
            network = true;
        }
    }

    if network {
        let hosts: Vec<String> = strings
            .iter()
            .filter_map(|s| crate::text::host_of(s))
            .collect();
        if hosts.is_empty() {
            issue(NETWORK, 0, "network use without a literal loopback host cannot be checked; only localhost may be reached, written literally".into());
        }
        for host in hosts.iter().filter(|h| !crate::text::is_loopback(h)) {
            issue(
                NETWORK,
                0,
                format!(
                    "network use towards {host:?} is refused; only loopback hosts (localhost, 127.0.0.1, ::1) may be reached"
                ),
            );
        }
    }

    let mut seen = Vec::new();
    issues.retain(|i| {
        let key = (i.rule, i.line);
        let fresh = !seen.contains(&key);
        seen.push(key);
        fresh
    });
    Report { issues, strings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(code: &str) -> Vec<&'static str> {
        analyse(code).issues.into_iter().map(|i| i.rule).collect()
    }

    #[test]
    fn lexes_strings_comments_and_holes() {
        let toks = lex(r#"var s = @"a ""q"" b"; // Process.Start
/* System.Reflection */ var t = $"x{Foo.Bar(1)}y";"#)
        .unwrap();
        let idents: Vec<_> = toks
            .iter()
            .filter_map(|t| match &t.tok {
                Tok::Ident(i) => Some(i.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(idents, ["var", "s", "var", "t", "Foo", "Bar"]);
        assert!(toks.iter().any(|t| t.tok == Tok::Str("a \"q\" b".into())));
    }

    #[test]
    fn unicode_escaped_identifier_is_decoded() {
        assert!(rules(r#"System.Diagnostics.\u0050rocess.Start("x");"#).contains(&PROCESS));
    }

    #[test]
    fn words_in_strings_and_comments_are_not_code() {
        assert_eq!(
            rules(
                r#"// System.Reflection, Process.Start
Debug.Log("System.Diagnostics.Process unsafe DllImport");
void ProcessMesh(Mesh m) { m.RecalculateNormals(); }"#
            ),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn code_in_interpolation_holes_is_checked() {
        assert!(
            rules(r#"Debug.Log($"{System.Diagnostics.Process.Start("calc")}");"#)
                .contains(&PROCESS)
        );
    }

    #[test]
    fn aliases_are_expanded() {
        assert!(rules("using F = System.IO.File; F.WriteAllText(p, s);").contains(&FILE_WRITE));
    }

    #[test]
    fn unterminated_string_fails_closed() {
        assert_eq!(rules(r#"Debug.Log("oops);"#), [SYNTAX]);
    }
}
