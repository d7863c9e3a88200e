//! `vibesync policy inspect`: what a module is and what it can reach.
//!
//! The report lists the module's hash and size, whether it implements the
//! policy world, every import and export with its interface name and
//! functions, and a capability summary mapping each imported interface to
//! what this host actually grants it: the policy world's `log` is granted;
//! every WASI interface is marked NOT GRANTED (it is linked so that modules
//! from toolchains like componentize-py load, with nothing behind it); an
//! interface this host does not link at all is marked UNKNOWN (refused at
//! load).
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

/// Whether this host gives an imported interface anything real.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Part of the policy world: `log` and the shared types.
    Granted,
    /// WASI, linked so that the module loads, but with nothing behind it:
    /// every call fails, returns nothing, or returns a fixed value.
    NotGranted,
    /// Not linked by this host at all: the module is refused at load.
    Unknown,
}

impl Status {
    /// The marker `render` prints in front of the import.
    pub fn marker(self) -> &'static str {
        match self {
            Status::Granted => "granted",
            Status::NotGranted => "NOT GRANTED",
            Status::Unknown => "UNKNOWN, WILL NOT LOAD",
        }
    }
}

/// What an imported interface amounts to under this host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Capability {
    pub interface: String,
    pub status: Status,
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
pub fn grant(interface: &str) -> (Status, &'static str) {
    use Status::*;
    let bare = interface.split('@').next().unwrap_or(interface);
    match bare {
        "vibesync:policy/host" => (
            Granted,
            "log only: capped in size and count, attributed to module hash and tid",
        ),
        "vibesync:policy/types" => (Granted, "types only, no functions"),
        b if b.starts_with("wasi:filesystem/") => {
            (NotGranted, "no directory is preopened, every open fails")
        }
        b if b.starts_with("wasi:sockets/") => (
            NotGranted,
            "TCP, UDP and name lookup disabled, every address denied",
        ),
        "wasi:clocks/wall-clock" | "wasi:clocks/monotonic-clock" => {
            (NotGranted, "frozen at the Unix epoch: no real time")
        }
        b if b.starts_with("wasi:random/") => (
            NotGranted,
            "a fixed public byte stream, the same in every evaluation: no entropy",
        ),
        "wasi:cli/environment" => (
            NotGranted,
            "empty: no variables, no arguments, no working directory",
        ),
        "wasi:cli/exit" => (NotGranted, "exit traps the evaluation (a deny)"),
        b if b.starts_with("wasi:cli/std") || b.starts_with("wasi:cli/terminal") => {
            (NotGranted, "closed: input empty, output discarded")
        }
        b if b.starts_with("wasi:io/") => (NotGranted, "streams and polling over the above only"),
        _ => (
            Unknown,
            "this host does not link it: the module is refused at load",
        ),
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
    Item {
        name: name.to_owned(),
        kind,
        functions,
    }
}

/// Inspect `bytes` (compiled through the runtime's cache; no lock needed:
/// inspecting is what a reviewer does before approving).
pub fn inspect(runtime: &Runtime, bytes: &[u8]) -> Result<Report, LoadError> {
    let sha256 = Sha256::of(bytes);
    let (component, _) = runtime.compile("inspected module", bytes, &sha256)?;
    let engine = runtime.engine();
    let ty = component.component_type();
    let imports: Vec<Item> = ty
        .imports(engine)
        .map(|(n, i)| item(engine, n, &i.ty))
        .collect();
    let exports: Vec<Item> = ty
        .exports(engine)
        .map(|(n, i)| item(engine, n, &i.ty))
        .collect();
    let capabilities = imports
        .iter()
        .map(|i| {
            let (status, grant) = grant(&i.name);
            Capability {
                interface: i.name.clone(),
                status,
                grant,
            }
        })
        .collect();
    Ok(Report {
        world_mismatch: runtime
            .typecheck(&component, "inspected module", &sha256)
            .err()
            .map(|e| e.to_string()),
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
        let count = |st: Status| self.capabilities.iter().filter(|c| c.status == st).count();
        let _ = writeln!(
            s,
            "\nimports ({}): {} granted, {} NOT GRANTED (linked with nothing behind them), {} unknown (refused at load)",
            self.imports.len(),
            count(Status::Granted),
            count(Status::NotGranted),
            count(Status::Unknown)
        );
        for (i, c) in self.imports.iter().zip(&self.capabilities) {
            let _ = writeln!(
                s,
                "  [{}] {}  ({})\n      -> {}",
                c.status.marker(),
                i.name,
                i.kind,
                c.grant
            );
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
    use super::{Status, grant};

    #[test]
    fn grants_name_what_reaches_outside() {
        let g = |i| grant(i);
        assert_eq!(g("wasi:filesystem/preopens@0.2.6").0, Status::NotGranted);
        assert!(
            g("wasi:filesystem/preopens@0.2.6")
                .1
                .contains("no directory")
        );
        assert_eq!(g("wasi:sockets/tcp@0.2.0").0, Status::NotGranted);
        assert!(g("wasi:clocks/wall-clock@0.2.0").1.contains("frozen"));
        assert!(g("wasi:random/random@0.2.3").1.contains("no entropy"));
        assert_eq!(g("wasi:cli/environment@0.2.3").0, Status::NotGranted);
        assert_eq!(g("vibesync:policy/host@0.1.0").0, Status::Granted);
        assert!(g("vibesync:policy/host@0.1.0").1.starts_with("log only"));
        assert_eq!(g("wasi:http/outgoing-handler@0.2.3").0, Status::Unknown);
        assert_eq!(g("acme:evil/thing").0, Status::Unknown);
    }

    #[test]
    fn every_wasi_import_is_marked_not_granted() {
        for i in [
            "wasi:io/streams@0.2.3",
            "wasi:cli/stdout@0.2.3",
            "wasi:cli/exit@0.2.3",
            "wasi:random/insecure-seed@0.2.3",
        ] {
            assert_eq!(grant(i).0, Status::NotGranted, "{i}");
        }
        assert_eq!(Status::NotGranted.marker(), "NOT GRANTED");
    }
}
