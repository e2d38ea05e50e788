//! The task a host runs, built from an execution's snapshot at dispatch.

use crate::interpreter::{Interpreter, prepare};
use crate::model::{Execution, TaskSnapshot};
use crate::transport::{TaskSpec, TransportError};

/// The [`TaskSpec`] for the hosts of `execution`.
///
/// Script executions run their rendered text with the interpreter [`prepare`] chooses (the
/// language's default, or an allowed shebang of the same language). File distributions run
/// without one (`distribute.rs`); playbooks are refused here until the engine runs them.
pub(crate) fn task_spec(
    execution: &Execution,
    output_limit: u64,
) -> Result<TaskSpec, TransportError> {
    let TaskSnapshot::Script {
        language, rendered, ..
    } = &execution.task
    else {
        return Err(TransportError::unsupported(format!(
            "{} executions are not run by this engine yet",
            execution.job_type
        )));
    };
    let prepared = prepare(*language, rendered)
        .map_err(|e| TransportError::invalid("script", e.to_string()))?;
    // Every transport reaches Linux targets today, where PowerShell is `pwsh`.
    let (program, mut args, ext) = match prepared.interpreter {
        Interpreter::Sh | Interpreter::Bash => (prepared.interpreter.program(), vec![], "sh"),
        Interpreter::Python | Interpreter::Python3 => {
            (prepared.interpreter.program(), vec![], "py")
        }
        Interpreter::Powershell | Interpreter::Pwsh => (
            "pwsh",
            vec!["-NoProfile".to_owned(), "-NonInteractive".to_owned()],
            "ps1",
        ),
        Interpreter::Cmd => {
            return Err(TransportError::unsupported(
                "batch scripts need a Windows target, which no transport reaches yet",
            ));
        }
    };
    args.extend(prepared.args);
    if ext == "ps1" {
        args.push("-File".to_owned());
    }
    Ok(TaskSpec::new(program, prepared.content)
        .with_args(args)
        .with_extension(ext)
        .with_timeout(execution.timeout.as_duration())
        .with_output_limit(output_limit))
}
