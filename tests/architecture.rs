//! Architecture invariants that a compiler cannot see, checked on every test run.
//! Each one is named in ARCHITECTURE.md.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

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
