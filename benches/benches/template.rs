//! Templating: render a 4 KiB script with 20 params.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use job_core::model::{ParamDef, ScriptLanguage};
use job_core::template::{OutputRedactor, Params, render_script};

fn defs(encrypted: bool) -> Vec<ParamDef> {
    (0..20)
        .map(|i| ParamDef {
            name: format!("param_{i}"),
            label: String::new(),
            description: String::new(),
            default: Some(format!("default value {i} with 'quotes' and $vars")),
            is_encrypted: encrypted && i == 0,
            is_required: false,
        })
        .collect()
}

/// About 4 KiB of shell that uses each of the 20 params.
fn source_4k() -> String {
    let mut s = String::from("#!/bin/bash\nset -euo pipefail\n");
    let mut i = 0;
    while s.len() < 4 * 1024 {
        s.push_str(&format!(
            "echo \"step {i}: configuring\" && install -d /opt/app/{i} && printf '%s\\n' {{{{ param_{} }}}} >> /opt/app/{i}/settings.conf\n",
            i % 20
        ));
        i += 1;
    }
    s
}

fn render(c: &mut Criterion) {
    let source = source_4k();
    let given = BTreeMap::new();
    let plain = Params::resolve(&defs(false), &given).unwrap();
    let secret = Params::resolve(&defs(true), &given).unwrap();
    c.bench_function("template/render_4KiB_20_params", |b| {
        b.iter(|| {
            black_box(render_script(ScriptLanguage::Bash, black_box(&source), &plain).unwrap())
        })
    });
    c.bench_function("template/render_4KiB_20_params_one_secret", |b| {
        b.iter(|| {
            black_box(render_script(ScriptLanguage::Bash, black_box(&source), &secret).unwrap())
        })
    });
    c.bench_function("template/resolve_20_params", |b| {
        b.iter(|| black_box(Params::resolve(black_box(&defs(true)), &given).unwrap()))
    });
    let chunk = vec![b'x'; 16 * 1024];
    c.bench_function("template/redact_16KiB_chunk", |b| {
        let mut r = OutputRedactor::new(["s3cr3t-password", "another-secret"]);
        b.iter(|| black_box(r.push(black_box(&chunk))))
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
