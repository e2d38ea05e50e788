//! The module graph of a crate, read from its sources as text: which module refers to which
//! through `crate::…`, `super::…`, `self::…` and relative `use` paths, with re-exports
//! followed to the module that defines the item.
//!
//! Comments and string literals are skipped (a doc link is not a dependency). The reader
//! knows modules declared with `mod name;` (in `name.rs` or `name/mod.rs`) and inline
//! `mod name { … }`; `#[path]` attributes are not followed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside its crate: `[]` is the crate root, `["engine", "host"]` is
/// `crate::engine::host`.
pub(crate) type ModPath = Vec<String>;

/// One reference from a module to another, kept to show where a dependency comes from.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    /// The module that refers.
    pub(crate) from: ModPath,
    /// The module it refers to (after following re-exports).
    pub(crate) to: ModPath,
    /// The file holding the reference.
    pub(crate) file: PathBuf,
    /// The path as written.
    pub(crate) written: String,
}

#[derive(Debug, Default)]
struct Module {
    /// Child modules, by name.
    children: BTreeSet<String>,
    /// Names brought in by `use`, as written (relative to this module).
    imports: BTreeMap<String, Vec<String>>,
    /// Sources of `use …::*`.
    globs: Vec<Vec<String>>,
    /// Items defined here (types, functions, constants, macros).
    items: BTreeSet<String>,
}

/// A crate's modules and every reference between them.
#[derive(Debug, Default)]
pub(crate) struct CrateGraph {
    modules: BTreeMap<ModPath, Module>,
    /// References as written, resolved by [`CrateGraph::references`].
    raw: Vec<(ModPath, Vec<String>, PathBuf)>,
}

impl CrateGraph {
    /// Reads the crate whose root file (`lib.rs`, `main.rs`) is `root`.
    pub(crate) fn read(root: &Path) -> Result<Self, String> {
        let mut graph = Self::default();
        graph.read_file(root, Vec::new(), true)?;
        Ok(graph)
    }

    fn read_file(&mut self, file: &Path, module: ModPath, owns_dir: bool) -> Result<(), String> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let tokens = tokenize(&text);
        let declared = self.scan(&tokens, &module, file);
        let pathed = path_attributes(&text);
        // Where this file's `mod name;` children live.
        let dir = if owns_dir {
            file.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            let stem = file.file_stem().map(|s| s.to_owned()).unwrap_or_default();
            file.parent().map(|p| p.join(stem)).unwrap_or_default()
        };
        for (parent, name) in declared {
            // A `mod name;` inside an inline module lives in a folder named after it.
            let mut at = dir.clone();
            for inline in &parent[module.len()..] {
                at = at.join(inline);
            }
            let flat = at.join(format!("{name}.rs"));
            let nested = at.join(&name).join("mod.rs");
            let mut child = parent.clone();
            child.push(name.clone());
            // `#[path = "…"] mod name;` (outside inline modules): relative to this file's
            // folder, and read like a `mod.rs`.
            let attributed = (parent.len() == module.len())
                .then(|| pathed.get(&name))
                .flatten()
                .and_then(|p| file.parent().map(|d| d.join(p)));
            if let Some(path) = attributed {
                self.read_file(&path, child, true)?;
            } else if flat.is_file() {
                self.read_file(&flat, child, false)?;
            } else if nested.is_file() {
                self.read_file(&nested, child, true)?;
            } else {
                return Err(format!(
                    "module `{name}` declared in {} has no file",
                    file.display()
                ));
            }
        }
        Ok(())
    }

    /// Records the modules, imports, items and references of one file's tokens; returns
    /// the `mod name;` declarations as (parent module, name).
    fn scan(&mut self, tokens: &[Token], module: &ModPath, file: &Path) -> Vec<(ModPath, String)> {
        self.modules.entry(module.clone()).or_default();
        let mut declared = Vec::new();
        // Inline modules open: (their path, the brace depth inside them).
        let mut stack: Vec<(ModPath, usize)> = vec![(module.clone(), 0)];
        let mut depth = 0usize;
        let mut i = 0;
        while i < tokens.len() {
            let current = stack.last().map(|(m, _)| m.clone()).unwrap_or_default();
            let at_top = stack.last().is_some_and(|(_, d)| *d == depth);
            match &tokens[i] {
                Token::Punct('{') => depth += 1,
                Token::Punct('}') => {
                    if stack.len() > 1 && stack.last().is_some_and(|(_, d)| *d == depth) {
                        stack.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                Token::Ident(kw) if kw == "mod" => {
                    if let (Some(Token::Ident(name)), Some(next)) =
                        (tokens.get(i + 1), tokens.get(i + 2))
                    {
                        let mut child = current.clone();
                        child.push(name.clone());
                        self.module(&current).children.insert(name.clone());
                        self.modules.entry(child.clone()).or_default();
                        if *next == Token::Punct('{') {
                            depth += 1;
                            stack.push((child, depth));
                            i += 3;
                            continue;
                        }
                        if *next == Token::Punct(';') {
                            declared.push((current.clone(), name.clone()));
                        }
                        i += 2;
                    }
                }
                Token::Ident(kw) if kw == "use" => {
                    let end = tokens[i..]
                        .iter()
                        .position(|t| *t == Token::Punct(';'))
                        .map_or(tokens.len(), |p| i + p);
                    let mut leaves = Vec::new();
                    use_tree(&tokens[i + 1..end], Vec::new(), &mut leaves);
                    for (path, alias) in leaves {
                        match alias.as_deref() {
                            Some("*") => self.module(&current).globs.push(path.clone()),
                            Some("_") => {}
                            Some(name) => {
                                self.module(&current)
                                    .imports
                                    .insert(name.to_owned(), path.clone());
                            }
                            None => {}
                        }
                        self.raw.push((current.clone(), path, file.to_path_buf()));
                    }
                    i = end + 1;
                    continue;
                }
                Token::Ident(kw)
                    if at_top
                        && matches!(
                            kw.as_str(),
                            "struct"
                                | "enum"
                                | "fn"
                                | "type"
                                | "trait"
                                | "const"
                                | "static"
                                | "union"
                                | "macro_rules"
                        ) =>
                {
                    let name = match tokens.get(i + 1) {
                        Some(Token::Punct('!')) => tokens.get(i + 2),
                        other => other,
                    };
                    if let Some(Token::Ident(name)) = name {
                        self.module(&current).items.insert(name.clone());
                    }
                }
                Token::Ident(first)
                    if matches!(first.as_str(), "crate" | "$crate" | "super" | "self")
                        && tokens.get(i + 1) == Some(&Token::PathSep) =>
                {
                    let mut path = vec![first.clone()];
                    let mut j = i + 1;
                    while tokens.get(j) == Some(&Token::PathSep) {
                        match tokens.get(j + 1) {
                            Some(Token::Ident(seg)) => {
                                path.push(seg.clone());
                                j += 2;
                            }
                            _ => break,
                        }
                    }
                    self.raw.push((current.clone(), path, file.to_path_buf()));
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        declared
    }

    fn module(&mut self, path: &ModPath) -> &mut Module {
        self.modules.entry(path.clone()).or_default()
    }

    /// Every module of the crate.
    pub(crate) fn modules(&self) -> impl Iterator<Item = &ModPath> {
        self.modules.keys()
    }

    /// Every reference between modules, resolved.
    pub(crate) fn references(&self) -> Vec<Reference> {
        self.raw
            .iter()
            .filter_map(|(from, path, file)| {
                let to = self.resolve(from, path, 0)?;
                Some(Reference {
                    from: from.clone(),
                    to,
                    file: file.clone(),
                    written: path.join("::"),
                })
            })
            .collect()
    }

    /// The module `path`, written in module `at`, leads to (following re-exports); `None`
    /// for a path into another crate.
    fn resolve(&self, at: &ModPath, path: &[String], hops: usize) -> Option<ModPath> {
        if hops > 16 || path.is_empty() {
            return None;
        }
        let mut cur: ModPath = match path[0].as_str() {
            "crate" | "$crate" => Vec::new(),
            "self" => at.clone(),
            "super" => {
                let mut m = at.clone();
                m.pop();
                m
            }
            first => {
                // A relative path: a child module or a name imported here; else another crate.
                let here = self.modules.get(at)?;
                if here.children.contains(first) {
                    let mut m = at.clone();
                    m.push(first.to_owned());
                    m
                } else {
                    let target = here.imports.get(first)?;
                    let mut full = target.clone();
                    full.extend(path[1..].iter().cloned());
                    return self.resolve(at, &full, hops + 1);
                }
            }
        };
        let mut rest = &path[1..];
        while path[0] == "super" && rest.first().is_some_and(|s| s == "super") {
            cur.pop();
            rest = &rest[1..];
        }
        for (k, seg) in rest.iter().enumerate() {
            let module = self.modules.get(&cur)?;
            if seg == "self" {
                continue;
            }
            if module.children.contains(seg) {
                cur.push(seg.clone());
                continue;
            }
            if module.items.contains(seg) {
                return Some(cur);
            }
            if let Some(target) = module.imports.get(seg) {
                let mut full = target.clone();
                full.extend(rest[k + 1..].iter().cloned());
                return self.resolve(&cur, &full, hops + 1);
            }
            for glob in &module.globs {
                if let Some(source) = self.resolve(&cur, glob, hops + 1) {
                    let defines = self.modules.get(&source).is_some_and(|m| {
                        m.children.contains(seg)
                            || m.items.contains(seg)
                            || m.imports.contains_key(seg)
                    });
                    if defines {
                        let mut full = source.iter().fold(vec!["crate".to_owned()], |mut v, s| {
                            v.push(s.clone());
                            v
                        });
                        full.extend(rest[k..].iter().cloned());
                        return self.resolve(&cur, &full, hops + 1);
                    }
                }
            }
            // An item of `cur` the reader did not see defined (a variant, a derive's output).
            return Some(cur);
        }
        Some(cur)
    }

    /// Module cycles: for each module, the graph between its direct children (a child
    /// stands for everything under it; a module referring to its own parent or child is
    /// the normal shape of a tree, not a cycle). Returns each cycle found as the names of
    /// the modules in it, with a reference of each edge as evidence.
    pub(crate) fn cycles(&self) -> Vec<String> {
        let mut graphs: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, Reference>>> =
            BTreeMap::new();
        for r in self.references() {
            let common = r.from.iter().zip(&r.to).take_while(|(a, b)| a == b).count();
            if common == r.from.len() || common == r.to.len() {
                continue;
            }
            let parent = r.from[..common].to_vec();
            let (a, b) = (r.from[common].clone(), r.to[common].clone());
            graphs
                .entry(parent)
                .or_default()
                .entry(a)
                .or_default()
                .entry(b)
                .or_insert(r);
        }
        let mut found = Vec::new();
        for (parent, edges) in &graphs {
            for component in strongly_connected(edges) {
                if component.len() < 2 {
                    continue;
                }
                let at = if parent.is_empty() {
                    "crate".to_owned()
                } else {
                    format!("crate::{}", parent.join("::"))
                };
                let mut evidence = Vec::new();
                for a in &component {
                    for (b, r) in edges.get(a).into_iter().flatten() {
                        if component.contains(b) {
                            evidence.push(format!(
                                "{a} -> {b} ({} writes `{}`)",
                                r.file.display(),
                                r.written
                            ));
                        }
                    }
                }
                found.push(format!(
                    "in {at}: {{{}}}: {}",
                    component.iter().cloned().collect::<Vec<_>>().join(", "),
                    evidence.join("; ")
                ));
            }
        }
        found
    }
}

/// Tarjan's strongly connected components of a small graph.
fn strongly_connected(
    edges: &BTreeMap<String, BTreeMap<String, Reference>>,
) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, Reference>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The leaves of a `use` tree: each full path, with the name it binds (`*` for a glob,
/// `None` for `self`-less group roots that bind nothing).
fn use_tree(tokens: &[Token], prefix: Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    let mut path = prefix;
    let mut i = 0;
    // `pub`, `pub(crate)` and friends before `use` were already passed; a leading `::`
    // names an outside crate.
    if tokens.first() == Some(&Token::PathSep) {
        return;
    }
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(seg) if seg == "as" => {
                if let Some(Token::Ident(alias)) = tokens.get(i + 1) {
                    if seg_is_self(&path) {
                        path.pop();
                    }
                    out.push((path.clone(), Some(alias.clone())));
                }
                return;
            }
            Token::Ident(seg) => {
                path.push(seg.clone());
                i += 1;
            }
            Token::PathSep => i += 1,
            Token::Punct('*') => {
                out.push((path, Some("*".to_owned())));
                return;
            }
            Token::Punct('{') => {
                // Split the group at its top-level commas.
                let mut depth = 0;
                let mut start = i + 1;
                for j in i + 1..tokens.len() {
                    match tokens[j] {
                        Token::Punct('{') => depth += 1,
                        Token::Punct('}') if depth == 0 => {
                            if start < j {
                                use_tree(&tokens[start..j], path.clone(), out);
                            }
                            return;
                        }
                        Token::Punct('}') => depth -= 1,
                        Token::Punct(',') if depth == 0 => {
                            if start < j {
                                use_tree(&tokens[start..j], path.clone(), out);
                            }
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            Token::Punct(_) => return,
        }
    }
    if seg_is_self(&path) {
        path.pop();
    }
    let name = path.last().cloned();
    out.push((path, name));
}

fn seg_is_self(path: &[String]) -> bool {
    path.len() > 1 && path.last().is_some_and(|s| s == "self")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Identifiers, `::` and punctuation of Rust source, without comments, strings, characters
/// and lifetimes.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let n = chars.len();
    while i < n {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < n && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < n {
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
        } else if (c == 'r' || c == 'b') && is_raw_string_start(&chars, i) {
            let mut j = i + 1;
            if chars[i] == 'b' {
                j += 1; // `br`
            }
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            loop {
                if j >= n {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if c == 'b' && next == Some('"') {
            i = skip_string(&chars, i + 2);
        } else if c == '\'' || (c == 'b' && next == Some('\'')) {
            // A character literal, or a lifetime / label.
            let start = if c == 'b' { i + 1 } else { i };
            if chars.get(start + 1) == Some(&'\\') {
                let mut j = start + 2;
                while j < n && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if chars.get(start + 2) == Some(&'\'') {
                i = start + 3;
            } else {
                // A lifetime: skip its name.
                let mut j = start + 1;
                while j < n && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                i = j;
            }
        } else if c == '$' || c.is_alphabetic() || c == '_' {
            let mut j = i + 1;
            while j < n && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let mut word: String = chars[i..j].iter().collect();
            if word == "r" && chars.get(j) == Some(&'#') {
                // A raw identifier.
                let mut k = j + 1;
                while k < n && (chars[k].is_alphanumeric() || chars[k] == '_') {
                    k += 1;
                }
                word = chars[j + 1..k].iter().collect();
                j = k;
            }
            out.push(Token::Ident(word));
            i = j;
        } else if c.is_ascii_digit() {
            while i < n && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                if chars[i] == '.' && chars.get(i + 1) == Some(&'.') {
                    break;
                }
                i += 1;
            }
        } else if c == ':' && next == Some(':') {
            out.push(Token::PathSep);
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

fn is_raw_string_start(chars: &[char], i: usize) -> bool {
    let mut j = i + 1;
    if chars[i] == 'b' {
        if chars.get(j) != Some(&'r') {
            return false;
        }
        j += 1;
    }
    // Not part of a longer identifier.
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
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

/// The `#[path = "…"]` attributes of a file's `mod name;` declarations: name → path.
fn path_attributes(text: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for (at, _) in text.match_indices("#[path = \"") {
        let rest = &text[at + "#[path = \"".len()..];
        let Some((path, after)) = rest.split_once("\"]") else {
            continue;
        };
        let mut words = after.split_whitespace();
        let mut word = words.next();
        if word.is_some_and(|w| w.starts_with("pub")) {
            word = words.next();
        }
        if word == Some("mod")
            && let Some(name) = words.next().and_then(|n| n.strip_suffix(';'))
        {
            found.insert(name.to_owned(), path.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod reader {
    use super::*;

    #[test]
    fn a_use_group_yields_every_path_with_its_name() {
        let tokens = tokenize("crate::{Error, engine::{self, host::Shared as S}, bus::*}");
        let mut out = Vec::new();
        use_tree(&tokens, Vec::new(), &mut out);
        let shown: Vec<String> = out
            .iter()
            .map(|(p, n)| format!("{}={}", p.join("::"), n.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            shown,
            [
                "crate::Error=Error",
                "crate::engine=engine",
                "crate::engine::host::Shared=S",
                "crate::bus=*"
            ]
        );
    }

    #[test]
    fn comments_strings_and_lifetimes_are_not_read_as_paths() {
        let tokens = tokenize(
            "// crate::a\n/* crate::b */ let s = \"crate::c\"; let r = r#\"crate::d\"#; fn f<'a>(x: &'a str) -> char { 'x' } crate::e",
        );
        let idents: Vec<&str> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Ident(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert!(!idents.contains(&"a") && !idents.contains(&"b"));
        assert!(!idents.contains(&"c") && !idents.contains(&"d"));
        assert!(idents.ends_with(&["crate", "e"]), "{idents:?}");
    }
}
