//! The argument schema of every op in `docs/ops.md`, as data, and the one
//! function that checks leaves against it.

use vibesync_policy_sdk::prelude::*;

use crate::{ENUM, NAME, RANGE, REQUIRED, TYPE, UNKNOWN_FIELD, VECTOR};

/// What one argument must be.
#[derive(Clone, Copy)]
enum Ty {
    /// An object id: 1-128 characters of `[A-Za-z0-9_.:-]`.
    Id,
    /// An object name (see [`check_name`]).
    Name,
    Kind,
    /// Depends on the `kind` argument.
    Primitive,
    /// An id or null.
    ParentRef,
    /// `{translation?, rotation?, scale?}`.
    Transform,
    /// `N` numbers, each in `[lo, hi]`.
    Vector(usize, f64, f64),
    /// A number in `[lo, hi]`.
    Number(f64, f64),
    IdList,
    Bool,
    Language,
    /// Script source: non-empty text.
    Code,
}

struct Field {
    name: &'static str,
    ty: Ty,
    required: bool,
}

/// One op's schema.
pub struct Schema {
    fields: &'static [Field],
    /// At least one of these must be present (empty: no such rule).
    any_of: &'static [&'static str],
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}
const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

const ANY: f64 = f64::INFINITY;
const VEC3: Ty = Ty::Vector(3, -ANY, ANY);
const QUAT: Ty = Ty::Vector(4, -ANY, ANY);
const UNIT: Ty = Ty::Number(0.0, 1.0);
const NON_NEG: Ty = Ty::Number(0.0, ANY);

/// The ops the host knows, in `docs/ops.md` order.
pub const OP_NAMES: &[&str] = &[
    "create_object",
    "delete_object",
    "rename_object",
    "reparent_object",
    "set_transform",
    "set_material",
    "select",
    "run_script",
];

const KINDS: &[&str] = &["mesh", "empty", "camera", "light"];
const MESH_PRIMITIVES: &[&str] = &["cube", "uv_sphere", "plane", "cylinder", "cone", "torus"];
const LIGHT_PRIMITIVES: &[&str] = &["point", "sun", "spot", "area"];
const LANGUAGES: &[&str] = &["python", "csharp"];
const TRANSFORM_FIELDS: &[Field] = &[
    opt("translation", VEC3),
    opt("rotation", QUAT),
    opt("scale", VEC3),
];

/// The schema of `op`, if it is a known op.
pub fn for_op(op: &str) -> Option<&'static Schema> {
    static CREATE: Schema = Schema {
        fields: &[
            opt("id", Ty::Id),
            req("name", Ty::Name),
            req("kind", Ty::Kind),
            opt("primitive", Ty::Primitive),
            opt("parent", Ty::ParentRef),
            opt("transform", Ty::Transform),
        ],
        any_of: &[],
    };
    static DELETE: Schema = Schema {
        fields: &[req("id", Ty::Id)],
        any_of: &[],
    };
    static RENAME: Schema = Schema {
        fields: &[req("id", Ty::Id), req("name", Ty::Name)],
        any_of: &[],
    };
    static REPARENT: Schema = Schema {
        fields: &[req("id", Ty::Id), opt("parent", Ty::ParentRef)],
        any_of: &[],
    };
    static TRANSFORM: Schema = Schema {
        fields: &[
            req("id", Ty::Id),
            opt("translation", VEC3),
            opt("rotation", QUAT),
            opt("scale", VEC3),
        ],
        any_of: &["translation", "rotation", "scale"],
    };
    static MATERIAL: Schema = Schema {
        fields: &[
            req("id", Ty::Id),
            opt("base_color", Ty::Vector(4, 0.0, 1.0)),
            opt("roughness", UNIT),
            opt("metallic", UNIT),
            opt("emission", Ty::Vector(3, 0.0, ANY)),
            opt("emission_strength", NON_NEG),
        ],
        any_of: &[
            "base_color",
            "roughness",
            "metallic",
            "emission",
            "emission_strength",
        ],
    };
    static SELECT: Schema = Schema {
        fields: &[req("ids", Ty::IdList), opt("frame", Ty::Bool)],
        any_of: &[],
    };
    static SCRIPT: Schema = Schema {
        fields: &[req("language", Ty::Language), req("code", Ty::Code)],
        any_of: &[],
    };
    Some(match op {
        "create_object" => &CREATE,
        "delete_object" => &DELETE,
        "rename_object" => &RENAME,
        "reparent_object" => &REPARENT,
        "set_transform" => &TRANSFORM,
        "set_material" => &MATERIAL,
        "select" => &SELECT,
        "run_script" => &SCRIPT,
        _ => return None,
    })
}

/// Check the arguments against `schema`, adding one finding per problem.
pub fn check(schema: &Schema, args: &Args, findings: &mut Findings) {
    if let Some(root) = args.get("")
        && root != ScalarRef::Null
    {
        findings.error(
            TYPE,
            "",
            format!(
                "arguments are a {}; send an object of named arguments",
                root.type_name()
            ),
        );
        return;
    }
    check_fields(schema.fields, "", args, findings);
    if !schema.any_of.is_empty() && !schema.any_of.iter().any(|f| args.has(&format!("/{f}"))) {
        findings.error(
            REQUIRED,
            "",
            format!(
                "nothing to change; give at least one of {}",
                schema.any_of.join(", ")
            ),
        );
    }
}

fn check_fields(fields: &[Field], prefix: &str, args: &Args, findings: &mut Findings) {
    for key in keys_under(args, prefix) {
        if !fields.iter().any(|f| f.name == key) {
            let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
            findings.error(
                UNKNOWN_FIELD,
                format!("{prefix}/{key}"),
                format!(
                    "unknown argument {key:?}; the arguments here are {}",
                    known.join(", ")
                ),
            );
        }
    }
    for field in fields {
        // Built by hand: `format!` here was a visible share of every op's check.
        let mut path = String::with_capacity(prefix.len() + 1 + field.name.len());
        path.push_str(prefix);
        path.push('/');
        path.push_str(field.name);
        if !args.has(&path) {
            if field.required {
                findings.error(
                    REQUIRED,
                    path,
                    format!("missing required argument {:?}", field.name),
                );
            }
            continue;
        }
        check_value(field.ty, &path, args, findings);
    }
}

/// The distinct keys one level below `prefix` (a map's keys).
fn keys_under<'a>(args: &Args<'a>, prefix: &str) -> Vec<&'a str> {
    let mut keys: Vec<&str> = Vec::new();
    for leaf in args.leaves() {
        let Some(rest) = leaf
            .path()
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
        else {
            continue;
        };
        let key = rest.split('/').next().unwrap_or(rest);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

fn check_value(ty: Ty, path: &str, args: &Args, findings: &mut Findings) {
    let scalar = args.get(path);
    let text = scalar.and_then(ScalarRef::as_str);
    let type_error = |findings: &mut Findings, want: &str| {
        let got = scalar.map_or("a list or map", ScalarRef::type_name);
        findings.error(TYPE, path, format!("{path} is {got}; it must be {want}"));
    };
    match ty {
        Ty::Id => match text {
            Some(id) => check_id(id, path, findings),
            None => type_error(findings, "an object id (text)"),
        },
        Ty::ParentRef => match (scalar, text) {
            (Some(ScalarRef::Null), _) => {}
            (_, Some(id)) => check_id(id, path, findings),
            _ => type_error(findings, "an object id or null"),
        },
        Ty::Name => match text {
            Some(name) => check_name(name, path, findings),
            None => type_error(findings, "a name (text)"),
        },
        Ty::Kind => check_enum(text, KINDS, path, findings, type_error),
        Ty::Language => check_enum(text, LANGUAGES, path, findings, type_error),
        Ty::Primitive => {
            let allowed = match args.str("/kind") {
                Some("mesh") => MESH_PRIMITIVES,
                Some("light") => LIGHT_PRIMITIVES,
                Some(kind @ ("empty" | "camera")) => {
                    findings.error(
                        ENUM,
                        path,
                        format!("a {kind} has no primitive; remove `primitive`"),
                    );
                    return;
                }
                _ => return, // the kind itself is reported
            };
            check_enum(text, allowed, path, findings, type_error);
        }
        Ty::Transform => {
            if args.list(path).is_some() || scalar.is_some_and(|s| s != ScalarRef::Null) {
                type_error(findings, "a map {translation?, rotation?, scale?}");
            } else {
                check_fields(TRANSFORM_FIELDS, path, args, findings);
            }
        }
        Ty::Vector(n, lo, hi) => match args.list(path) {
            Some(items) if items.len() == n && items.iter().all(|i| i.as_f64().is_some()) => {
                for (i, item) in items.iter().enumerate() {
                    let x = item.as_f64().unwrap_or(f64::NAN);
                    if !in_range(x, lo, hi) {
                        check_range(x, lo, hi, &format!("{path}/{i}"), findings);
                    }
                }
            }
            Some(items) => findings.error(
                VECTOR,
                path,
                format!(
                    "{path} has {} element(s); it must be a list of {n} numbers",
                    items.len()
                ),
            ),
            None => findings.error(
                VECTOR,
                path,
                format!("{path} must be a list of {n} numbers"),
            ),
        },
        Ty::Number(lo, hi) => match scalar.and_then(ScalarRef::as_f64) {
            Some(x) => check_range(x, lo, hi, path, findings),
            None => type_error(findings, "a number"),
        },
        Ty::IdList => match args.list(path) {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(id) if valid_id(id) => {}
                        Some(id) => check_id(id, &format!("{path}/{i}"), findings),
                        None => findings.error(
                            TYPE,
                            format!("{path}/{i}"),
                            format!(
                                "{path}/{i} is {}; it must be an object id",
                                item.type_name()
                            ),
                        ),
                    }
                }
            }
            None => type_error(findings, "a list of object ids"),
        },
        Ty::Bool => {
            if scalar.and_then(ScalarRef::as_bool).is_none() {
                type_error(findings, "true or false");
            }
        }
        Ty::Code => match text {
            Some(code) if !code.trim().is_empty() => {}
            Some(_) => findings.error(REQUIRED, path, "the script is empty; send the code to run"),
            None => type_error(findings, "the script source (text)"),
        },
    }
}

fn check_enum(
    text: Option<&str>,
    allowed: &[&str],
    path: &str,
    findings: &mut Findings,
    type_error: impl Fn(&mut Findings, &str),
) {
    match text {
        Some(v) if allowed.contains(&v) => {}
        Some(v) => findings.error(
            ENUM,
            path,
            format!("{path} is {v:?}; use one of {}", allowed.join(", ")),
        ),
        None => type_error(findings, &format!("one of {}", allowed.join(", "))),
    }
}

/// NaN fails both comparisons and so is out of range too.
fn in_range(x: f64, lo: f64, hi: f64) -> bool {
    x >= lo && x <= hi
}

fn check_range(x: f64, lo: f64, hi: f64, path: &str, findings: &mut Findings) {
    if !in_range(x, lo, hi) {
        let bounds = if hi.is_infinite() {
            format!(">= {lo}")
        } else {
            format!("in [{lo}, {hi}]")
        };
        findings.error(
            RANGE,
            path,
            format!("{path} = {x} must be {bounds}; clamp it"),
        );
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':'))
}

fn check_id(id: &str, path: &str, findings: &mut Findings) {
    if !valid_id(id) {
        findings.error(
            TYPE,
            path,
            format!(
                "{path} = {id:?} is not an object id; use the id the scene reports (e.g. obj-12)"
            ),
        );
    }
}

/// Names: 1-63 characters, no control characters, no `/` or `\`.
fn check_name(name: &str, path: &str, findings: &mut Findings) {
    let len = name.chars().count();
    let problem = if len == 0 || name.trim().is_empty() {
        Some("is empty".to_owned())
    } else if len > 63 {
        Some(format!("has {len} characters (at most 63)"))
    } else if name.chars().any(char::is_control) {
        Some("contains a control character".to_owned())
    } else if name.contains(['/', '\\']) {
        Some("contains '/' or '\\'".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        findings.error(
            NAME,
            path,
            format!("name {name:?} {problem}; use 1-63 printable characters without slashes"),
        );
    }
}
