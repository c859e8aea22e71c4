//! Calls to what the service depends on (the object store, clamd): how many, how
//! each ended, and how long it took. One pair of families serves every
//! dependency, told apart by a label, so a dashboard compares them side by side.

use std::future::Future;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::seconds_histogram;

/// Something the service calls over the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The S3-compatible object store.
    Store,
    /// The clamd scanner.
    Clamd,
}

impl Dependency {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Clamd => "clamd",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// It did what was asked.
    Ok,
    /// The dependency refused it (an HTTP 4xx: not found, denied, precondition).
    Refused,
    /// The dependency failed it (an HTTP 5xx: unavailable, slow down, internal).
    Failed,
    /// No answer came: unreachable, cut off, timed out, or an answer not understood.
    NoAnswer,
}

impl CallOutcome {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::NoAnswer => "no_answer",
        }
    }

    /// The outcome an HTTP status means.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=399 => Self::Ok,
            400..=499 => Self::Refused,
            _ => Self::Failed,
        }
    }
}

/// A call, counted.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    dependency: &'static str,
    call: String,
    outcome: &'static str,
}

/// A call, timed.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeLabels {
    dependency: &'static str,
    call: String,
}

/// Calls to dependencies by call and outcome, and their durations. Cheap to
/// clone: clones count into the same families.
#[derive(Debug, Clone)]
pub struct DependencyCalls {
    calls: Family<CallLabels, Counter>,
    seconds: Family<TimeLabels, Histogram>,
}

impl Default for DependencyCalls {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            seconds: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
        }
    }
}

impl DependencyCalls {
    /// Families at zero, registered in `registry` as `dependency_calls` and
    /// `dependency_call_duration_seconds`.
    pub fn registered(registry: &mut Registry) -> Self {
        let me = Self::default();
        registry.register(
            "dependency_calls",
            "Calls to the store and clamd by call and outcome \
             (ok, refused: 4xx, failed: 5xx, no_answer)",
            me.calls.clone(),
        );
        registry.register(
            "dependency_call_duration_seconds",
            "Time from a call's start to its answer (for a download, its first \
             bytes), retries included",
            me.seconds.clone(),
        );
        me
    }

    /// A call to `dependency` named `call` that ended in `outcome` after `took`.
    pub fn record(&self, dependency: Dependency, call: &str, outcome: CallOutcome, took: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                dependency: dependency.as_str(),
                call: call.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
        self.seconds
            .get_or_create(&TimeLabels {
                dependency: dependency.as_str(),
                call: call.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Runs `call`, recording it as ok when it returns `Ok`, else as `failure`.
    pub async fn timed<T, E>(
        &self,
        dependency: Dependency,
        name: &str,
        failure: CallOutcome,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = call.await;
        let outcome = if result.is_ok() {
            CallOutcome::Ok
        } else {
            failure
        };
        self.record(dependency, name, outcome, started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(CallOutcome::of_status(200), CallOutcome::Ok);
        assert_eq!(CallOutcome::of_status(304), CallOutcome::Ok);
        assert_eq!(CallOutcome::of_status(404), CallOutcome::Refused);
        assert_eq!(CallOutcome::of_status(503), CallOutcome::Failed);
        assert_eq!(CallOutcome::of_status(500), CallOutcome::Failed);
    }

    #[tokio::test]
    async fn a_timed_call_is_counted_under_its_outcome() {
        let mut registry = Registry::default();
        let calls = DependencyCalls::registered(&mut registry);
        let ok: Result<(), ()> = calls
            .timed(Dependency::Clamd, "version", CallOutcome::NoAnswer, async {
                Ok(())
            })
            .await;
        assert!(ok.is_ok());
        let _ = calls
            .timed(Dependency::Clamd, "version", CallOutcome::NoAnswer, async {
                Err::<(), _>(())
            })
            .await;
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for outcome in ["ok", "no_answer"] {
            let line = format!(
                "dependency_calls_total{{dependency=\"clamd\",call=\"version\",outcome=\"{outcome}\"}} 1"
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(
            text.contains(
                "dependency_call_duration_seconds_count{dependency=\"clamd\",call=\"version\"} 2"
            ),
            "{text}"
        );
    }
}
