//! Files as nodes, the `crate::…` and `super::…` paths they name as edges; the circles
//! (Tarjan) and the arrows that run back up a layer.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    layer_of,
    tokens::{Token, paths, tokens},
};

/// Files and the files each imports from.
pub(crate) struct Graph {
    /// Module path → display name (`a/b.rs`).
    names: BTreeMap<Vec<String>, String>,
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

impl Graph {
    pub(crate) fn new(files: &BTreeMap<Vec<String>, String>) -> Self {
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

    pub(crate) fn top_modules(&self) -> BTreeSet<String> {
        self.edges.keys().map(|m| top(m)).collect()
    }

    /// Strongly connected groups of more than one file.
    pub(crate) fn circles(&self) -> Vec<Vec<String>> {
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

    pub(crate) fn module_circles(&self) -> Vec<Vec<String>> {
        let edges = self.module_edges();
        let nodes: Vec<String> = edges.keys().cloned().collect();
        strongly_connected(&nodes, |n| edges[n].iter().cloned().collect())
    }

    pub(crate) fn up_arrows(&self, layers: &[(&str, &[&str])]) -> Vec<String> {
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

    pub(crate) fn print_modules(&self, crate_name: &str) {
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
