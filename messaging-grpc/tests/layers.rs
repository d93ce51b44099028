//! The import graph of the sources: files as nodes, `crate::…` and `super::…` paths (in
//! `use` declarations and inline) as edges. Fails on a circle between files, a circle
//! between top-level modules, and an edge that runs back up a layer; the layers are the
//! table below, and docs/layout.md says the same in prose. A module not in the table
//! fails too: a new one is placed on purpose.
//!
//! A parent's own children are containment, not imports (a `mod.rs` re-exports its
//! children; they may use what it declares), so edges into a file's own descendants are
//! left out. `#[cfg(test)]` modules are left out: a unit test may set up whatever it needs.
//!
//! `LAYERS_PRINT=1 cargo nextest run -p messaging-grpc --test layers` prints the graph
//! between top-level modules (with `--no-capture`).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The core's layers, top first: a module may import from its own layer (without a
/// circle) and from the layers below it, never from one above.
const CORE_LAYERS: &[(&str, &[&str])] = &[
    (
        "entry points",
        &["main", "lib", "cli", "fuzz_support", "telemetry"],
    ),
    (
        "wiring",
        &["server", "tasks", "probes", "config", "dev_secrets"],
    ),
    ("api", &["api"]),
    (
        "services",
        &["messaging", "ingest", "dispatch", "admin", "retention"],
    ),
    ("shared services", &["media"]),
    ("domain", &["domain"]),
    (
        "infrastructure",
        &["realtime", "provider", "twilio", "auth", "crypto", "store"],
    ),
    (
        "foundations",
        &["metrics", "error", "sms", "phone", "redact", "retry"],
    ),
];

/// The gateway's layers, top first.
const GATEWAY_LAYERS: &[(&str, &[&str])] = &[
    (
        "entry points",
        &["main", "lib", "server", "dev", "fuzz_support"],
    ),
    ("router", &["router"]),
    ("faces", &["api", "twilio"]),
    (
        "middleware",
        &[
            "rate_limit",
            "conn_limit",
            "credentials",
            "log_mask",
            "metrics",
        ],
    ),
    ("core client", &["core"]),
    ("configuration", &["config", "service_token", "core_tls"]),
    ("foundations", &["client_ip", "trace", "error", "plain"]),
];

fn crate_src(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if name == "messaging-grpc" {
        root.join("src")
    } else {
        root.parent()
            .expect("workspace root")
            .join(name)
            .join("src")
    }
}

#[test]
fn core_has_no_circle_and_no_arrow_back_up() {
    check("messaging-grpc", CORE_LAYERS);
}

#[test]
fn gateway_has_no_circle_and_no_arrow_back_up() {
    check("webhook-gateway", GATEWAY_LAYERS);
}

/// The checker itself finds a circle and an arrow back up (a test that cannot fail
/// proves nothing).
#[test]
fn the_checker_sees_circles_and_up_arrows() {
    let files = BTreeMap::from([
        (vec!["a".to_owned()], "use crate::b::X;".to_owned()),
        (vec!["b".to_owned()], "fn f() { crate::a::g() }".to_owned()),
        (vec!["c".to_owned()], "use super::a::Y;".to_owned()),
    ]);
    let graph = Graph::new(&files);
    assert_eq!(
        graph.circles(),
        vec![vec!["a.rs".to_owned(), "b.rs".to_owned()]]
    );
    let layers: &[(&str, &[&str])] = &[("top", &["c"]), ("bottom", &["a", "b"])];
    assert!(graph.up_arrows(layers).is_empty());
    let flipped: &[(&str, &[&str])] = &[("top", &["a", "b"]), ("bottom", &["c"])];
    assert_eq!(graph.up_arrows(flipped), vec!["c.rs → a.rs (bottom → top)"]);
}

fn check(crate_name: &str, layers: &[(&str, &[&str])]) {
    let src = crate_src(crate_name);
    let mut files = BTreeMap::new();
    read_sources(&src, &src, &mut files);
    let tests: Vec<Vec<String>> = files
        .iter()
        .flat_map(|(m, text)| {
            test_children(text).into_iter().map(move |child| {
                let mut path = if m.first().is_some_and(|s| s == "main") {
                    Vec::new()
                } else {
                    m.clone()
                };
                path.push(child);
                path
            })
        })
        .collect();
    files.retain(|m, _| !tests.iter().any(|t| m.starts_with(t)));
    let graph = Graph::new(&files);
    if std::env::var_os("LAYERS_PRINT").is_some() {
        graph.print_modules(crate_name);
    }
    let mut problems = Vec::new();
    for circle in graph.circles() {
        problems.push(format!("files in a circle: {}", circle.join(", ")));
    }
    for circle in graph.module_circles() {
        problems.push(format!("modules in a circle: {}", circle.join(", ")));
    }
    for top in graph.top_modules() {
        if layer_of(layers, &top).is_none() {
            problems.push(format!("module `{top}` is in no layer (tests/layers.rs)"));
        }
    }
    for arrow in graph.up_arrows(layers) {
        problems.push(format!("arrow back up a layer: {arrow}"));
    }
    assert!(
        problems.is_empty(),
        "{crate_name}/src:\n  {}",
        problems.join("\n  ")
    );
}

fn layer_of<'a>(layers: &[(&'a str, &[&str])], top: &str) -> Option<(usize, &'a str)> {
    layers
        .iter()
        .enumerate()
        .find_map(|(i, (name, modules))| modules.contains(&top).then_some((i, *name)))
}

/// Every `.rs` file under `dir`, by module path (`a/b.rs` and `a/b/mod.rs` are `[a, b]`;
/// `lib.rs` and `main.rs` are the root).
fn read_sources(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<String>, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("reading the source folder")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            read_sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under the root");
            let mut segments: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if segments.last().is_some_and(|s| s == "mod")
                || (segments.len() == 1 && segments[0] == "lib")
            {
                segments.pop();
            }
            if segments.len() == 1 && segments[0] == "main" {
                // The binary is its own root; name it so it stays apart from lib.rs.
                segments = vec!["main".to_owned()];
            }
            let text = fs::read_to_string(&path).expect("reading a source file");
            out.insert(segments, text);
        }
    }
}

/// Files and the files each imports from.
struct Graph {
    /// Module path → display name (`a/b.rs`).
    names: BTreeMap<Vec<String>, String>,
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

impl Graph {
    fn new(files: &BTreeMap<Vec<String>, String>) -> Self {
        let modules: BTreeSet<Vec<String>> = files.keys().cloned().collect();
        let names = files
            .keys()
            .map(|m| (m.clone(), display(m, &modules)))
            .collect();
        let root_exports = files
            .get(&Vec::new())
            .map(|text| root_exports(&tokens(text)))
            .unwrap_or_default();
        let mut edges = BTreeMap::new();
        for (module, text) in files {
            let mut targets = BTreeSet::new();
            let base = if module.first().is_some_and(|m| m == "main") {
                Vec::new()
            } else {
                module.clone()
            };
            for path in paths(&tokens(text)) {
                let Some(absolute) = absolute(&base, &path) else {
                    continue;
                };
                let absolute = match absolute.first().and_then(|n| root_exports.get(n)) {
                    Some(full) if !modules.contains(&absolute[..1]) => full.clone(),
                    _ => absolute,
                };
                let Some(target) = (1..=absolute.len())
                    .rev()
                    .map(|n| absolute[..n].to_vec())
                    .find(|prefix| modules.contains(prefix))
                else {
                    continue;
                };
                // Itself, or one of its own children: containment.
                if target.starts_with(module) {
                    continue;
                }
                targets.insert(target);
            }
            edges.insert(module.clone(), targets);
        }
        Self { names, edges }
    }

    fn name(&self, m: &[String]) -> String {
        self.names.get(m).cloned().unwrap_or_else(|| m.join("/"))
    }

    fn top_modules(&self) -> BTreeSet<String> {
        self.edges.keys().map(|m| top(m)).collect()
    }

    /// Strongly connected groups of more than one file.
    fn circles(&self) -> Vec<Vec<String>> {
        let nodes: Vec<Vec<String>> = self.edges.keys().cloned().collect();
        strongly_connected(&nodes, |n| self.edges[n].iter().cloned().collect())
            .into_iter()
            .map(|group| group.iter().map(|m| self.name(m)).collect())
            .collect()
    }

    fn module_edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, targets) in &self.edges {
            let entry = out.entry(top(from)).or_default();
            entry.extend(targets.iter().map(|t| top(t)).filter(|t| *t != top(from)));
        }
        out
    }

    fn module_circles(&self) -> Vec<Vec<String>> {
        let edges = self.module_edges();
        let nodes: Vec<String> = edges.keys().cloned().collect();
        strongly_connected(&nodes, |n| edges[n].iter().cloned().collect())
    }

    fn up_arrows(&self, layers: &[(&str, &[&str])]) -> Vec<String> {
        let mut out = Vec::new();
        for (from, targets) in &self.edges {
            let Some((from_layer, from_name)) = layer_of(layers, &top(from)) else {
                continue;
            };
            for to in targets {
                let Some((to_layer, to_name)) = layer_of(layers, &top(to)) else {
                    continue;
                };
                if to_layer < from_layer {
                    out.push(format!(
                        "{} → {} ({from_name} → {to_name})",
                        self.name(from),
                        self.name(to)
                    ));
                }
            }
        }
        out
    }

    fn print_modules(&self, crate_name: &str) {
        println!("digraph \"{crate_name}\" {{");
        for (from, targets) in self.module_edges() {
            for to in targets {
                println!("  \"{from}\" -> \"{to}\";");
            }
        }
        println!("}}");
    }
}

/// `a/b.rs`, `a/b/mod.rs`, `lib.rs` or `main.rs`, as the file is named.
fn display(m: &[String], modules: &BTreeSet<Vec<String>>) -> String {
    if m.is_empty() {
        return "lib.rs".to_owned();
    }
    let has_children = modules
        .iter()
        .any(|o| o.len() > m.len() && o.starts_with(m));
    if has_children {
        format!("{}/mod.rs", m.join("/"))
    } else {
        format!("{}.rs", m.join("/"))
    }
}

/// The top-level module a file belongs to (`lib` for the root).
fn top(m: &[String]) -> String {
    m.first().cloned().unwrap_or_else(|| "lib".to_owned())
}

/// A path made absolute (`crate::a::b`, `super::c` from `[x, y]` → `[x, c]`); `None` for
/// paths that do not start at the crate (external crates, `self::`, plain names).
fn absolute(base: &[String], path: &[String]) -> Option<Vec<String>> {
    match path.first().map(String::as_str) {
        Some("crate") => Some(path[1..].to_vec()),
        Some("super") => {
            let mut at = base.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                at.pop()?;
                rest = &rest[1..];
            }
            at.extend(rest.iter().cloned());
            Some(at)
        }
        _ => None,
    }
}

/// The root's `pub use a::b::Name` re-exports: `Name` → `[a, b, Name]`.
fn root_exports(tokens: &[Token]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for path in paths(tokens) {
        if let Some(last) = path.last() {
            out.insert(last.clone(), path);
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
    /// `::`
    Colons,
}

/// The code's tokens, without comments, literals and `#[cfg(test)]` modules.
fn tokens(text: &str) -> Vec<Token> {
    without_test_modules(lex(text)).0
}

/// The `#[cfg(test)] mod name;` children of a file (their files are tests too).
fn test_children(text: &str) -> Vec<String> {
    without_test_modules(lex(text)).1
}

fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i + 1);
        } else if (c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some() {
            let (hashes, quote) = raw_string_start(&chars, i).expect("checked");
            i = quote + 1;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (0..hashes).all(|h| chars.get(i + 1 + h) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            if next == Some('\\') {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if (word == "b" || word == "c") && chars.get(i) == Some(&'"') {
                i = skip_string(&chars, i + 1);
            } else {
                out.push(Token::Ident(word));
            }
        } else if c == ':' && next == Some(':') {
            out.push(Token::Colons);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

fn skip_string(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// `r"`, `r#"`, `br##"`…: the number of `#` and where the quote is.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j))
}

/// Drops `#[cfg(test)] mod name { … }` and `#[cfg(test)] mod name;`, naming the latter.
fn without_test_modules(tokens: Vec<Token>) -> (Vec<Token>, Vec<String>) {
    let cfg_test = [
        Token::Punct('#'),
        Token::Punct('['),
        Token::Ident("cfg".into()),
        Token::Punct('('),
        Token::Ident("test".into()),
        Token::Punct(')'),
        Token::Punct(']'),
    ];
    let mut out = Vec::new();
    let mut children = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let is_test_module = tokens[i..].starts_with(&cfg_test)
            && tokens.get(i + 7) == Some(&Token::Ident("mod".into()));
        if !is_test_module {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        i += 9; // the attribute, `mod` and its name
        if tokens.get(i) == Some(&Token::Punct('{')) {
            let mut depth = 0;
            while i < tokens.len() {
                match tokens[i] {
                    Token::Punct('{') => depth += 1,
                    Token::Punct('}') => depth -= 1,
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
        } else {
            if let Some(Token::Ident(name)) = tokens.get(i - 1) {
                children.push(name.clone());
            }
            i += 1;
        }
    }
    (out, children)
}

/// Every path the code names: each leaf of a `use` tree, and each inline `a::b::c`.
fn paths(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == Token::Ident("use".into()) {
            let end = tokens[i..]
                .iter()
                .position(|t| *t == Token::Punct(';'))
                .map_or(tokens.len(), |p| i + p);
            use_tree(&tokens[i + 1..end], &[], &mut out);
            i = end + 1;
            continue;
        }
        let starts_path = matches!(&tokens[i], Token::Ident(_))
            && (i == 0 || tokens[i - 1] != Token::Colons)
            && tokens.get(i + 1) == Some(&Token::Colons);
        if starts_path {
            let mut path = Vec::new();
            while let Some(Token::Ident(name)) = tokens.get(i) {
                path.push(name.clone());
                if tokens.get(i + 1) == Some(&Token::Colons) {
                    i += 2;
                } else {
                    i += 1;
                    break;
                }
            }
            out.push(path);
            continue;
        }
        i += 1;
    }
    out
}

/// The leaves of a use tree (`a::{b, c::{d, e}}`, `a as b`, `a::*`, `self`).
fn use_tree(tokens: &[Token], prefix: &[String], out: &mut Vec<Vec<String>>) {
    if tokens.is_empty() {
        return; // after a trailing comma
    }
    let mut path = prefix.to_vec();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(name) if name == "as" => break,
            Token::Ident(name) if name == "self" && !path.is_empty() => {}
            Token::Ident(name) => path.push(name.clone()),
            Token::Punct('{') => {
                let mut depth = 0;
                let mut start = i + 1;
                for (j, t) in tokens.iter().enumerate().skip(i) {
                    match t {
                        Token::Punct('{') => depth += 1,
                        Token::Punct('}') => depth -= 1,
                        Token::Punct(',') if depth == 1 => {
                            use_tree(&tokens[start..j], &path, out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        use_tree(&tokens[start..j], &path, out);
                        return;
                    }
                }
                return;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(path);
}

/// Tarjan's algorithm: the groups of more than one node that reach each other.
fn strongly_connected<N: Clone + Ord>(nodes: &[N], next: impl Fn(&N) -> Vec<N>) -> Vec<Vec<N>> {
    struct State<N> {
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on_stack: BTreeSet<N>,
        groups: Vec<Vec<N>>,
    }
    fn visit<N: Clone + Ord>(n: &N, next: &impl Fn(&N) -> Vec<N>, s: &mut State<N>) {
        let i = s.index.len();
        s.index.insert(n.clone(), i);
        s.low.insert(n.clone(), i);
        s.stack.push(n.clone());
        s.on_stack.insert(n.clone());
        for m in next(n) {
            if !s.index.contains_key(&m) {
                visit(&m, next, s);
                let low = s.low[n].min(s.low[&m]);
                s.low.insert(n.clone(), low);
            } else if s.on_stack.contains(&m) {
                let low = s.low[n].min(s.index[&m]);
                s.low.insert(n.clone(), low);
            }
        }
        if s.low[n] == s.index[n] {
            let mut group = Vec::new();
            while let Some(m) = s.stack.pop() {
                s.on_stack.remove(&m);
                let done = &m == n;
                group.push(m);
                if done {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.groups.push(group);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for n in nodes {
        if !state.index.contains_key(n) {
            visit(n, &next, &mut state);
        }
    }
    state.groups.sort();
    state.groups
}
