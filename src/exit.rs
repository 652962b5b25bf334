//! Process exit statuses, one place for their meaning (see docs and the design's table).

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Valid / converged / no changes / in sync.
    Success,
    /// Invalid config, an error, or a partial failure.
    Failure,
    /// `plan --detailed-exitcode`: changes pending.
    ChangesPending,
    /// `drift`: something changed outside wiform (whatever else was found).
    Drifted,
    /// `drift`: only config changes wait for apply.
    PendingOnly,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        match status {
            ExitStatus::Success => ExitCode::from(0),
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::ChangesPending | ExitStatus::Drifted => ExitCode::from(2),
            ExitStatus::PendingOnly => ExitCode::from(3),
        }
    }
}
