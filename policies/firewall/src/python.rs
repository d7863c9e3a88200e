//! Python (Blender) script analysis on a real AST.
//!
//! The code is parsed with `rustpython-parser`; unparsable code is refused
//! (fail closed). Two passes over the tree: the first collects what names
//! are bound to (`import bpy as b`, `from bpy import app`, `t = bpy.app`), the
//! second checks every import, call, name, attribute and string constant with
//! those bindings resolved, so an alias cannot launder a forbidden path.
//! Nothing is matched as a substring of the source: `"import os"` inside a
//! string literal is a string, a variable `os_name` is not the module `os`.

use std::collections::BTreeMap;

pub use crate::script::{Issue, Report};

use rustpython_ast::{self as ast, Constant, Expr, Ranged, Visitor};
use rustpython_parser::Parse;

/// Rule ids (also listed in `metadata()`).
pub const IMPORT: &str = "firewall.python-import";
pub const BUILTIN: &str = "firewall.python-builtin";
pub const DUNDER: &str = "firewall.python-dunder";
pub const DYNAMIC_ATTR: &str = "firewall.python-dynamic-attribute";
pub const OPEN_WRITE: &str = "firewall.python-open-write";
pub const BLENDER: &str = "firewall.python-blender-api";
pub const SYNTAX: &str = "firewall.python-syntax";

/// Modules whose import is refused: process, file system, network, native
/// code, interpreter internals, code loading, serialisation that runs code.
const DENIED_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "socket",
    "ssl",
    "select",
    "selectors",
    "ctypes",
    "cffi",
    "shutil",
    "importlib",
    "imp",
    "zipimport",
    "pkgutil",
    "runpy",
    "sys",
    "builtins",
    "__builtin__",
    "multiprocessing",
    "threading",
    "_thread",
    "concurrent",
    "asyncio",
    "pty",
    "tty",
    "signal",
    "fcntl",
    "mmap",
    "resource",
    "urllib",
    "urllib2",
    "urllib3",
    "http",
    "httplib",
    "ftplib",
    "smtplib",
    "telnetlib",
    "poplib",
    "imaplib",
    "xmlrpc",
    "socketserver",
    "requests",
    "webbrowser",
    "pickle",
    "cPickle",
    "marshal",
    "shelve",
    "dill",
    "code",
    "codeop",
    "inspect",
    "gc",
    "pathlib",
    "tempfile",
    "io",
    "fileinput",
    "sqlite3",
    "dbm",
    "operator",
    "types",
    "getpass",
    "pwd",
    "grp",
    "venv",
    "ensurepip",
    "distutils",
    "setuptools",
    "pip",
];

/// Builtins refused wherever they are named (called or passed around).
const DENIED_BUILTINS: &[&str] = &[
    "exec",
    "eval",
    "compile",
    "__import__",
    "breakpoint",
    "globals",
    "locals",
    "vars",
    "setattr",
    "delattr",
    "input",
    "memoryview",
    "__builtins__",
    "__loader__",
    "__spec__",
];

/// Blender APIs that run code later, run other files, or escape the scene.
const DENIED_BLENDER: &[&str] = &[
    "bpy.ops.script",
    "bpy.ops.text.run_script",
    "bpy.ops.wm.addon_install",
    "bpy.ops.wm.addon_enable",
    "bpy.ops.preferences.addon_install",
    "bpy.ops.preferences.addon_enable",
    "bpy.ops.wm.quit_blender",
    "bpy.ops.wm.save_as_mainfile",
    "bpy.ops.wm.save_mainfile",
    "bpy.ops.wm.open_mainfile",
    "bpy.app.handlers",
    "bpy.app.timers",
    "bpy.app.driver_namespace",
    "bpy.utils.execfile",
    "bpy.utils.load_scripts",
];

/// Objects that may only be used as the base of an attribute access
/// (`bpy.app.version`), never as a value (`x = [bpy.app][0]`, `f(bpy)`):
/// once one escapes into a variable the analysis can no longer see which of
/// its attributes (`timers`, `handlers`...) is reached.
const GUARDED: &[&str] = &["bpy", "bpy.app", "bpy.ops", "bpy.utils"];

/// Dunder names that are harmless and common (`if __name__ == "__main__"`,
/// `super().__init__()`); every other `__x__` is refused.
const SAFE_DUNDERS: &[&str] = &["__name__", "__main__", "__init__", "__doc__"];

/// Analyse `code`.
pub fn analyse(code: &str) -> Report {
    let suite = match ast::Suite::parse(code, "<run_script>") {
        Ok(suite) => suite,
        Err(e) => {
            return Report {
                issues: vec![Issue {
                    rule: SYNTAX,
                    line: 0,
                    message: format!(
                        "the script does not parse as Python ({e}); send valid Python 3, unparsable code is refused"
                    ),
                }],
                strings: Vec::new(),
            };
        }
    };
    let mut bindings = Bindings {
        aliases: BTreeMap::new(),
        line_starts: line_starts(code),
    };
    // Twice, so `b = bpy` followed by `t = b.app` resolves whatever the order.
    for _ in 0..2 {
        for stmt in suite.clone() {
            bindings.visit_stmt(stmt);
        }
    }
    let mut checker = Checker {
        b: bindings,
        report: Report::default(),
        as_base: false,
    };
    for stmt in suite {
        checker.visit_stmt(stmt);
    }
    let mut report = checker.report;
    // One finding per rule and line: `bpy.app.timers.register` would
    // otherwise report each prefix of the chain.
    let mut seen = Vec::new();
    report.issues.retain(|i| {
        let key = (i.rule, i.line);
        let fresh = !seen.contains(&key);
        if fresh {
            seen.push(key);
        }
        fresh
    });
    report
}

fn line_starts(code: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(code.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

fn is_dunder(s: &str) -> bool {
    s.len() > 4 && s.starts_with("__") && s.ends_with("__") && !SAFE_DUNDERS.contains(&s)
}

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

fn top_module(dotted: &str) -> &str {
    dotted.split('.').next().unwrap_or(dotted)
}

/// Name bindings (aliases) and position helpers shared by both passes.
struct Bindings {
    aliases: BTreeMap<String, String>,
    line_starts: Vec<usize>,
}

impl Bindings {
    fn line(&self, node: &impl Ranged) -> usize {
        let offset = u32::from(node.start()) as usize;
        self.line_starts.partition_point(|&s| s <= offset)
    }

    fn resolve_name(&self, name: &str) -> String {
        self.aliases
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }

    /// The dotted path an expression names (`b.app` -> `bpy.app`), with
    /// `getattr(x, "name")` read as `x.name`.
    fn dotted(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Name(n) => Some(self.resolve_name(n.id.as_str())),
            Expr::Attribute(a) => Some(format!("{}.{}", self.dotted(&a.value)?, a.attr.as_str())),
            Expr::Call(c) if self.is_builtin(&c.func, "getattr") && c.args.len() >= 2 => {
                let name = const_str(&c.args[1])?;
                Some(format!("{}.{}", self.dotted(&c.args[0])?, name))
            }
            _ => None,
        }
    }

    fn is_builtin(&self, func: &Expr, name: &str) -> bool {
        matches!(func, Expr::Name(n) if self.resolve_name(n.id.as_str()) == name)
    }

    fn bind(&mut self, target: &Expr, value: &Expr) {
        if let (Expr::Name(t), Some(path)) = (target, self.dotted(value))
            && path != t.id.as_str()
        {
            self.aliases.insert(t.id.to_string(), path);
        }
    }
}

fn const_str(e: &Expr) -> Option<&str> {
    match e {
        Expr::Constant(c) => match &c.value {
            Constant::Str(s) => Some(s.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// Visits the generated `Visitor` leaves empty; both passes must descend
/// into them or a call hidden in a keyword argument, a comprehension or a
/// match case would go unseen.
macro_rules! descend_everywhere {
    () => {
        fn visit_keyword(&mut self, node: ast::Keyword) {
            self.visit_expr(node.value);
        }

        fn visit_comprehension(&mut self, node: ast::Comprehension) {
            self.visit_expr(node.target);
            self.visit_expr(node.iter);
            for e in node.ifs {
                self.visit_expr(e);
            }
        }

        fn visit_arg(&mut self, node: ast::Arg) {
            if let Some(annotation) = node.annotation {
                self.visit_expr(*annotation);
            }
        }

        fn visit_match_case(&mut self, node: ast::MatchCase) {
            self.visit_pattern(node.pattern);
            if let Some(guard) = node.guard {
                self.visit_expr(*guard);
            }
            for stmt in node.body {
                self.visit_stmt(stmt);
            }
        }
    };
}

impl Visitor for Bindings {
    descend_everywhere!();
    fn visit_stmt_import(&mut self, node: ast::StmtImport) {
        for alias in node.names {
            let name = alias.name.to_string();
            match alias.asname {
                Some(asname) => self.aliases.insert(asname.to_string(), name),
                // `import a.b` binds `a`.
                None => self
                    .aliases
                    .insert(top_module(&name).to_owned(), top_module(&name).to_owned()),
            };
        }
    }

    fn visit_stmt_import_from(&mut self, node: ast::StmtImportFrom) {
        let module = node.module.map(|m| m.to_string()).unwrap_or_default();
        for alias in node.names {
            let full = format!("{module}.{}", alias.name.as_str());
            let local = alias.asname.unwrap_or(alias.name).to_string();
            self.aliases.insert(local, full);
        }
    }

    fn visit_stmt_assign(&mut self, node: ast::StmtAssign) {
        for target in &node.targets {
            self.bind(target, &node.value);
        }
        self.generic_visit_stmt_assign(node);
    }

    fn visit_stmt_ann_assign(&mut self, node: ast::StmtAnnAssign) {
        if let Some(value) = &node.value {
            self.bind(&node.target, value);
        }
        self.generic_visit_stmt_ann_assign(node);
    }

    fn visit_expr_named_expr(&mut self, node: ast::ExprNamedExpr) {
        self.bind(&node.target, &node.value);
        self.generic_visit_expr_named_expr(node);
    }

    fn visit_withitem(&mut self, node: ast::WithItem) {
        if let Some(vars) = &node.optional_vars {
            self.bind(vars, &node.context_expr);
        }
        self.visit_expr(node.context_expr);
    }

    /// `def f(t=bpy.app)` binds `t` like an assignment.
    fn visit_arguments(&mut self, node: ast::Arguments) {
        for arg in node
            .posonlyargs
            .into_iter()
            .chain(node.args)
            .chain(node.kwonlyargs)
        {
            if let Some(default) = arg.default {
                if let Some(path) = self.dotted(&default) {
                    self.aliases.insert(arg.def.arg.to_string(), path);
                }
                self.visit_expr(*default);
            }
        }
    }
}

/// The checking pass.
struct Checker {
    b: Bindings,
    report: Report,
    /// The expression being visited is the base of an attribute access.
    as_base: bool,
}

impl Checker {
    fn issue(&mut self, rule: &'static str, line: usize, message: String) {
        self.report.issues.push(Issue {
            rule,
            line,
            message: format!("line {line}: {message}"),
        });
    }

    fn check_module(&mut self, module: &str, line: usize) {
        let top = top_module(module);
        if DENIED_MODULES.contains(&top) {
            self.issue(
                IMPORT,
                line,
                format!("import of `{module}` is refused (`{top}` reaches the process, files, network or interpreter); change the scene through bpy.data instead"),
            );
        }
    }

    fn check_blender_path(&mut self, path: &str, line: usize) {
        if let Some(denied) = DENIED_BLENDER.iter().find(|d| under(path, d)) {
            self.issue(
                BLENDER,
                line,
                format!("`{path}` uses `{denied}`, which runs code outside this script's review or leaves the scene; do the change directly in this script"),
            );
        }
    }

    fn check_dunder(&mut self, name: &str, line: usize) {
        if is_dunder(name) {
            self.issue(
                DUNDER,
                line,
                format!("`{name}` is refused: dunder access reaches interpreter internals (sandbox escape); use the public API"),
            );
        }
    }

    /// `open(path, mode)`: only read modes with a literal mode string pass.
    fn check_open(&mut self, call: &ast::ExprCall, line: usize) {
        let mode = call.args.get(1).or_else(|| {
            call.keywords
                .iter()
                .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "mode"))
                .map(|k| &k.value)
        });
        let refused = match mode {
            None => None,
            Some(m) => match const_str(m) {
                Some(s) if !s.contains(['w', 'a', 'x', '+']) => None,
                Some(s) => Some(format!("open() with mode {s:?} writes a file")),
                None => Some("open() with a computed mode may write a file".to_owned()),
            },
        };
        if let Some(why) = refused {
            self.issue(
                OPEN_WRITE,
                line,
                format!("{why}; scripts may only read files (mode \"r\")"),
            );
        }
    }
}

impl Visitor for Checker {
    fn visit_expr(&mut self, node: Expr) {
        let as_base = std::mem::take(&mut self.as_base);
        if !as_base
            && let Some(path) = self
                .b
                .dotted(&node)
                .filter(|p| GUARDED.contains(&p.as_str()))
        {
            let line = self.b.line(&node);
            self.issue(
                BLENDER,
                line,
                format!("`{path}` used as a value hides which of its attributes is reached; write `{path}.<attribute>` directly"),
            );
        }
        self.generic_visit_expr(node);
    }

    fn visit_stmt_import(&mut self, node: ast::StmtImport) {
        let line = self.b.line(&node);
        for alias in &node.names {
            self.check_module(alias.name.as_str(), line);
            self.check_blender_path(alias.name.as_str(), line);
        }
    }

    fn visit_stmt_import_from(&mut self, node: ast::StmtImportFrom) {
        let line = self.b.line(&node);
        let level = node.level.map_or(0, |l| l.to_u32());
        let Some(module) = node.module.as_ref().filter(|_| level == 0) else {
            self.issue(
                IMPORT,
                line,
                "relative imports are refused; a script has no package to import from".to_owned(),
            );
            return;
        };
        self.check_module(module.as_str(), line);
        for alias in &node.names {
            if alias.name.as_str() == "*" {
                self.issue(
                    IMPORT,
                    line,
                    format!("`from {module} import *` is refused: it hides which names are used; import them by name"),
                );
                continue;
            }
            let full = format!("{module}.{}", alias.name.as_str());
            self.check_blender_path(&full, line);
            self.check_dunder(alias.name.as_str(), line);
        }
    }

    fn visit_expr_name(&mut self, node: ast::ExprName) {
        let line = self.b.line(&node);
        let name = node.id.as_str();
        if DENIED_BUILTINS.contains(&name) {
            self.issue(
                BUILTIN,
                line,
                format!("`{name}` is refused: it runs or reaches code outside the script's review; write the logic out directly"),
            );
        } else if name == "open" {
            self.issue(OPEN_WRITE, line, "`open` used other than as a direct call cannot be checked for write modes; call open(path) directly to read".to_owned());
        } else {
            self.check_dunder(name, line);
        }
    }

    fn visit_expr_call(&mut self, node: ast::ExprCall) {
        let line = self.b.line(&node);
        let mut skip_func = false;
        if self.b.is_builtin(&node.func, "open") {
            self.check_open(&node, line);
            skip_func = true;
        } else if ["getattr", "hasattr"]
            .iter()
            .any(|f| self.b.is_builtin(&node.func, f))
        {
            skip_func = true;
            match node.args.get(1).map(const_str) {
                Some(Some(attr)) => {
                    self.check_dunder(attr, line);
                    if let Some(path) = self.b.dotted(&Expr::Call(node.clone())) {
                        self.check_blender_path(&path, line);
                    }
                }
                _ => self.issue(
                    DYNAMIC_ATTR,
                    line,
                    "getattr() with a computed attribute name cannot be checked; use the attribute by name".to_owned(),
                ),
            }
        }
        let constant_getattr = ["getattr", "hasattr"]
            .iter()
            .any(|f| self.b.is_builtin(&node.func, f))
            && node.args.get(1).and_then(const_str).is_some();
        if !skip_func {
            self.visit_expr(*node.func);
        }
        for (i, arg) in node.args.into_iter().enumerate() {
            // `getattr(bpy.app, "version")` uses bpy.app as a base, like `bpy.app.version`.
            self.as_base = constant_getattr && i == 0;
            self.visit_expr(arg);
        }
        for keyword in node.keywords {
            self.visit_expr(keyword.value);
        }
    }

    fn visit_expr_attribute(&mut self, node: ast::ExprAttribute) {
        let line = self.b.line(&node);
        let attr = node.attr.as_str();
        self.check_dunder(attr, line);
        if attr == "as_module" {
            self.issue(
                BLENDER,
                line,
                "`.as_module()` runs a text block as a module; put the code in this script instead"
                    .to_owned(),
            );
        }
        // `<anything>.app.timers` even when the base is not resolvable
        // (bpy passed through a function argument).
        if let Expr::Attribute(parent) = node.value.as_ref() {
            let pair = (parent.attr.as_str(), attr);
            if matches!(
                pair,
                ("app", "timers" | "handlers" | "driver_namespace")
                    | ("utils", "execfile")
                    | ("ops", "script")
            ) {
                self.issue(
                    BLENDER,
                    line,
                    format!("`.{}.{}` is refused: it schedules or runs code outside this script's review", pair.0, pair.1),
                );
            }
        }
        if let Some(path) = self.b.dotted(&Expr::Attribute(node.clone())) {
            self.check_blender_path(&path, line);
        }
        self.as_base = true;
        self.visit_expr(*node.value);
    }

    fn visit_expr_constant(&mut self, node: ast::ExprConstant) {
        let line = self.b.line(&node);
        match node.value {
            Constant::Str(s) => {
                self.check_dunder(&s, line);
                self.report.strings.push(s);
            }
            Constant::Bytes(b) => self
                .report
                .strings
                .push(String::from_utf8_lossy(&b).into_owned()),
            _ => {}
        }
    }

    descend_everywhere!();

    fn visit_arguments(&mut self, node: ast::Arguments) {
        let all = node
            .posonlyargs
            .into_iter()
            .chain(node.args)
            .chain(node.kwonlyargs);
        for arg in all {
            if let Some(default) = arg.default {
                self.visit_expr(*default);
            }
            self.visit_arg(arg.def);
        }
        for arg in node.vararg.into_iter().chain(node.kwarg) {
            self.visit_arg(*arg);
        }
    }

    fn visit_withitem(&mut self, node: ast::WithItem) {
        self.visit_expr(node.context_expr);
        if let Some(vars) = node.optional_vars {
            self.visit_expr(*vars);
        }
    }

    fn visit_stmt_global(&mut self, node: ast::StmtGlobal) {
        let line = self.b.line(&node);
        for name in &node.names {
            self.check_dunder(name.as_str(), line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(code: &str) -> Vec<&'static str> {
        analyse(code).issues.into_iter().map(|i| i.rule).collect()
    }

    #[test]
    fn plain_bpy_passes() {
        let code = "import bpy\nimport math\nfor o in bpy.data.objects:\n    o.location.x += math.sin(1)\n";
        assert_eq!(rules(code), Vec::<&str>::new());
    }

    #[test]
    fn aliases_do_not_launder() {
        assert!(rules("import bpy as b\nb.app.timers.register(f)").contains(&BLENDER));
        assert!(
            rules("from bpy import app\napp.handlers.frame_change_pre.append(f)")
                .contains(&BLENDER)
        );
        assert!(rules("import bpy\nx = bpy.app\nx.driver_namespace['f'] = f").contains(&BLENDER));
        assert!(rules("import bpy\nt = getattr(bpy.app, 'timers')").contains(&BLENDER));
    }

    #[test]
    fn guarded_objects_cannot_escape_into_values() {
        assert!(rules("import bpy\nt = [bpy.app][0]\nt.timers.register(f)").contains(&BLENDER));
        assert!(rules("import bpy\nrun(bpy)").contains(&BLENDER));
        assert!(rules("import bpy\nf(x=(t := bpy.app))\nt.timers").contains(&BLENDER));
        assert!(rules("import bpy\ndef g(t=bpy.app):\n    return t.timers").contains(&BLENDER));
        assert_eq!(
            rules("import bpy\nv = bpy.app.version\nn = getattr(bpy.app, 'version_string')"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn strings_are_not_code() {
        assert_eq!(
            rules("import bpy\nprint('import os; os.system(1)')\nos_name = 'x'"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn hidden_in_keyword_defaults_and_comprehensions() {
        assert!(rules("f(x=eval('1'))").contains(&BUILTIN));
        assert!(rules("def f(a=exec):\n    pass").contains(&BUILTIN));
        assert!(rules("[eval(s) for s in xs]").contains(&BUILTIN));
        assert!(rules("with open('f', 'w') as fh:\n    pass").contains(&OPEN_WRITE));
    }

    #[test]
    fn line_numbers_in_messages() {
        let r = analyse("import bpy\n\nimport os\n");
        assert!(r.issues[0].message.starts_with("line 3:"), "{:?}", r.issues);
    }

    #[test]
    fn syntax_error_fails_closed() {
        assert_eq!(rules("def (:"), [SYNTAX]);
    }
}
