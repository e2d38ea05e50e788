//! Embedding example: check a quick-execute request at the edge with `job-core`'s value
//! types, then follow an execution of three hosts through the status machine.
//!
//! Run with `cargo run -p example-embed-quick-execute`.

use job::core::model::TargetSelector;
use job::core::status::{Event, ExecutionMachine, HostOutcome};
use job::core::values::{Address, ScriptContent, TimeoutSecs};

fn main() -> Result<(), job::core::Error> {
    let script = ScriptContent::parse("script_content", "uptime")?;
    let timeout = TimeoutSecs::new("timeout", 60)?;
    let selector = TargetSelector {
        ips: vec![
            Address::parse("targets.ips[0]", "127.0.0.1")?,
            Address::parse("targets.ips[1]", "127.0.0.2")?,
            Address::parse("targets.ips[2]", "127.0.0.3")?,
        ],
        ..TargetSelector::default()
    };
    selector.require_some("targets")?;

    // Bad input is refused with the field and the reason.
    if let Err(e) = TimeoutSecs::new("timeout", 0) {
        eprintln!("refused as expected: {e}");
    }

    let mut run = ExecutionMachine::new(selector.ips.len() as u32)?;
    run.apply(Event::Start)?;
    for (host, outcome) in [
        HostOutcome::Success,
        HostOutcome::Success,
        HostOutcome::Failed,
    ]
    .into_iter()
    .enumerate()
    {
        run.apply(Event::HostStarted { host: host as u32 })?;
        run.apply(Event::HostFinished {
            host: host as u32,
            outcome,
        })?;
    }
    eprintln!(
        "`{}` with timeout {}s on {} hosts ended `{}` ({:?})",
        script.as_str(),
        timeout.secs(),
        run.counters().total,
        run.status(),
        run.counters()
    );
    Ok(())
}
