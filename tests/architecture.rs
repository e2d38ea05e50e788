//! Architecture invariants that a compiler cannot see, checked on every test run.
//! Each one is named in ARCHITECTURE.md.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[path = "architecture/modules.rs"]
mod modules;

use modules::CrateGraph;

/// Crates that only backends and adapters may depend on.
const BACKEND_CRATES: &[&str] = &[
    "sqlx",
    "sqlx-core",
    "sqlx-sqlite",
    "sqlx-postgres",
    "libsqlite3-sys",
    "tokio-postgres",
    "russh",
    "russh-keys",
    "axum",
    "axum-core",
    "hyper",
    "tower-http",
    "async-nats",
    "reqwest",
    "rustls",
];

fn metadata() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Names of every package `root` depends on through normal (non-dev, non-build) edges.
fn normal_closure(meta: &Value, root: &str) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let start = names
        .iter()
        .find(|(_, n)| **n == root)
        .map(|(id, _)| *id)
        .expect("root package is in the workspace");
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let pkg = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(names[pkg].to_owned()) {
                stack.push(pkg);
            }
        }
    }
    seen
}

#[test]
fn job_core_depends_on_no_backend_or_adapter_crate() {
    let deps = normal_closure(&metadata(), "job-core");
    let leaked: Vec<_> = BACKEND_CRATES
        .iter()
        .filter(|c| deps.contains(**c))
        .collect();
    assert!(
        leaked.is_empty(),
        "job-core must stay free of backends and adapters, but depends on {leaked:?}"
    );
    // The check itself sees real dependencies.
    assert!(deps.contains("serde") && deps.contains("regex"), "{deps:?}");
}

#[test]
fn job_core_does_no_io_through_tokio() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("job-core/Cargo.toml"))
            .unwrap();
    let tokio_line = manifest
        .lines()
        .find(|l| l.starts_with("tokio"))
        .expect("job-core declares tokio");
    for io in [
        "\"net\"",
        "\"fs\"",
        "\"process\"",
        "\"io-std\"",
        "\"full\"",
        "\"signal\"",
    ] {
        assert!(
            !tokio_line.contains(io),
            "job-core enables tokio feature {io}; I/O belongs in backends and adapters"
        );
    }
}

#[test]
fn backends_and_adapters_never_depend_on_each_other() {
    let meta = metadata();
    let adapters = [
        "job-store-sql",
        "job-store-sqlite",
        "job-store-postgres",
        "job-transport-local",
        "job-transport-ssh",
        "job-transport-nats",
        "job-http",
    ];
    // A shared core is not another adapter: the two stores are faces of `job-store-sql`.
    let shared_core = |a: &str, b: &str| {
        b == "job-store-sql" && matches!(a, "job-store-sqlite" | "job-store-postgres")
    };
    for a in adapters {
        let deps = normal_closure(&meta, a);
        let crossed: Vec<_> = adapters
            .iter()
            .filter(|b| **b != a && !shared_core(a, b) && deps.contains(**b))
            .collect();
        assert!(
            crossed.is_empty(),
            "{a} depends on {crossed:?}; adapters meet only in job-core's traits"
        );
    }
}

/// The root file of every library and binary of every workspace package, with its name.
fn workspace_crate_roots(meta: &Value) -> Vec<(String, std::path::PathBuf)> {
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut roots = Vec::new();
    for package in meta["packages"].as_array().unwrap() {
        if !members.contains(package["id"].as_str().unwrap_or_default()) {
            continue;
        }
        for target in package["targets"].as_array().unwrap() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if kinds
                .iter()
                .any(|k| ["lib", "bin", "proc-macro"].contains(k))
            {
                roots.push((
                    format!(
                        "{} ({})",
                        package["name"].as_str().unwrap(),
                        kinds.join(",")
                    ),
                    target["src_path"].as_str().unwrap().into(),
                ));
            }
        }
    }
    roots
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    let roots = workspace_crate_roots(&metadata());
    assert!(
        roots.len() >= 9,
        "the workspace's crates are found: {roots:?}"
    );
    let mut cycles = Vec::new();
    for (name, root) in &roots {
        let graph = CrateGraph::read(root).unwrap_or_else(|e| panic!("{name}: {e}"));
        cycles.extend(graph.cycles().into_iter().map(|c| format!("{name} {c}")));
    }
    assert!(
        cycles.is_empty(),
        "modules that depend on each other; move what both need into one of them or below \
         both:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_cycle_check_sees_a_cycle_between_sibling_modules() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\npub use a::Shared;\n").unwrap();
    std::fs::create_dir(src.join("a")).unwrap();
    std::fs::write(
        src.join("a.rs"),
        "mod inner;\npub struct Shared;\nfn f() { super::b::run(); }\n",
    )
    .unwrap();
    std::fs::write(src.join("a/inner.rs"), "use super::super::Shared;\n").unwrap();
    // `crate::Shared` is a re-export of `a::Shared`: b depends on a.
    std::fs::write(
        src.join("b.rs"),
        "// crate::a in a comment is no dependency\nuse crate::Shared;\npub fn run() {}\n",
    )
    .unwrap();
    let cycles = CrateGraph::read(&src.join("lib.rs")).unwrap().cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].starts_with("in crate: {a, b}"), "{cycles:?}");

    // Without the call from a to b, parent and child references alone make no cycle.
    std::fs::write(src.join("a.rs"), "mod inner;\npub struct Shared;\n").unwrap();
    let cycles = CrateGraph::read(&src.join("lib.rs")).unwrap().cycles();
    assert!(cycles.is_empty(), "{cycles:?}");
}

/// job-core's layers, lowest first. A module may use modules of its own layer or of a lower
/// one, never of a higher one (the cycle check keeps a layer's modules from going round).
const JOB_CORE_LAYERS: &[(&str, &[&str])] = &[
    ("words", &["ids", "rule_hit", "error", "clock"]),
    ("values", &["values", "callback", "schedule", "status"]),
    ("model", &["model"]),
    ("rules", &["policy", "template", "interpreter", "secret"]),
    ("seams", &["store", "transport", "bus"]),
    ("use cases", &["launch", "engine"]),
    ("conformance", &["testkit"]),
];

#[test]
fn job_core_imports_only_down_or_sideways() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("job-core/src/lib.rs");
    let graph = CrateGraph::read(&root).unwrap();
    let layer_of = |module: &str| {
        JOB_CORE_LAYERS
            .iter()
            .position(|(_, mods)| mods.contains(&module))
    };
    let unplaced: Vec<&String> = graph
        .modules()
        .filter(|m| m.len() == 1)
        .map(|m| &m[0])
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "job-core modules in no layer of JOB_CORE_LAYERS (place them there and in \
         ARCHITECTURE.md): {unplaced:?}"
    );
    let mut upward = BTreeSet::new();
    let mut seen = 0;
    for r in graph.references() {
        let (Some(from), Some(to)) = (r.from.first(), r.to.first()) else {
            continue;
        };
        if from == to {
            continue;
        }
        seen += 1;
        let (low, high) = (layer_of(from).unwrap(), layer_of(to).unwrap());
        if high > low {
            upward.insert(format!(
                "{from} ({}) uses {to} ({}): {} writes `{}`",
                JOB_CORE_LAYERS[low].0,
                JOB_CORE_LAYERS[high].0,
                r.file.display(),
                r.written
            ));
        }
    }
    assert!(seen > 50, "the check sees job-core's imports ({seen})");
    assert!(
        upward.is_empty(),
        "upward imports in job-core:\n{}",
        upward.into_iter().collect::<Vec<_>>().join("\n")
    );
}
