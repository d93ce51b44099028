//! The import graph of the sources: files as nodes, `crate::…` and `super::…` paths (in
//! `use` declarations and inline) as edges. Fails on a circle between files, a circle
//! between top-level modules, and an edge that runs back up a layer; the layers are the
//! tables below, and docs/layout.md ("Layers") says the same. A module not in a table
//! fails too: a new one is placed on purpose.
//!
//! A parent's own children are containment, not imports (a `mod.rs` re-exports its
//! children; they may use what it declares), so edges into a file's own descendants are
//! left out. `#[cfg(test)]` modules are left out: a unit test may set up whatever it needs.
//!
//! `LAYERS_PRINT=1 cargo nextest run -p messaging-grpc --test layers` prints the graph
//! between top-level modules (with `--no-capture`).

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

/// The graph of files and imports: circles, arrows back up a layer.
mod graph;
/// The sources as tokens, and the paths they name.
mod tokens;

use graph::Graph;
use tokens::test_children;

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
            problems.push(format!(
                "module `{top}` is in no layer (tests/layers/main.rs)"
            ));
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
