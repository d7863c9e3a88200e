//! Host-side bindings of the `vibesync:policy/policy` world, generated from
//! `wit/policy.wit` at compile time, and the conversions between them and the
//! plain Rust mirror in `vibesync-policy-types`.
//!
//! The generated types are what wasmtime lowers into a guest; the mirror types
//! are what the rest of the host (intake, WAL, CLI) speaks. Conversions happen
//! once per pipeline evaluation, not once per policy. The intent crosses in
//! its packed form (`vibesync_policy_types::leaves`).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "policy",
});

pub use vibesync::policy::host::LogLevel;
pub use vibesync::policy::types as wit;

use vibesync_policy_types as t;

/// The guest's `evaluate` export, located once per loaded component.
///
/// The generated `PolicyPre::instantiate` looks up and type-checks every
/// export of the world on every instantiation; with a fresh instance per
/// evaluation that was ~6 % of an evaluation's CPU (`docs/PERFORMANCE.md`).
/// The runtime type-checks a component once, when it loads it (through the
/// generated bindings, see `Runtime::typecheck`), and calls `evaluate` on
/// each fresh instance through this index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvaluateExport(wasmtime::component::ComponentExportIndex);

/// The interface that exports `evaluate`, as the component names it.
const EVALUATOR: &str = "vibesync:policy/evaluator@0.1.0";

impl EvaluateExport {
    /// Locate `evaluate` in `component`. Only for a component whose world
    /// the generated bindings have already checked.
    pub(crate) fn of(component: &wasmtime::component::Component) -> Option<Self> {
        let iface = component.get_export_index(None, EVALUATOR)?;
        component
            .get_export_index(Some(&iface), "evaluate")
            .map(Self)
    }

    /// Call `evaluate` once on `instance`, an instance of the component this
    /// index came from.
    pub(crate) fn call<T: 'static>(
        &self,
        store: &mut wasmtime::Store<T>,
        instance: &wasmtime::component::Instance,
        intent: &wit::Intent,
        context: &wit::Context,
        config: &[wit::Leaf],
    ) -> wasmtime::Result<wit::Verdict> {
        let func = instance
            .get_func(&mut *store, self.0)
            .ok_or_else(|| wasmtime::format_err!("the instance has no `{EVALUATOR}#evaluate`"))?;
        // SAFETY: the component was type-checked against exactly this
        // signature (the WIT `evaluate` function) by the generated bindings
        // when it was loaded, and every instance of a component has its
        // component's export types.
        let typed = unsafe {
            wasmtime::component::TypedFunc::<
                (&wit::Intent, &wit::Context, &[wit::Leaf]),
                (wit::Verdict,),
            >::new_unchecked(func)
        };
        let (verdict,) = typed.call(&mut *store, (intent, context, config))?;
        Ok(verdict)
    }
}

fn source(s: t::Source) -> wit::Source {
    match s {
        t::Source::Agent => wit::Source::Agent,
        t::Source::EngineEdit => wit::Source::EngineEdit,
        t::Source::Operator => wit::Source::Operator,
    }
}

fn scalar(s: &t::Scalar) -> wit::Scalar {
    match s {
        t::Scalar::Null => wit::Scalar::Null,
        t::Scalar::Bool(b) => wit::Scalar::Boolean(*b),
        t::Scalar::Int(i) => wit::Scalar::Integer(*i),
        t::Scalar::Float(f) => wit::Scalar::Float(*f),
        t::Scalar::Text(s) => wit::Scalar::Text(s.clone()),
        t::Scalar::Bytes(b) => wit::Scalar::Bytes(b.clone()),
    }
}

/// Leaves in the guest's representation.
pub fn leaves(l: &[t::Leaf]) -> Vec<wit::Leaf> {
    l.iter()
        .map(|l| wit::Leaf {
            path: l.path.clone(),
            value: scalar(&l.value),
        })
        .collect()
}

fn string_list(l: &t::StringList) -> wit::StringList {
    let (text, ends) = l.parts();
    wit::StringList {
        text: text.to_owned(),
        ends: ends.to_vec(),
    }
}

/// An intent in the guest's representation: the packed lists of
/// `vibesync_policy_types::leaves` copied as they are.
pub fn intent(i: &t::Intent) -> wit::Intent {
    let l = i.leaves.parts();
    wit::Intent {
        tid: i.tid,
        source: source(i.source),
        op: i.op.clone(),
        op_index: i.op_index,
        op_count: i.op_count,
        engines: string_list(&i.engines),
        objects: string_list(&i.objects),
        rationale: i.rationale.clone(),
        scene_version: i.scene_version,
        payload_cbor: i.payload_cbor.clone(),
        leaves: wit::LeafTable {
            paths: wit::StringList {
                text: l.paths.to_owned(),
                ends: l.path_ends.to_vec(),
            },
            kinds: l.kinds.to_vec(),
            values: l.values.to_vec(),
            texts: l.texts.to_owned(),
            bytes: l.bytes.to_vec(),
        },
    }
}

fn transform(t: &t::Transform) -> wit::Transform {
    let [tx, ty, tz] = t.translation;
    let [rx, ry, rz, rw] = t.rotation;
    let [sx, sy, sz] = t.scale;
    wit::Transform {
        translation: (tx, ty, tz),
        rotation: (rx, ry, rz, rw),
        scale: (sx, sy, sz),
    }
}

fn material(m: &t::Material) -> wit::Material {
    let [r, g, b, a] = m.base_color;
    let [er, eg, eb] = m.emission;
    wit::Material {
        base_color: (r, g, b, a),
        roughness: m.roughness,
        metallic: m.metallic,
        emission: (er, eg, eb),
        emission_strength: m.emission_strength,
    }
}

/// A context in the guest's representation.
pub fn context(c: &t::Context) -> wit::Context {
    wit::Context {
        objects: c
            .objects
            .iter()
            .map(|o| wit::ObjectState {
                id: o.id.clone(),
                name: o.name.clone(),
                kind: o.kind.clone(),
                parent: o.parent.clone(),
                transform: transform(&o.transform),
                material: o.material.as_ref().map(material),
                lock: o.lock.as_ref().map(|l| wit::ObjectLock {
                    holder: l.holder.clone(),
                    human: l.human,
                }),
            })
            .collect(),
        missing: c.missing.clone(),
        scene_object_count: c.scene_object_count,
        scene_version: c.scene_version,
        project_root: c.project_root.clone(),
    }
}

fn severity(s: wit::Severity) -> t::Severity {
    match s {
        wit::Severity::Info => t::Severity::Info,
        wit::Severity::Warning => t::Severity::Warning,
        wit::Severity::Error => t::Severity::Error,
        wit::Severity::Critical => t::Severity::Critical,
    }
}

fn findings(f: Vec<wit::Finding>) -> Vec<t::Finding> {
    f.into_iter()
        .map(|f| t::Finding {
            rule: f.rule,
            severity: severity(f.severity),
            path: f.path,
            message: f.message,
        })
        .collect()
}

/// A guest's verdict in the host's representation.
pub fn verdict(v: wit::Verdict) -> t::Verdict {
    match v {
        wit::Verdict::Allow => t::Verdict::Allow,
        wit::Verdict::Deny(f) => t::Verdict::Deny(findings(f)),
        wit::Verdict::Escalate(f) => t::Verdict::Escalate(findings(f)),
    }
}

/// A guest's self-description in the host's representation.
pub fn policy_info(p: wit::PolicyInfo) -> t::PolicyInfo {
    t::PolicyInfo {
        name: p.name,
        version: p.version,
        description: p.description,
        rules: p
            .rules
            .into_iter()
            .map(|r| t::RuleInfo {
                id: r.id,
                description: r.description,
            })
            .collect(),
    }
}
