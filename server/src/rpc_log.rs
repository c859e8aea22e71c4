//! What the log says about calls that failed. A call refused for a reason of the
//! caller's (no or a bad token, a bad argument, a path that is no RPC) is the
//! caller's business, and an outsider decides how many arrive: each is logged at
//! debug only, and at info one line a minute at most counts them. A failure on
//! our side (internal, unavailable) is logged at warn every time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tower_http::classify::{GrpcCode, GrpcFailureClass};

/// How often the count of refused calls is logged, at most.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counts refused calls and logs failures; shared by every call of a server.
#[derive(Debug)]
pub struct FailureLog {
    refused: AtomicU64,
    summarised: Mutex<Instant>,
}

impl Default for FailureLog {
    fn default() -> Self {
        Self {
            refused: AtomicU64::new(0),
            summarised: Mutex::new(Instant::now()),
        }
    }
}

/// True for the codes that answer something the caller sent or lacks.
fn is_callers(code: GrpcCode) -> bool {
    use GrpcCode as C;
    matches!(
        code,
        C::Cancelled
            | C::InvalidArgument
            | C::NotFound
            | C::AlreadyExists
            | C::PermissionDenied
            | C::ResourceExhausted
            | C::FailedPrecondition
            | C::Aborted
            | C::OutOfRange
            | C::Unimplemented
            | C::Unauthenticated
    )
}

impl FailureLog {
    /// Logs one failed call, as its class says.
    pub fn failed(&self, class: &GrpcFailureClass, latency: Duration) {
        let latency_ms = latency.as_millis() as u64;
        match class {
            GrpcFailureClass::Status(status) if status.code().is_some_and(is_callers) => {
                tracing::debug!(code = ?status.code(), latency_ms, "call refused");
                self.refused.fetch_add(1, Ordering::Relaxed);
                self.summarise();
            }
            GrpcFailureClass::Status(status) => {
                tracing::warn!(code = status.code_raw(), latency_ms, "call failed");
            }
            other => tracing::warn!(error = %other, latency_ms, "call failed"),
        }
    }

    /// Logs how many calls were refused since the last such line, when a minute
    /// has passed.
    fn summarise(&self) {
        let Ok(mut last) = self.summarised.try_lock() else {
            return;
        };
        if last.elapsed() < SUMMARY_EVERY {
            return;
        }
        *last = Instant::now();
        let refused = self.refused.swap(0, Ordering::Relaxed);
        tracing::info!(
            refused,
            "calls refused for the callers' reasons in the last minute or more"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_failures_are_not_the_callers() {
        use GrpcCode as C;
        for code in [
            C::Unknown,
            C::DeadlineExceeded,
            C::Internal,
            C::Unavailable,
            C::DataLoss,
        ] {
            assert!(!is_callers(code), "{code:?}");
        }
        for code in [C::Unauthenticated, C::Unimplemented, C::InvalidArgument] {
            assert!(is_callers(code), "{code:?}");
        }
    }
}
