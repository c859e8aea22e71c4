//! What an operator may do to an upload, a submission or a notification: retry
//! failed work, queue a stuck job again, deliver a notification again, release or
//! confirm a quarantine (`quarantine`). Each action
//! goes through the guarded transitions (never an UPDATE around the state machine)
//! and writes a history line naming the operator, in one transaction with the job
//! it queues; a refusal writes nothing.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, ChangeCause, FailureCode, NotificationId, Stage, StageStatus, SubmissionEvent,
    SubmissionId, SubmissionState, UploadEvent, UploadId, UploadState,
};

use crate::DbError;
use crate::history::{record_submission, record_upload};
use crate::jobs::{self, NotifyJob, Queue, SubmissionJob, UploadJob};
use crate::schema::{item_submissions, notifications, upload_progress, uploads};
use crate::uploads::Transition;

mod quarantine;

pub use quarantine::{
    check_quarantined, confirm as confirm_quarantine, release as release_quarantine,
};

/// Why an operator's action was refused; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No such upload, submission or notification.
    #[error("no {what} {id}")]
    NotFound {
        /// upload, submission or notification.
        what: &'static str,
        /// The id given.
        id: String,
    },
    /// The subject is not in a state the action applies to.
    #[error("{what} {id} is {state}; {needs}")]
    WrongState {
        /// upload or submission.
        what: &'static str,
        /// Its id.
        id: String,
        /// Its state.
        state: String,
        /// What the action needs.
        needs: &'static str,
    },
    /// The failure is the file's own: retrying cannot help.
    #[error("upload {id} failed with {code} ({meaning}); retrying cannot change that")]
    NotRetryable {
        /// The upload.
        id: UploadId,
        /// Its failure code.
        code: FailureCode,
        /// What the code means.
        meaning: &'static str,
    },
    /// A job for it is pending, queued or running: it is not stuck.
    #[error("{what} {id} has a live {queue} job ({status}); it is not stuck")]
    Live {
        /// upload or submission.
        what: &'static str,
        /// Its id.
        id: String,
        /// The queue.
        queue: &'static str,
        /// The job's status.
        status: String,
    },
    /// The quarantine was confirmed before: it cannot be released.
    #[error(
        "the quarantine of upload {id} was confirmed by {by}; it cannot be released, and its file goes when its days in quarantine end"
    )]
    Confirmed {
        /// The upload.
        id: UploadId,
        /// Who confirmed it.
        by: String,
    },
    /// The file is no longer in the quarantine bucket (its days there are over).
    #[error("upload {id}'s file is no longer in quarantine (cleared after its days there)")]
    FileGone {
        /// The upload.
        id: UploadId,
    },
    /// An upload of the submission can no longer be submitted.
    #[error(
        "upload {upload} of submission {submission} is {state}; the submission cannot be retried"
    )]
    UploadMovedOn {
        /// The submission.
        submission: SubmissionId,
        /// The upload.
        upload: UploadId,
        /// Its state.
        state: UploadState,
    },
}

/// What an action did, for the operator to read.
pub type Done = Result<String, Refused>;

/// Rolls a refusal back out of a transaction.
enum Abort {
    Refused(Refused),
    Db(DbError),
}

impl<E: Into<DbError>> From<E> for Abort {
    fn from(e: E) -> Self {
        Self::Db(e.into())
    }
}

/// A transaction's result as an action's: a refusal rolled it back.
fn settle(result: Result<String, Abort>) -> Result<Done, DbError> {
    match result {
        Ok(done) => Ok(Ok(done)),
        Err(Abort::Refused(r)) => Ok(Err(r)),
        Err(Abort::Db(e)) => Err(e),
    }
}

async fn lock_upload(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> Result<(UploadState, Option<FailureCode>), Abort> {
    uploads::table
        .find(id)
        .for_update()
        .select((uploads::state, uploads::failure_code))
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| {
            Abort::Refused(Refused::NotFound {
                what: "upload",
                id: id.to_string(),
            })
        })
}

async fn lock_submission(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
) -> Result<SubmissionState, Abort> {
    item_submissions::table
        .find(id)
        .for_update()
        .select(item_submissions::state)
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| {
            Abort::Refused(Refused::NotFound {
                what: "submission",
                id: id.to_string(),
            })
        })
}

/// The queues an upload in `state` waits on, given which processing stages
/// have not settled.
async fn upload_queues(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    state: UploadState,
) -> Result<Vec<Queue>, DbError> {
    let unsettled: Vec<Stage> = if state == UploadState::Processing {
        upload_progress::table
            .filter(upload_progress::upload_id.eq(id))
            .filter(upload_progress::stage.eq_any(Stage::PROCESSING))
            .filter(upload_progress::status.ne_all(StageStatus::SETTLED))
            .select(upload_progress::stage)
            .load(conn)
            .await?
    } else {
        Vec::new()
    };
    Ok(Queue::of_upload(state, &unsettled))
}

/// Queues the next attempt of `id`'s jobs on `queues`; the queues' names.
async fn enqueue_upload_jobs(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    queues: &[Queue],
) -> Result<Vec<String>, DbError> {
    let mut queued = Vec::with_capacity(queues.len());
    for &queue in queues {
        // Callers checked that none is live (a failed upload has none).
        if let Some(attempt) =
            jobs::enqueue_next(conn, queue, &id.to_string(), |attempt| UploadJob {
                upload_id: id,
                attempt,
            })
            .await?
        {
            queued.push(format!("{} attempt {attempt}", queue.name()));
        }
    }
    Ok(queued)
}

/// Retries a failed upload from the stage that failed: a failed scan scans again,
/// failed processing runs its unfinished stages again. Refused when the upload is
/// not failed or failed for a reason retrying cannot change.
pub async fn retry_upload(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    by: &Actor,
) -> Result<Done, DbError> {
    settle(
        conn.transaction::<_, Abort, _>(async move |conn| {
            let (state, code) = lock_upload(conn, id).await?;
            let Some(code) = code.filter(|_| state == UploadState::Failed) else {
                return Err(Abort::Refused(Refused::WrongState {
                    what: "upload",
                    id: id.to_string(),
                    state: state.to_string(),
                    needs: "only a failed upload is retried",
                }));
            };
            let Some(event) = code.retry() else {
                return Err(Abort::Refused(Refused::NotRetryable {
                    id,
                    code,
                    meaning: code.meaning(),
                }));
            };
            let next = match crate::uploads::transition(conn, id, state, event, None, by).await? {
                Ok(Transition::Applied(next)) => next,
                _ => {
                    return Err(
                        DbError::Corrupt(format!("upload {id} moved under its lock")).into(),
                    );
                }
            };
            let stages: &[Stage] = match event {
                UploadEvent::RetriedScan => &[Stage::Scan, Stage::Hash],
                _ => &Stage::PROCESSING,
            };
            for &stage in stages {
                let settled: Option<StageStatus> = upload_progress::table
                    .find((id, stage))
                    .select(upload_progress::status)
                    .first(conn)
                    .await
                    .optional()?;
                if !settled.is_some_and(|s| s.is_settled()) {
                    crate::progress::set(conn, id, stage, StageStatus::Pending, 0, 0, "retried")
                        .await?;
                }
            }
            let queues = upload_queues(conn, id, next).await?;
            let queued = enqueue_upload_jobs(conn, id, &queues).await?;
            Ok(format!(
                "upload {id}: failed ({code}) -> {next}; queued {}",
                queued.join(", ")
            ))
        })
        .await,
    )
}

/// Queues the job a stuck upload waits on again (scan, or its unfinished
/// processing stages), recorded in its history. Refused when a job for it is live.
pub async fn requeue_upload(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    by: &Actor,
) -> Result<Done, DbError> {
    settle(
        conn.transaction::<_, Abort, _>(async move |conn| {
            let (state, _) = lock_upload(conn, id).await?;
            let queues = upload_queues(conn, id, state).await?;
            if queues.is_empty() {
                return Err(Abort::Refused(Refused::WrongState {
                    what: "upload",
                    id: id.to_string(),
                    state: state.to_string(),
                    needs: "only an upload waiting on a scan or processing job is requeued",
                }));
            }
            for &queue in &queues {
                if let Some(status) = jobs::attempts(conn, queue, &id.to_string()).await?.live {
                    return Err(Abort::Refused(Refused::Live {
                        what: "upload",
                        id: id.to_string(),
                        queue: queue.name(),
                        status,
                    }));
                }
            }
            let queued = enqueue_upload_jobs(conn, id, &queues).await?.join(", ");
            let detail = format!("queued {queued}");
            record_upload(
                conn,
                id,
                Some(state),
                state,
                ChangeCause::Requeued,
                by,
                Some(&detail),
            )
            .await?;
            Ok(format!("upload {id} ({state}): {detail}"))
        })
        .await,
    )
}

/// Retries a failed submission: its uploads that the failure gave back (ready
/// again) are submitted again, and it is saved (a no-op for fields saved before)
/// and moved. Refused when it is not failed, or an upload of it has moved on
/// (expired, submitted elsewhere).
pub async fn retry_submission(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
    by: &Actor,
) -> Result<Done, DbError> {
    settle(
        conn.transaction::<_, Abort, _>(async move |conn| {
        let state = lock_submission(conn, id).await?;
        if state != SubmissionState::Failed {
            return Err(Abort::Refused(Refused::WrongState {
                what: "submission",
                id: id.to_string(),
                state: state.to_string(),
                needs: "only a failed submission is retried",
            }));
        }
        let files = crate::submissions::files_of(conn, id).await?;
        let mut resubmitted = 0;
        for file in &files {
            let (upload_state, _) = lock_upload(conn, file.upload_id).await?;
            match upload_state {
                UploadState::Stored => {}
                UploadState::Ready => {
                    let moved = crate::uploads::transition(
                        conn,
                        file.upload_id,
                        UploadState::Ready,
                        UploadEvent::Submitted,
                        None,
                        by,
                    )
                    .await?;
                    if !matches!(moved, Ok(Transition::Applied(_))) {
                        return Err(DbError::Corrupt(format!(
                            "upload {} moved under its lock",
                            file.upload_id
                        ))
                        .into());
                    }
                    resubmitted += 1;
                }
                other => {
                    return Err(Abort::Refused(Refused::UploadMovedOn {
                        submission: id,
                        upload: file.upload_id,
                        state: other,
                    }));
                }
            }
        }
        if !crate::submissions::transition(conn, id, state, SubmissionEvent::Retried, None, by)
            .await?
        {
            return Err(DbError::Corrupt(format!("submission {id} moved under its lock")).into());
        }
        // A failed submission has no live job: the next attempt is queued.
        let attempt = jobs::enqueue_next(conn, Queue::Persist, &id.to_string(), |attempt| {
            SubmissionJob {
                submission_id: id,
                attempt,
            }
        })
        .await?
        .unwrap_or_default();
        Ok(format!(
            "submission {id}: failed -> queued; {resubmitted} upload(s) submitted again; queued item.persist attempt {attempt}"
        ))
    })
    .await,
    )
}

/// Queues the job a stuck submission waits on again (persist when queued, move
/// when persisted), recorded in its history. Refused when settled or live.
pub async fn requeue_submission(
    conn: &mut AsyncPgConnection,
    id: SubmissionId,
    by: &Actor,
) -> Result<Done, DbError> {
    settle(
        conn.transaction::<_, Abort, _>(async move |conn| {
            let state = lock_submission(conn, id).await?;
            let Some(queue) = Queue::of_submission(state) else {
                return Err(Abort::Refused(Refused::WrongState {
                    what: "submission",
                    id: id.to_string(),
                    state: state.to_string(),
                    needs: "only a queued or persisted submission is requeued",
                }));
            };
            let jobs::Attempts {
                next: attempt,
                live,
            } = jobs::attempts(conn, queue, &id.to_string()).await?;
            if let Some(status) = live {
                return Err(Abort::Refused(Refused::Live {
                    what: "submission",
                    id: id.to_string(),
                    queue: queue.name(),
                    status,
                }));
            }
            let job = SubmissionJob {
                submission_id: id,
                attempt,
            };
            jobs::enqueue(conn, queue, &job, None).await?;
            let detail = format!("queued {} attempt {attempt}", queue.name());
            record_submission(
                conn,
                id,
                Some(state),
                state,
                ChangeCause::Requeued,
                by,
                Some(&detail),
            )
            .await?;
            Ok(format!("submission {id} ({state}): {detail}"))
        })
        .await,
    )
}

/// Delivers a notification again, under the same id (receivers deduplicate on
/// it): its delivery is reset and the next attempt queued, recorded in the
/// history of the upload or submission it is about.
pub async fn redeliver(
    conn: &mut AsyncPgConnection,
    id: NotificationId,
    by: &Actor,
) -> Result<Done, DbError> {
    settle(
        conn.transaction::<_, Abort, _>(async move |conn| {
            let found = crate::notifications::find(conn, id).await?;
            let Some(n) = found else {
                return Err(Abort::Refused(Refused::NotFound {
                    what: "notification",
                    id: id.to_string(),
                }));
            };
            diesel::update(notifications::table.find(id))
                .set((
                    notifications::delivered_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                    notifications::last_error.eq(None::<String>),
                ))
                .execute(conn)
                .await?;
            let attempt = jobs::attempts(conn, Queue::Notify, &id.to_string())
                .await?
                .next;
            let job = NotifyJob {
                notification_id: id,
                attempt,
            };
            jobs::enqueue(conn, Queue::Notify, &job, None).await?;
            let detail = format!(
                "notification {id} ({}) queued for delivery, attempt {attempt}",
                n.kind
            );
            if let Some(upload) = n.upload_id {
                let (state, _) = lock_upload(conn, upload).await?;
                record_upload(
                    conn,
                    upload,
                    Some(state),
                    state,
                    ChangeCause::Redelivered,
                    by,
                    Some(&detail),
                )
                .await?;
            }
            if let Some(submission) = n.submission_id {
                let state = lock_submission(conn, submission).await?;
                record_submission(
                    conn,
                    submission,
                    Some(state),
                    state,
                    ChangeCause::Redelivered,
                    by,
                    Some(&detail),
                )
                .await?;
            }
            Ok(detail)
        })
        .await,
    )
}
