//! Status machine throughput: fold the events of a 10,000-host execution.

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use job_core::status::{Event, ExecutionMachine, HostOutcome};
use std::hint::black_box;

fn run_10k_hosts(c: &mut Criterion) {
    c.bench_function("status/10k_hosts_start_and_finish", |b| {
        b.iter(|| {
            let mut m = ExecutionMachine::new(10_000).unwrap();
            m.apply(Event::Start).unwrap();
            for h in 0..10_000 {
                m.apply(Event::HostStarted { host: h }).unwrap();
                m.apply(Event::HostFinished {
                    host: h,
                    outcome: HostOutcome::Success,
                })
                .unwrap();
            }
            black_box(m.status())
        });
    });
    c.bench_function("status/10k_hosts_cancel_and_converge", |b| {
        b.iter(|| {
            let mut m = ExecutionMachine::new(10_000).unwrap();
            m.apply(Event::Start).unwrap();
            for h in 0..5_000 {
                m.apply(Event::HostStarted { host: h }).unwrap();
            }
            let now = Utc::now();
            m.apply(Event::Cancel { deadline: now }).unwrap();
            m.apply(Event::Tick { now }).unwrap();
            black_box(m.status())
        });
    });
}

criterion_group!(benches, run_10k_hosts);
criterion_main!(benches);
