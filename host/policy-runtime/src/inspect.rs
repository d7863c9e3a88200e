//! `vibesync policy inspect`: what a module is and what it can reach.
//!
//! The report lists the module's hash and size, whether it implements the
//! policy world, every import and export with its interface name and
//! functions, and a capability summary mapping each imported interface to
//! what this host actually grants it (for WASI: nothing that reaches outside).
//! A reviewer reads it before approving the module in `policies.lock`.

use serde::Serialize;
use wasmtime::component::types::ComponentItem;

use crate::hash::Sha256;
use crate::runtime::{LoadError, Runtime};

/// The world every policy must implement.
pub const POLICY_WORLD: &str = "vibesync:policy/policy@0.1.0";

/// One import or export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Interface or function name, e.g. `wasi:filesystem/types@0.2.0`.
    pub name: String,
    /// `instance`, `func`, `type`, `resource`, `module` or `component`.
    pub kind: &'static str,
    /// For an instance: its functions as `name(param, ...)`.
    pub functions: Vec<String>,
}

/// What an imported interface amounts to under this host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Capability {
    pub interface: String,
    pub grant: &'static str,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub sha256: Sha256,
    pub size: u64,
    pub world: &'static str,
    /// `None` if the module implements [`POLICY_WORLD`]; else why not.
    pub world_mismatch: Option<String>,
    pub imports: Vec<Item>,
    pub exports: Vec<Item>,
    pub capabilities: Vec<Capability>,
}

/// What this host grants an import, by interface name. Pure.
pub fn grant(interface: &str) -> &'static str {
    let bare = interface.split('@').next().unwrap_or(interface);
    match bare {
        "vibesync:policy/host" => "log only: capped in size and count, attributed to module hash and tid",
        "vibesync:policy/types" => "types only, no functions",
        b if b.starts_with("wasi:filesystem/") => "NONE: no directory is preopened, every open fails",
        b if b.starts_with("wasi:sockets/") => "NONE: TCP, UDP and name lookup disabled, every address denied",
        "wasi:clocks/wall-clock" | "wasi:clocks/monotonic-clock" => "frozen at the Unix epoch: no real time",
        b if b.starts_with("wasi:random/") => "random bytes only (no state survives an evaluation)",
        "wasi:cli/environment" => "empty: no variables, no arguments, no working directory",
        "wasi:cli/exit" => "exit traps the evaluation (a deny)",
        b if b.starts_with("wasi:cli/std") || b.starts_with("wasi:cli/terminal") => "closed: input empty, output discarded",
        b if b.starts_with("wasi:io/") => "streams and polling over the above only",
        _ => "UNKNOWN to this host: the module will not link",
    }
}

fn item(engine: &wasmtime::Engine, name: &str, ci: &ComponentItem) -> Item {
    let (kind, functions) = match ci {
        ComponentItem::ComponentInstance(inst) => (
            "instance",
            inst.exports(engine)
                .filter_map(|(n, i)| match i.ty {
                    ComponentItem::ComponentFunc(f) => {
                        let params: Vec<&str> = f.params().map(|(p, _)| p).collect();
                        Some(format!("{n}({})", params.join(", ")))
                    }
                    _ => None,
                })
                .collect(),
        ),
        ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => ("func", vec![]),
        ComponentItem::Type(_) => ("type", vec![]),
        ComponentItem::Resource(_) => ("resource", vec![]),
        ComponentItem::Module(_) => ("module", vec![]),
        ComponentItem::Component(_) => ("component", vec![]),
    };
    Item { name: name.to_owned(), kind, functions }
}

/// Inspect `bytes` (compiled through the runtime's cache; no lock needed:
/// inspecting is what a reviewer does before approving).
pub fn inspect(runtime: &Runtime, bytes: &[u8]) -> Result<Report, LoadError> {
    let sha256 = Sha256::of(bytes);
    let (component, _) = runtime.compile("inspected module", bytes, &sha256)?;
    let engine = runtime.engine();
    let ty = component.component_type();
    let imports: Vec<Item> = ty.imports(engine).map(|(n, i)| item(engine, n, &i.ty)).collect();
    let exports: Vec<Item> = ty.exports(engine).map(|(n, i)| item(engine, n, &i.ty)).collect();
    let capabilities = imports
        .iter()
        .map(|i| Capability { interface: i.name.clone(), grant: grant(&i.name) })
        .collect();
    Ok(Report {
        world_mismatch: runtime.typecheck(&component, "inspected module", &sha256).err().map(|e| e.to_string()),
        sha256,
        size: bytes.len() as u64,
        world: POLICY_WORLD,
        imports,
        exports,
        capabilities,
    })
}

impl Report {
    /// Human-readable rendering.
    pub fn render(&self, file: &str) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "file    {file}");
        let _ = writeln!(s, "sha256  {}", self.sha256);
        let _ = writeln!(s, "size    {} bytes", self.size);
        match &self.world_mismatch {
            None => {
                let _ = writeln!(s, "world   {} (implemented)", self.world);
            }
            Some(why) => {
                let _ = writeln!(s, "world   does NOT implement {}: {why}", self.world);
            }
        }
        let _ = writeln!(s, "\nimports ({}), and what this host grants:", self.imports.len());
        for (i, c) in self.imports.iter().zip(&self.capabilities) {
            let _ = writeln!(s, "  {}  [{}]\n      -> {}", i.name, i.kind, c.grant);
            for f in &i.functions {
                let _ = writeln!(s, "        {f}");
            }
        }
        let _ = writeln!(s, "\nexports ({}):", self.exports.len());
        for e in &self.exports {
            let _ = writeln!(s, "  {}  [{}]", e.name, e.kind);
            for f in &e.functions {
                let _ = writeln!(s, "        {f}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::grant;

    #[test]
    fn grants_name_what_reaches_outside() {
        assert!(grant("wasi:filesystem/preopens@0.2.6").starts_with("NONE"));
        assert!(grant("wasi:sockets/tcp@0.2.0").starts_with("NONE"));
        assert!(grant("wasi:clocks/wall-clock@0.2.0").contains("frozen"));
        assert!(grant("vibesync:policy/host@0.1.0").starts_with("log only"));
        assert!(grant("acme:evil/thing").starts_with("UNKNOWN"));
    }
}
