//! Every relative link in the repository's Markdown (README.md, docs/, BENCHMARKS.md …)
//! resolves: the file exists and, when the link names a heading (`page.md#heading`), the
//! page has that heading. The README is a landing page that points into docs/; a moved or
//! renamed page must not leave a newcomer on a dead link.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace root")
        .to_path_buf()
}

/// Markdown files of the repository (build output and fuzz corpora left out).
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "corpus") {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// Lines outside fenced code blocks (a `](x)` in a shell example is not a link).
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// The targets of inline links `[text](target)` on a line.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].split_whitespace().next().unwrap_or_default();
        targets.push(target.to_owned());
        rest = &after[end..];
    }
    targets
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose_lines(text)
        .into_iter()
        .filter(|l| l.starts_with('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

fn broken_links(file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).expect("reading a Markdown file");
    let mut broken = Vec::new();
    for line in prose_lines(&text) {
        for target in link_targets(line) {
            let external = ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| target.starts_with(scheme));
            if external || target.is_empty() {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                file.parent().expect("a file has a folder").join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{}: {target} (no such file)", file.display()));
                continue;
            }
            if let Some(anchor) = anchor
                && resolved.extension().is_some_and(|e| e == "md")
            {
                let page = fs::read_to_string(&resolved).expect("reading the linked page");
                if !anchors(&page).contains(anchor) {
                    broken.push(format!("{}: {target} (no such heading)", file.display()));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_resolves() {
    let mut files = Vec::new();
    markdown_files(&repo_root(), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("docs/README.md")),
        "the docs index is missing"
    );
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_landing_page_that_links_every_docs_page() {
    let root = repo_root();
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(
        lines < 250,
        "README.md has {lines} lines; the rest belongs in docs/"
    );
    let mut pages = Vec::new();
    markdown_files(&root.join("docs"), &mut pages);
    for page in pages {
        let name = page.strip_prefix(&root).expect("under the root");
        let name = name.to_string_lossy();
        if name == "docs/README.md" {
            continue;
        }
        assert!(
            readme.contains(&format!("]({name}")),
            "README.md does not link {name}"
        );
    }
}

#[test]
fn the_checker_sees_a_broken_link() {
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("page.md");
    fs::write(dir.path().join("other.md"), "# Other page\n## A section\n").expect("write");
    fs::write(
        &page,
        "[ok](other.md) [ok](other.md#a-section) [gone](missing.md) [bad](other.md#nope)\n\
         ```\n[not a link](nowhere.md)\n```\n",
    )
    .expect("write");
    let broken = broken_links(&page);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(broken[0].contains("missing.md") && broken[1].contains("#nope"));
}
