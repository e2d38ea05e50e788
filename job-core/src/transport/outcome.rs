//! How a run on one target ended.

use super::{OutputCounts, TransportError};
use crate::status::HostOutcome;

/// The end of one run on one target: the final host status, the exit code when the
/// process exited, and the error that explains anything but success.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunOutcome {
    /// The final host status.
    pub outcome: HostOutcome,
    /// The exit code, when the script's process exited on its own (`None` when it was
    /// killed or never ran).
    pub exit_code: Option<i32>,
    /// Why the run did not succeed: [`TransportError::NonZeroExit`],
    /// [`TransportError::Timeout`], [`TransportError::Cancelled`], …; `None` on success.
    pub error: Option<TransportError>,
    /// How much output the run produced.
    pub output: OutputCounts,
}

impl RunOutcome {
    /// A process that exited with `code`: success for 0, a failure with
    /// [`TransportError::NonZeroExit`] otherwise.
    pub fn exited(code: i32, output: OutputCounts) -> Self {
        if code == 0 {
            Self {
                outcome: HostOutcome::Success,
                exit_code: Some(0),
                error: None,
                output,
            }
        } else {
            Self {
                outcome: HostOutcome::Failed,
                exit_code: Some(code),
                error: Some(TransportError::NonZeroExit { code }),
                output,
            }
        }
    }

    /// A run ended by `error` (a timeout, a cancel, a signal, a lost connection …), with
    /// the exit code if the process still reported one.
    pub fn ended_by(error: TransportError, exit_code: Option<i32>, output: OutputCounts) -> Self {
        Self {
            outcome: error.host_outcome(),
            exit_code,
            error: Some(error),
            output,
        }
    }

    /// The final outcome of a run that could not be run to an end: `timeout` and
    /// `cancelled` keep their meaning, everything else is `failed`. The engine uses it as
    /// `transport.run(…).await.unwrap_or_else(RunOutcome::from_error)`.
    pub fn from_error(error: TransportError) -> Self {
        Self::ended_by(error, None, OutputCounts::default())
    }

    /// Whether the run succeeded.
    pub fn is_success(&self) -> bool {
        self.outcome == HostOutcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_zero_exit_is_a_failure_that_keeps_its_code() {
        let o = RunOutcome::exited(3, OutputCounts::default());
        assert_eq!(o.outcome, HostOutcome::Failed);
        assert_eq!(o.exit_code, Some(3));
        assert!(matches!(
            o.error,
            Some(TransportError::NonZeroExit { code: 3 })
        ));
        assert!(RunOutcome::exited(0, OutputCounts::default()).is_success());
    }

    #[test]
    fn a_cancel_reported_as_an_error_still_ends_cancelled() {
        let o = RunOutcome::from_error(TransportError::Cancelled);
        assert_eq!(o.outcome, HostOutcome::Cancelled);
    }
}
