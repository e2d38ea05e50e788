//! `jobd`: the reference binary of the job platform.
//!
//! It will compose `job-core` with the SQLite store, the local, SSH and NATS transports and
//! the HTTP interface into one process: `jobd serve`, `jobd agent`, `jobd migrate` and the
//! admin and client commands. Until those land, it answers `--version` and `--help`.

use std::io::Write;
use std::process::ExitCode;

const HELP: &str = "\
jobd - run scripts, distribute files and run playbooks on fleets of hosts

Usage: jobd <COMMAND>

Commands:
  serve     Run the control node (REST, SSE, console, scheduler)   [not built yet]
  agent     Run the resident agent on a host                       [not built yet]
  migrate   Apply schema upgrades                                  [not built yet]

Options:
  -h, --help     Print help
  -V, --version  Print version
";

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    match arg.as_deref() {
        None | Some("-h" | "--help" | "help") => {
            let _ = out.write_all(HELP.as_bytes());
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            let _ = writeln!(out, "jobd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(cmd @ ("serve" | "agent" | "migrate")) => {
            let _ = writeln!(
                err,
                "jobd: `{cmd}` is not available in this build yet; see the open issues"
            );
            ExitCode::from(2)
        }
        Some(other) => {
            let _ = writeln!(err, "jobd: unknown command `{other}`\n\n{HELP}");
            ExitCode::from(2)
        }
    }
}
