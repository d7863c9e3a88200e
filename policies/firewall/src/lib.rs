//! Built-in policy: semantic firewall.
//!
//! First in the pipeline. It reads every string leaf of an op's arguments:
//! - `run_script` code is analysed as what it is — Python for Blender on a
//!   real AST ([`python`]), C# for Unity with a real lexer ([`csharp`]); an
//!   unknown language, or code that does not parse, is refused;
//! - every other string (and every string literal inside the code) is
//!   checked for URLs to non-loopback hosts, `..` path traversal and absolute
//!   paths outside `context.project_root` ([`text`]).
//!
//! Nothing is substring-matched: "Banana", "Information_Panel", a file named
//! "import test.fbx" or a variable `os_name` are ordinary text. Every finding
//! is critical (a deny).

pub mod csharp;
pub mod python;
pub mod script;
pub mod text;

use vibesync_policy_sdk::prelude::*;

const SCRIPT_LANGUAGE: &str = "firewall.script-language";

/// Every rule with its description (what `metadata()` lists).
pub const RULES: &[(&str, &str)] = &[
    (
        SCRIPT_LANGUAGE,
        "run_script names a known language (python, csharp) and carries code",
    ),
    (
        python::SYNTAX,
        "Python scripts parse (unparsable code is refused)",
    ),
    (
        python::IMPORT,
        "no imports of os, subprocess, socket, ctypes, shutil, importlib, sys, builtins and similar; no star or relative imports",
    ),
    (
        python::BUILTIN,
        "no exec, eval, compile, __import__, globals, locals, vars, setattr, delattr, breakpoint, input",
    ),
    (
        python::DUNDER,
        "no dunder access (__globals__, __subclasses__, __builtins__, __dict__...), by attribute, name or string",
    ),
    (
        python::DYNAMIC_ATTR,
        "no getattr with a computed attribute name",
    ),
    (python::OPEN_WRITE, "open() only with a literal read mode"),
    (
        python::BLENDER,
        "no bpy.ops.script, bpy.app.handlers/timers/driver_namespace, bpy.utils.execfile, text .as_module(), add-on install, quit or save",
    ),
    (
        csharp::SYNTAX,
        "C# scripts lex (unterminated strings or comments are refused)",
    ),
    (
        csharp::REFLECTION,
        "no System.Reflection, Assembly.Load, Activator.CreateInstance, Type.GetType or code providers",
    ),
    (
        csharp::PROCESS,
        "no System.Diagnostics.Process / Process.Start",
    ),
    (
        csharp::NATIVE,
        "no DllImport, extern, Marshal or InteropServices",
    ),
    (csharp::UNSAFE, "no unsafe code"),
    (
        csharp::FILE_WRITE,
        "no File.Write*/Append*/Delete/Move, FileStream, StreamWriter and similar",
    ),
    (
        csharp::NETWORK,
        "System.Net and socket/web clients only towards literal loopback hosts",
    ),
    (
        text::URL,
        "no URL to a non-loopback host anywhere in the arguments",
    ),
    (
        text::TRAVERSAL,
        "no `..` path segments anywhere in the arguments",
    ),
    (
        text::ABSOLUTE,
        "no absolute path outside the project root anywhere in the arguments",
    ),
];

/// The policy type exported by the component.
pub struct Firewall;

impl Policy for Firewall {
    fn metadata() -> PolicyInfo {
        policy_info(
            "firewall",
            env!("CARGO_PKG_VERSION"),
            "Refuses scripts and payloads that reach beyond the scene: processes, files, network, code loading.",
            RULES,
        )
    }

    fn evaluate(intent: &Intent, ctx: &Context, config: &Config) -> Verdict {
        evaluate(intent, ctx, config)
    }
}

export_policy!(Firewall);

/// The rules, natively: what the component runs and what the benches call.
pub fn evaluate(intent: &Intent, ctx: &Context, _config: &Config) -> Verdict {
    let mut findings = Findings::new();
    let args = Args::of(intent);
    let script = intent.op == "run_script";
    for (path, value) in args.texts() {
        if script && path == "/code" {
            continue; // analysed below, by language
        }
        scan_text(path, value, &ctx.project_root, &mut findings);
    }
    if script {
        check_script(&args, &ctx.project_root, &mut findings);
    }
    findings.verdict()
}

fn scan_text(path: &str, value: &str, project_root: &str, findings: &mut Findings) {
    for issue in text::scan(value, project_root) {
        findings.critical(issue.rule, path, issue.message);
    }
}

fn check_script(args: &Args, project_root: &str, findings: &mut Findings) {
    let Some(code) = args.str("/code") else {
        findings.critical(
            SCRIPT_LANGUAGE,
            "/code",
            "run_script without code text; send the script as a string in `code`",
        );
        return;
    };
    let report = match args.str("/language") {
        Some("python") => python::analyse(code),
        Some("csharp") => csharp::analyse(code),
        other => {
            findings.critical(
                SCRIPT_LANGUAGE,
                "/language",
                format!("script language {other:?} is not analysable; use \"python\" (Blender) or \"csharp\" (Unity)"),
            );
            return;
        }
    };
    for issue in report.issues {
        findings.critical(issue.rule, "/code", issue.message);
    }
    for s in &report.strings {
        scan_text("/code", s, project_root, findings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lists_every_rule() {
        let info = Firewall::metadata();
        assert_eq!(info.rules.len(), RULES.len());
        let mut ids: Vec<_> = info.rules.iter().map(|r| r.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
    }

    /// Runs the whole fixture corpus through the native rules.
    #[test]
    fn corpus() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        vibesync_policy_sdk::testing::run_corpus(&dir, "firewall", evaluate).assert_passed(30);
    }
}
