//! What the metadata and preview jobs share: they run only on a processing upload
//! whose scan came back clean, each for its own stage, and the last one to finish
//! makes the upload ready.

use upload_db::jobs::{Queue, UploadJob};
use upload_db::models::{MetadataRow, UploadRow};
use upload_db::uploads;
use upload_domain::{Stage, StageStatus, UploadState};
use upload_storage::StorageKey;

use crate::JobContext;
use crate::media::MediaError;
use crate::outcome::JobError;

/// An upload a processing job may work on, with the facts its scan recorded.
pub struct Claimed {
    /// The upload.
    pub row: UploadRow,
    /// Size, hashes and sniffed type from the scan's read.
    pub facts: MetadataRow,
}

/// The upload, when `stage` still has work to do on it: it is processing (so its
/// scan was clean) and the stage has not finished. Marks the stage running.
pub async fn claim(
    ctx: &JobContext,
    job: UploadJob,
    stage: Stage,
) -> Result<Option<Claimed>, JobError> {
    let id = job.upload_id;
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    let Some(row) = uploads::find(&mut conn, id).await? else {
        return Ok(None);
    };
    if row.state != UploadState::Processing {
        tracing::info!(upload = %id, state = %row.state, %stage, "nothing to do in this state");
        return Ok(None);
    }
    let settled = upload_db::progress::for_upload(&mut conn, id)
        .await?
        .into_iter()
        .any(|p| p.stage == stage && p.status.is_settled());
    if settled {
        return Ok(None);
    }
    let Some(facts) = uploads::metadata(&mut conn, id).await? else {
        // Processing is entered only together with the scan's facts.
        return Err(JobError::retry(anyhow::anyhow!(
            "upload {id} is processing but has no scan facts"
        )));
    };
    upload_db::progress::set(&mut conn, id, stage, StageStatus::Running, 0, 1, "running").await?;
    Ok(Some(Claimed { row, facts }))
}

impl Claimed {
    /// The stored file this job reads.
    pub fn object(&self) -> StorageKey<'_> {
        StorageKey::Temp {
            owner: &self.row.owner_id,
            upload: self.row.id,
        }
    }

    /// How a media tool's failure on this file is retried. While the store still
    /// answers, the failure may be the file's own (a broken video): a few attempts.
    /// When the store does not answer, or the sandbox does not, it is an outage:
    /// the long horizon.
    pub async fn media_failure(&self, ctx: &JobContext, e: MediaError) -> JobError {
        // A sandbox not (yet) listening says nothing of the file: the long horizon.
        if matches!(e, MediaError::Unreachable(_)) {
            return JobError::retry(e);
        }
        match ctx.store.object_size(&self.object()).await {
            Ok(_) => JobError::RetryFew(e.into()),
            Err(_) => JobError::retry(e),
        }
    }
}

/// Settles `stage` and makes the upload ready when it was the last one.
pub async fn finish(
    ctx: &JobContext,
    job: UploadJob,
    stage: Stage,
    status: StageStatus,
    detail: &str,
) -> Result<(), JobError> {
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    let state = upload_db::pipeline::finish_stage(
        &mut conn,
        job.upload_id,
        stage,
        status,
        detail,
        &crate::job::actor(Queue::of_stage(stage), &job),
    )
    .await?;
    if state == Some(UploadState::Ready) {
        tracing::info!(upload = %job.upload_id, "upload ready");
    }
    Ok(())
}
