//! One generic way every job runs: the job's body, then its outcome. A job is a
//! queue ([`Job::QUEUE`], which names it and the code its subject fails with when
//! attempts run out) and a body; its payload names the subject (an upload, a
//! submission, a notification) and knows how that subject fails.

use apalis::prelude::{BoxDynError, Data};
use chrono::Utc;
use futures::future::BoxFuture;
use std::sync::Arc;
use tracing::Instrument;
use upload_db::jobs::{self, JobPayload, NotifyJob, Queue, RescanJob, SubmissionJob, UploadJob};
use upload_domain::{Actor, Failure};

use crate::JobContext;
use crate::metrics::RunOutcome;
use crate::outcome::{JobError, fail_submission, fail_upload, retry_delay};

/// A job: the queue it runs on and its body.
pub trait Job: Send + Sync + 'static {
    /// What it carries: ids and an attempt number.
    type Payload: Subject;
    /// Its queue.
    const QUEUE: Queue;
    /// The job's body. Boxed: bodies hold diesel-async transactions whose Send-ness
    /// the compiler cannot prove through apalis's higher-ranked bounds otherwise.
    fn run(ctx: &JobContext, job: Self::Payload) -> BoxFuture<'_, Result<(), JobError>>;
}

/// Declares a job: a unit type named for it, its payload and queue, and its body
/// (an async fn taking the context and the payload).
macro_rules! job {
    ($(#[$doc:meta])* $name:ident, $payload:ty, $queue:expr, $body:path) => {
        $(#[$doc])*
        pub struct $name;

        impl $crate::job::Job for $name {
            type Payload = $payload;
            const QUEUE: upload_db::jobs::Queue = $queue;

            fn run(
                ctx: &$crate::JobContext,
                job: $payload,
            ) -> futures::future::BoxFuture<'_, Result<(), $crate::outcome::JobError>> {
                Box::pin($body(ctx, job))
            }
        }
    };
}

pub(crate) use job;

/// The actor a job's changes are recorded under: its queue and attempt.
pub fn actor<P: JobPayload>(queue: Queue, job: &P) -> Actor {
    Actor::job(queue.name(), job.attempt())
}

/// What a job works on, and how it ends when the job gives up.
pub trait Subject: JobPayload + std::fmt::Debug + Send + Sync + 'static {
    /// Records that the subject failed (and tells the seller), once.
    fn fail<'a>(
        self,
        ctx: &'a JobContext,
        failure: Failure,
        by: Actor,
    ) -> BoxFuture<'a, Result<(), upload_db::DbError>>;
}

impl Subject for UploadJob {
    fn fail<'a>(
        self,
        ctx: &'a JobContext,
        failure: Failure,
        by: Actor,
    ) -> BoxFuture<'a, Result<(), upload_db::DbError>> {
        Box::pin(async move { fail_upload(ctx, self.upload_id, failure, &by).await })
    }
}

impl Subject for SubmissionJob {
    fn fail<'a>(
        self,
        ctx: &'a JobContext,
        failure: Failure,
        by: Actor,
    ) -> BoxFuture<'a, Result<(), upload_db::DbError>> {
        Box::pin(async move { fail_submission(ctx, self.submission_id, failure, &by).await })
    }
}

impl Subject for NotifyJob {
    /// A notification that cannot be delivered fails nothing: its row keeps the
    /// last error for operators.
    fn fail<'a>(
        self,
        _ctx: &'a JobContext,
        failure: Failure,
        _by: Actor,
    ) -> BoxFuture<'a, Result<(), upload_db::DbError>> {
        tracing::error!(notification = %self.notification_id, code = %failure.code, message = %failure.message, "notification given up");
        Box::pin(async { Ok(()) })
    }
}

impl Subject for RescanJob {
    /// A re-scan that gives up fails nothing: its run stays `running`, and the
    /// next signature check enqueues it again.
    fn fail<'a>(
        self,
        _ctx: &'a JobContext,
        failure: Failure,
        _by: Actor,
    ) -> BoxFuture<'a, Result<(), upload_db::DbError>> {
        tracing::error!(signatures = self.signature_version, code = %failure.code, message = %failure.message, "re-scan attempt given up");
        Box::pin(async { Ok(()) })
    }
}

/// The apalis handler of every queue: runs the job, then settles its outcome.
pub async fn run_job<J: Job>(
    job: J::Payload,
    ctx: Data<Arc<JobContext>>,
) -> Result<(), BoxDynError> {
    let queue = J::QUEUE.name();
    let span = tracing::info_span!("job", otel.name = %format!("job {queue}"), queue, attempt = job.attempt());
    if upload_telemetry::exporting() {
        // The trace of whatever enqueued it (an RPC, an earlier job) goes on here.
        if let Some(parent) = enqueued_under(&ctx, J::QUEUE, &job).await {
            upload_telemetry::continue_trace(&span, &parent);
        }
    }
    let started = std::time::Instant::now();
    let result = J::run(&ctx, job).instrument(span.clone()).await;
    let took = started.elapsed();
    let (outcome, answer) = Box::pin(settle(&ctx, J::QUEUE, job, result))
        .instrument(span)
        .await;
    ctx.metrics.job_ran(J::QUEUE, job.attempt(), outcome, took);
    answer
}

/// The trace context the job was enqueued under (none when it cannot be read:
/// the job runs all the same).
async fn enqueued_under<P: JobPayload>(ctx: &JobContext, queue: Queue, job: &P) -> Option<String> {
    let mut conn = ctx.pool.get().await.ok()?;
    jobs::traceparent(&mut conn, queue, &job.idempotency_key())
        .await
        .ok()
        .flatten()
}

/// Turns a job's result into its follow-up: nothing, a scheduled retry, or its
/// subject's failure. Returns the error to apalis so `apalis.jobs` shows it.
async fn settle<P: Subject>(
    ctx: &JobContext,
    queue: Queue,
    job: P,
    result: Result<(), JobError>,
) -> (RunOutcome, Result<(), BoxDynError>) {
    let Err(err) = result else {
        return (RunOutcome::Ok, Ok(()));
    };
    match retry_or_give_up(ctx, queue, job, &err).await {
        Err(e) => (RunOutcome::GaveUp, Err(e.into())),
        Ok(Next::Retry) => (RunOutcome::Retry, Err(err.into())),
        Ok(Next::GiveUp(None)) => (RunOutcome::GaveUp, Err(err.into())),
        Ok(Next::GiveUp(Some(failure))) => {
            tracing::error!(?job, queue = queue.name(), code = %failure.code, message = %failure.message, "job gave up");
            if let Err(e) = job.fail(ctx, failure, actor(queue, &job)).await {
                tracing::error!(?job, queue = queue.name(), error = %e, "recording the failure failed");
                return (RunOutcome::GaveUp, Err(e.into()));
            }
            (RunOutcome::GaveUp, Err(err.into()))
        }
    }
}

/// What follows a failed attempt.
enum Next {
    /// The next attempt is scheduled.
    Retry,
    /// No more attempts; the subject's failure to record, if it has one.
    GiveUp(Option<Failure>),
}

/// After a failed attempt: schedules the next one when the error is retryable and
/// attempts remain, else gives up with the failure to record.
async fn retry_or_give_up<P: Subject>(
    ctx: &JobContext,
    queue: Queue,
    job: P,
    err: &JobError,
) -> Result<Next, upload_db::DbError> {
    if let JobError::Abort { failure, .. } = err {
        return Ok(Next::GiveUp(Some(failure.clone())));
    }
    if job.attempt() < err.attempts_allowed(ctx.config.max_attempts) {
        let next = job.next_attempt();
        let delay = retry_delay(ctx.config.retry_base, next.attempt(), ctx.config.retry_max);
        tracing::warn!(?job, queue = queue.name(), ?delay, error = %err, "job failed; retry scheduled");
        let run_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        let mut conn = ctx.pool.get().await?;
        jobs::enqueue(&mut conn, queue, &next, Some(run_at)).await?;
        return Ok(Next::Retry);
    }
    let Some(code) = queue.exhausted_code() else {
        tracing::error!(?job, queue = queue.name(), error = %err, "job gave up; nothing to fail");
        return Ok(Next::GiveUp(None));
    };
    // The seller reads what failed and how often it was tried; the cause (which
    // may name internal addresses) stays in the log and the job's row.
    tracing::error!(?job, queue = queue.name(), error = %err, "job gave up");
    Ok(Next::GiveUp(Some(Failure::new(
        code,
        format!("{} ({} attempts)", code.meaning(), job.attempt()),
    ))))
}
