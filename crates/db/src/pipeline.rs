//! The steps that move an upload along the processing pipeline, each one
//! transaction: the state change and the job it starts commit together.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use upload_domain::{
    Actor, Failure, FailureCode, ScanVerdict, Stage, StageStatus, UploadEvent, UploadId,
    UploadState,
};

use crate::DbError;
use crate::jobs::{self, Queue, UploadJob};
use crate::models::{MetadataRow, NewNotification, ScanRow};
use crate::uploads::{self, Transition};

/// Records that the store assembled the upload (`uploading` → `uploaded`) and
/// enqueues its first job. Only the caller that wins the guarded transition
/// enqueues; everyone else gets [`Transition::Lost`] and changes nothing.
pub async fn record_completion(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    size: u64,
    by: &Actor,
) -> Result<Transition, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let moved = uploads::transition(
            conn,
            id,
            UploadState::Uploading,
            UploadEvent::Completed,
            None,
            by,
        )
        .await?;
        if !matches!(moved, Ok(Transition::Applied(_))) {
            return Ok(Transition::Lost);
        }
        crate::progress::set(
            conn,
            id,
            Stage::Upload,
            StageStatus::Done,
            size,
            size,
            "assembled",
        )
        .await?;
        for stage in [Stage::Scan, Stage::Hash] {
            crate::progress::set(conn, id, stage, StageStatus::Pending, 0, size, "queued").await?;
        }
        for stage in Stage::PROCESSING {
            crate::progress::set(
                conn,
                id,
                stage,
                StageStatus::Pending,
                0,
                0,
                "after the scan",
            )
            .await?;
        }
        jobs::enqueue(conn, Queue::Scan, &UploadJob::first(id), None).await?;
        Ok(Transition::Applied(UploadState::Uploaded))
    })
    .await
}

/// What the scan job found, recorded in one transaction with the state change.
#[derive(Debug, Clone)]
pub enum ScanOutcome {
    /// Clean and acceptable: processing goes on with metadata and previews.
    Clean,
    /// Malware: the file is in quarantine; the seller is told.
    Infected {
        /// What to tell the seller.
        notification: NewNotification,
    },
    /// Not acceptable (the type policy, or the scanner could not inspect it); the
    /// seller is told why.
    Rejected {
        /// The code and the reason, for the seller.
        failure: Failure,
        /// The event that rejects it: the type policy's, or an unscannable verdict.
        event: UploadEvent,
        /// What to tell the seller.
        notification: NewNotification,
    },
}

impl ScanOutcome {
    /// The event that records this outcome, and the failure it records.
    fn event(&self) -> (UploadEvent, Option<Failure>) {
        match self {
            Self::Clean => (UploadEvent::Scanned(ScanVerdict::Clean), None),
            Self::Infected { notification } => (
                UploadEvent::Scanned(ScanVerdict::Infected),
                Some(Failure::new(
                    FailureCode::Infected,
                    notification.message.clone(),
                )),
            ),
            Self::Rejected { failure, event, .. } => (*event, Some(failure.clone())),
        }
    }
}

/// Records a finished scan of an upload in `scanning`: the verdict, the file's
/// facts (read in the same pass) and the next state, and enqueues what follows.
/// Returns [`Transition::Lost`] when the upload was no longer scanning (another run
/// recorded it first); nothing is written then.
pub async fn record_scan(
    conn: &mut AsyncPgConnection,
    scan: ScanRow,
    facts: MetadataRow,
    outcome: ScanOutcome,
    deliver_webhooks: bool,
    by: &Actor,
) -> Result<Transition, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let id = scan.upload_id;
        let size = facts.size();
        let (event, failure) = outcome.event();
        let moved =
            uploads::transition(conn, id, UploadState::Scanning, event, failure.as_ref(), by)
                .await?;
        let Ok(Transition::Applied(next)) = moved else {
            return Ok(Transition::Lost);
        };
        crate::results::save_scan(conn, &scan).await?;
        uploads::save_metadata(conn, &facts).await?;
        let scan_detail = match (scan.verdict, &scan.signature, scan.uninspected) {
            (ScanVerdict::Infected, Some(signature), _) => format!("found {signature}"),
            (ScanVerdict::Unscannable, _, Some(reason)) => {
                format!("could not be inspected: {reason}")
            }
            (ScanVerdict::Clean, _, Some(reason)) => {
                format!("clean as far as readable; not inspected: {reason}")
            }
            (verdict, _, _) => verdict.to_string(),
        };
        crate::progress::set(
            conn,
            id,
            Stage::Scan,
            StageStatus::Done,
            size,
            size,
            &scan_detail,
        )
        .await?;
        crate::progress::set(conn, id, Stage::Hash, StageStatus::Done, size, size, "").await?;
        match outcome {
            ScanOutcome::Clean => {
                for (stage, queue) in [
                    (Stage::Metadata, Queue::Metadata),
                    (Stage::Preview, Queue::Preview),
                ] {
                    crate::progress::set(conn, id, stage, StageStatus::Pending, 0, 0, "queued")
                        .await?;
                    jobs::enqueue(conn, queue, &UploadJob::first(id), None).await?;
                }
            }
            ScanOutcome::Infected { notification } | ScanOutcome::Rejected { notification, .. } => {
                for stage in Stage::PROCESSING {
                    crate::progress::set(
                        conn,
                        id,
                        stage,
                        StageStatus::Skipped,
                        0,
                        0,
                        &format!("not run: the file is {next}"),
                    )
                    .await?;
                }
                crate::notifications::record(conn, &notification, deliver_webhooks).await?;
            }
        }
        Ok(Transition::Applied(next))
    })
    .await
}

/// Records that `stage` (metadata or preview) of a processing upload finished
/// with `status`, and makes the upload ready once every processing stage has.
/// The upload row is locked first, so two stages finishing at once cannot both
/// miss (or both make) the last step.
pub async fn finish_stage(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    stage: Stage,
    status: StageStatus,
    detail: &str,
    by: &Actor,
) -> Result<Option<UploadState>, DbError> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let detail = detail.to_owned();
    conn.transaction::<_, DbError, _>(async move |conn| {
        use crate::schema::{upload_progress, uploads as u};
        let state: Option<UploadState> = u::table
            .find(id)
            .select(u::state)
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some(state) = state else {
            return Ok(None);
        };
        if state != UploadState::Processing {
            return Ok(Some(state));
        }
        crate::progress::set(conn, id, stage, status, 1, 1, &detail).await?;
        let statuses: Vec<(Stage, StageStatus)> = upload_progress::table
            .filter(upload_progress::upload_id.eq(id))
            .filter(upload_progress::stage.eq_any(Stage::PROCESSING))
            .select((upload_progress::stage, upload_progress::status))
            .load(conn)
            .await?;
        if !upload_domain::processing_settled(&statuses) {
            return Ok(Some(state));
        }
        match uploads::transition(
            conn,
            id,
            UploadState::Processing,
            UploadEvent::ProcessingDone,
            None,
            by,
        )
        .await?
        {
            Ok(Transition::Applied(next)) => Ok(Some(next)),
            _ => Ok(Some(state)),
        }
    })
    .await
}
