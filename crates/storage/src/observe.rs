//! Every call the store client makes, counted and timed by operation
//! (`PutObject`, `UploadPartCopy`, …) and outcome, through an SDK interceptor: one
//! place sees them all, whichever method made them. A call is timed from its start
//! to its answer, retries included; a download's time is to its first bytes. A
//! presigned URL is made, not sent, and is not counted.

use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use upload_telemetry::{CallOutcome, Dependency, DependencyCalls};

/// When the call began, kept in the call's own config bag.
#[derive(Debug, Clone)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// Records each call of the client it is added to.
#[derive(Debug)]
pub(crate) struct CallObserver(pub(crate) DependencyCalls);

impl Intercept for CallObserver {
    fn name(&self) -> &'static str {
        "CallObserver"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Nothing sent (a presigned request stops before sending).
        let Some(result) = context.output_or_error() else {
            return Ok(());
        };
        let Some(Started(started)) = cfg.load::<Started>().cloned() else {
            return Ok(());
        };
        let call = cfg
            .load::<Metadata>()
            .map_or("unknown", |metadata| metadata.name());
        let outcome = match (result, context.response()) {
            (Ok(_), _) => CallOutcome::Ok,
            (Err(_), Some(response)) => match CallOutcome::of_status(response.status().as_u16()) {
                // A success status with an answer that could not be read.
                CallOutcome::Ok => CallOutcome::NoAnswer,
                failed => failed,
            },
            (Err(_), None) => CallOutcome::NoAnswer,
        };
        self.0
            .record(Dependency::Store, call, outcome, started.elapsed());
        Ok(())
    }
}
