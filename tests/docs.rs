//! The docs stand alone and stay true: every path and every type or function that the
//! repository's Markdown names in backticks exists in the repository, and no document
//! refers to one outside it. Named as an invariant in ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Names in backticks that are not ours: std, tokio, sqlx, serde and other crates' items,
/// which the docs mention to explain ours.
const FOREIGN: &[&str] = &[
    "Arc",
    "Box",
    "BTreeMap",
    "Cow",
    "DateTime",
    "Deserialize",
    "EventSource",
    "HashMap",
    "IpAddr",
    "JoinSet",
    "Notify",
    "Option",
    "PathBuf",
    "QueryBuilder",
    "RegexSet",
    "Result",
    "Serialize",
    "String",
    "Uuid",
    "Vec",
    // Fields of /proc/PID/status.
    "VmHWM",
    "VmRSS",
];

/// Top-level folders and files of the repository, read from the work tree.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files whose names are checked.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("ARCHITECTURE.md"), root().join("README.md")];
    for dir in ["docs", "fuzz", "benches", "examples", "testsupport"] {
        collect(&root().join(dir), "md", &mut docs);
    }
    for entry in fs::read_dir(root()).expect("the repository root is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() && path.join("Cargo.toml").is_file() {
            collect_shallow(&path, "md", &mut docs);
        }
    }
    docs.sort();
    docs.dedup();
    docs
}

fn collect_shallow(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() && path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn collect(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// The workspace's crates: package name (with `_`) → folder.
fn crates() -> BTreeMap<String, PathBuf> {
    let mut crates = BTreeMap::new();
    let mut manifests = Vec::new();
    collect(root(), "toml", &mut manifests);
    for manifest in manifests {
        if manifest.file_name().is_none_or(|n| n != "Cargo.toml") {
            continue;
        }
        let text = fs::read_to_string(&manifest).expect("a manifest is readable");
        let Some(package) = text.split("[package]").nth(1) else {
            continue;
        };
        let name = package
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').replace('-', "_"));
        if let (Some(name), Some(dir)) = (name, manifest.parent()) {
            crates.insert(name, dir.to_path_buf());
        }
    }
    crates
}

/// Every Rust source of the repository, as text.
fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    collect(root(), "rs", &mut files);
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).expect("a source is readable");
            (p, text)
        })
        .collect()
}

/// The names each source file defines: its own stem, items after a keyword (`struct X`,
/// `fn x`, `mod x`, …), re-exports (`… as x;`) and enum variants (`X,`, `X(…)`, `X { … }`
/// at the start of a line).
fn definitions(sources: &[(PathBuf, String)]) -> Vec<(PathBuf, BTreeSet<String>)> {
    const KEYWORDS: &[&str] = &[
        "struct", "enum", "trait", "fn", "type", "mod", "const", "static", "union", "as",
    ];
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    sources
        .iter()
        .map(|(path, text)| {
            let mut names = BTreeSet::new();
            if let Some(stem) = path.file_stem() {
                names.insert(stem.to_string_lossy().into_owned());
            }
            for line in text.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                for pair in words.windows(2) {
                    if KEYWORDS.contains(&pair[0]) || pair[0] == "macro_rules!" {
                        names.insert(ident(pair[1]));
                    }
                }
                let first = ident(line.trim_start());
                let rest = &line.trim_start()[first.len()..];
                if !first.is_empty() && (rest.is_empty() || rest.starts_with([',', '(', ' '])) {
                    names.insert(first);
                }
            }
            (path.clone(), names)
        })
        .collect()
}

/// Whether `name` is defined in one of the files under `dir`.
fn defined(definitions: &[(PathBuf, BTreeSet<String>)], dir: &Path, name: &str) -> bool {
    definitions
        .iter()
        .any(|(p, names)| p.starts_with(dir) && names.contains(name))
}

/// The backticked spans of a Markdown text outside fenced code blocks, with their line.
fn spans(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            out.push((n + 1, inside.to_owned()));
        }
    }
    out
}

/// Whether a span reads as a path inside the repository.
fn is_repo_path(span: &str) -> bool {
    let known_ext = [".rs", ".md", ".json", ".toml", ".sql", ".sh"];
    !span.is_empty()
        && !span.contains(char::is_whitespace)
        && !span.starts_with('/')
        && !span.starts_with('~')
        && (!span.starts_with('.') || span.starts_with(".ci/"))
        && !span.contains("://")
        && !span.contains([
            '{', '}', '<', '>', '*', '$', '=', '(', '@', '\'', '"', '|', ':',
        ])
        && (span.contains('/') || known_ext.iter().any(|e| span.ends_with(e)))
        && span
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
}

/// Whether `path` starts with one of the repository's top-level folders (`job-core/…`,
/// `tests/…`, `docs/…`): such a path can only mean a file of the repository. Other docs
/// also name paths on a host or in jobd's data directory, which are not checked.
fn names_top_level_folder(path: &str) -> bool {
    path.split_once('/').is_some_and(|(first, _)| {
        !first.is_empty() && root().join(first).is_dir() && first != "target"
    })
}

/// Resolves a repository path named in `doc`, which may be relative to the repository,
/// to the document's folder, or (in ARCHITECTURE.md's code map) to the crate the paragraph
/// is about.
fn resolves(path: &str, doc: &Path, context: Option<&Path>) -> bool {
    let path = path.trim_end_matches('/');
    let mut bases = vec![root().to_path_buf()];
    if let Some(dir) = doc.parent() {
        bases.push(dir.to_path_buf());
    }
    if let Some(dir) = context {
        bases.push(dir.to_path_buf());
        bases.push(dir.join("src"));
        bases.push(dir.join("src").join("bin"));
    }
    bases.iter().any(|b| b.join(path).exists())
}

#[test]
fn every_path_type_and_function_the_docs_name_exists() {
    let crates = crates();
    let definitions = definitions(&sources());
    let mut missing = BTreeSet::new();
    for doc in documents() {
        let text = fs::read_to_string(&doc).expect("a document is readable");
        let rel = doc
            .strip_prefix(root())
            .unwrap_or(&doc)
            .display()
            .to_string();
        let mut context: Option<PathBuf> = None;
        for (line_no, line) in text.lines().enumerate() {
            // A code-map paragraph names its crate first: **`job-core`** — …
            if let Some(rest) = line.strip_prefix("**`") {
                let name = rest.split('`').next().unwrap_or_default();
                let folder = name.trim_end_matches('/');
                context = crates
                    .get(&name.replace('-', "_"))
                    .cloned()
                    .or_else(|| Some(root().join(folder)).filter(|p| p.is_dir()));
            }
            if line.trim().is_empty() {
                context = None;
                continue;
            }
            for (_, span) in spans(line) {
                let span = span.trim();
                // `file.rs::function`: the file, then the function in it.
                let (path_part, item) = match span.split_once("::") {
                    Some((p, i)) if is_repo_path(p) => (p, Some(i)),
                    _ => (span, None),
                };
                let checked = is_repo_path(path_part)
                    && (doc.ends_with("ARCHITECTURE.md") || names_top_level_folder(path_part));
                if is_repo_path(path_part) && !checked {
                    continue;
                }
                if checked {
                    if !resolves(path_part, &doc, context.as_deref()) {
                        missing.insert(format!("{rel}:{}: path `{span}`", line_no + 1));
                    } else if let Some(item) = item {
                        let file = [root(), doc.parent().unwrap_or(root())]
                            .iter()
                            .map(|b| b.join(path_part))
                            .find(|p| p.is_file());
                        let found = file.is_some_and(|f| {
                            fs::read_to_string(f).is_ok_and(|t| t.contains(&format!("fn {item}")))
                        });
                        if !found {
                            missing.insert(format!("{rel}:{}: `{span}`", line_no + 1));
                        }
                    }
                    continue;
                }
                // `job_core::engine::request_cancel`: every segment after the crate is a
                // module, type or function defined in that crate.
                let segments: Vec<&str> = span.split("::").collect();
                if segments.len() > 1 {
                    if let Some(dir) = crates.get(segments[0]) {
                        for seg in &segments[1..] {
                            let seg = seg.trim_end_matches("()");
                            if seg.is_empty()
                                || !seg.chars().all(|c| c.is_alphanumeric() || c == '_')
                            {
                                continue;
                            }
                            if !defined(&definitions, dir, seg) {
                                missing.insert(format!(
                                    "{rel}:{}: `{span}` ({seg} is not defined in {})",
                                    line_no + 1,
                                    segments[0]
                                ));
                            }
                        }
                    }
                    continue;
                }
                // A bare type name (`BlobStore`): defined somewhere in the repository.
                let is_type_name = span.len() > 2
                    && span.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && span.chars().all(|c| c.is_ascii_alphanumeric())
                    && span.chars().any(|c| c.is_ascii_lowercase())
                    && span.chars().skip(1).any(|c| c.is_ascii_uppercase());
                if is_type_name && !FOREIGN.contains(&span) && !defined(&definitions, root(), span)
                {
                    missing.insert(format!("{rel}:{}: type `{span}`", line_no + 1));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the docs name what does not exist in the repository:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn architecture_code_map_covers_every_crate_and_top_level_folder() {
    let map = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let map = map
        .split("## Code map")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("ARCHITECTURE.md has a code map section");
    let mut absent = Vec::new();
    for (name, dir) in crates() {
        let folder = dir
            .strip_prefix(root())
            .unwrap_or(&dir)
            .display()
            .to_string();
        if dir.starts_with(root().join("fuzz")) || dir == root() && name != "job" {
            continue;
        }
        let crate_name = name.replace('_', "-");
        let top = folder.split('/').next().unwrap_or_default();
        if !map.contains(&format!("`{crate_name}`"))
            && !map.contains(&format!("`{folder}/`"))
            && !map.contains(&format!("`{top}/`"))
        {
            absent.push(format!("crate {crate_name} ({folder})"));
        }
    }
    for entry in fs::read_dir(root()).expect("the repository root is readable") {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().is_dir() || name == "target" || name == ".git" {
            continue;
        }
        if !map.contains(&format!("`{name}/`")) && !map.contains(&format!("`{name}`")) {
            absent.push(format!("folder {name}/"));
        }
    }
    assert!(
        absent.is_empty(),
        "ARCHITECTURE.md's code map does not mention: {}",
        absent.join(", ")
    );
}

#[test]
fn no_document_refers_to_one_outside_the_repository() {
    let mut found = Vec::new();
    let mut files = documents();
    for (path, _) in sources() {
        files.push(path);
    }
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            // Spelled in pieces so this file does not match itself.
            if line.contains(concat!("DESIGN", " §"))
                || line.contains(concat!("shared/", "DESIGN"))
                || line.contains(concat!("../", "shared/"))
            {
                found.push(format!(
                    "{}:{}",
                    file.strip_prefix(root()).unwrap_or(&file).display(),
                    n + 1
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "references to documents outside the repository: {found:?}"
    );
}
