//! The move job: stores each file of a persisted submission in the regular bucket
//! under the MD5 of its content, records it as the next version of its item file,
//! and only then deletes the temp object and previews.
//!
//! Safe to run again after a crash at any point:
//! - before the copy: nothing was done;
//! - after the copy, before the version committed: the key holds this content (its
//!   SHA-256 is in the object's metadata), so it is adopted, not copied again;
//! - after the commit, before the deletes: the upload's version exists, so only
//!   the deletes run.
//!
//! The check of the MD5 key, the copy and the record happen under a per-MD5
//! advisory lock inside one transaction: two different contents with the same
//! MD5 can never both find the key free, and a key holding other content is never
//! overwritten. Content held or quarantined after a later scan's finding (under the
//! same lock while it moves) is never placed at its key again: the submission fails
//! with `content_held`.

use diesel_async::AsyncConnection;
use upload_db::jobs::{Queue, SubmissionJob};
use upload_db::models::{
    MetadataRow, NewNotification, PreviewRow, StoredObjectRow, SubmissionFileRow, SubmissionRow,
    UploadRow, VersionRow,
};
use upload_db::submissions;
use upload_db::versions::{self, ContentLock, NewVersion};
use upload_domain::{
    Actor, Bucket, FailureCode, Md5Digest, NotificationKind, SubmissionState, UNKNOWN_TYPE,
    UploadId,
};
use upload_storage::StorageKey;

use crate::JobContext;
use crate::job::job;
use crate::outcome::JobError;

job!(
    /// The move queue's job.
    Move,
    SubmissionJob,
    Queue::Move,
    run
);

/// Runs the move job for one submission.
pub async fn run(ctx: &JobContext, job: SubmissionJob) -> Result<(), JobError> {
    let by = crate::job::actor(Queue::Move, &job);
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    let Some(sub) = submissions::find(&mut conn, job.submission_id).await? else {
        tracing::warn!(submission = %job.submission_id, "no such submission; nothing to do");
        return Ok(());
    };
    if sub.state != SubmissionState::Persisted {
        tracing::info!(submission = %sub.id, state = %sub.state, "nothing to move in this state");
        return Ok(());
    }
    let files = submissions::files_of(&mut conn, sub.id).await?;
    drop(conn);
    let mut stored = Vec::with_capacity(files.len());
    for file in &files {
        let version = place_and_record(ctx, &sub, file, &by).await?;
        crate::failpoint::reached("move.after-record").await;
        remove_temp(ctx, file.upload_id).await?;
        stored.push(version);
    }
    let notification = NewNotification::about_submission(
        &sub,
        NotificationKind::ItemStored,
        format!("\"{}\" is saved and its files are stored", sub.title),
        serde_json::json!({
            "item_id": sub.item_id,
            "versions": stored.iter().map(|v| serde_json::json!({
                "file_id": v.file_id,
                "version": v.version,
                "md5": v.md5.to_hex(),
            })).collect::<Vec<_>>(),
        }),
    );
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    if submissions::finish(
        &mut conn,
        sub.id,
        notification,
        ctx.delivers_webhooks(),
        &by,
    )
    .await?
    {
        tracing::info!(submission = %sub.id, files = stored.len(), "submission stored");
    }
    Ok(())
}

/// The first half of moving one file: the content in place at its MD5 key (copied,
/// or found there already with the same SHA-256), its previews beside it, and the
/// version committed. The temp object is left alone; [`remove_temp`] follows.
pub async fn place_and_record(
    ctx: &JobContext,
    sub: &SubmissionRow,
    file: &SubmissionFileRow,
    by: &Actor,
) -> Result<VersionRow, JobError> {
    let upload = file.upload_id;
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    if let Some(done) = versions::for_upload(&mut conn, upload).await? {
        return Ok(done);
    }
    let Some(row) = upload_db::uploads::find(&mut conn, upload).await? else {
        return Err(JobError::abort(
            FailureCode::UploadMissing,
            format!("upload {upload} no longer exists"),
        ));
    };
    let Some(facts) = upload_db::uploads::metadata(&mut conn, upload).await? else {
        return Err(JobError::abort(
            FailureCode::UploadMissing,
            format!("upload {upload} has no recorded hashes"),
        ));
    };
    let previews = upload_db::results::previews(&mut conn, upload).await?;
    // Held on a connection of its own while the store copies: no transaction stays
    // open across the copy, and the lock goes with the connection if we die.
    let _lock = ContentLock::acquire(&ctx.config.database.url, facts.md5).await?;
    let object = place_content(ctx, &mut conn, &row, &facts).await?;
    let moved = place_previews(ctx, &facts, &previews).await?;
    crate::failpoint::reached("move.after-copy").await;
    let new = NewVersion {
        file_id: file.file_id,
        upload,
        submission_id: sub.id,
        object: &object,
        file_name: &row.file_name,
        content_type: &content_type(&row, &facts),
        previews: &moved,
    };
    let recorded = conn
        .transaction::<_, upload_db::DbError, _>(async move |conn| {
            versions::record(conn, &new, by).await
        })
        .await?;
    recorded.map_err(|conflict| conflict_abort(conflict.md5))
}

/// The type recorded for downloads: what the bytes are, when the sniffer knew.
fn content_type(row: &UploadRow, facts: &MetadataRow) -> String {
    if facts.sniffed_content_type == UNKNOWN_TYPE {
        row.declared_content_type.clone()
    } else {
        facts.sniffed_content_type.clone()
    }
}

fn conflict_abort(md5: Md5Digest) -> JobError {
    JobError::abort(
        FailureCode::ContentConflict,
        format!(
            "a different file with the same MD5 ({md5}) is already stored; this file was not stored and nothing was overwritten"
        ),
    )
}

/// Puts the content at its MD5 key unless that key already holds it. Refuses when
/// the key (or its record) holds content with another SHA-256.
async fn place_content(
    ctx: &JobContext,
    conn: &mut upload_db::AsyncPgConnection,
    row: &UploadRow,
    facts: &MetadataRow,
) -> Result<StoredObjectRow, JobError> {
    let md5 = facts.md5;
    let target = StorageKey::Content { md5 };
    let known = versions::stored_object(conn, md5).await?;
    // Held or quarantined content is never copied back to where downloads read it,
    // whoever uploads the same bytes again.
    let blocked = known.as_ref().map(|k| k.standing);
    if let Some(standing) = blocked.filter(|s| !s.downloadable()) {
        tracing::warn!(upload = %row.id, %md5, %standing, "content held or quarantined after a malware finding; not stored");
        return Err(JobError::abort(
            FailureCode::ContentHeld,
            format!(
                "a file with the same content (MD5 {md5}) is {} after a malware scan flagged it; {} was not stored",
                match standing {
                    upload_domain::ObjectStanding::Held => "held for our staff's review",
                    _ => "quarantined",
                },
                row.file_name
            ),
        ));
    }
    if known.as_ref().is_some_and(|k| k.sha256 != facts.sha256) {
        return Err(conflict_abort(md5));
    }
    match ctx.store.head(&target).await? {
        Some(head) => {
            let sha = match head.sha256 {
                Some(sha) => sha,
                // Not written by this service: read it to know what it is.
                None => ctx.store.sha256_of(&target).await?,
            };
            if sha != facts.sha256 {
                tracing::error!(%md5, existing = %sha, ours = %facts.sha256, "MD5 key holds other content");
                return Err(conflict_abort(md5));
            }
            tracing::info!(upload = %row.id, %md5, "content already stored; not copied again");
        }
        None => {
            if known.is_some() {
                tracing::warn!(%md5, "recorded object missing from the store; copying it again");
            }
            crate::failpoint::reached("move.before-copy").await;
            let method = ctx
                .store
                .copy_content(
                    &StorageKey::Temp {
                        owner: &row.owner_id,
                        upload: row.id,
                    },
                    &target,
                    facts.size(),
                    facts.sha256,
                    &content_type(row, facts),
                )
                .await?;
            tracing::info!(upload = %row.id, %md5, ?method, "content copied to the regular bucket");
        }
    }
    Ok(StoredObjectRow {
        md5: facts.md5,
        sha256: facts.sha256,
        size_bytes: facts.size_bytes,
        object_key: target.key(),
        created_at: chrono::Utc::now(),
        standing: upload_domain::ObjectStanding::Stored,
    })
}

/// Copies the upload's previews beside the stored content; returns each one's
/// new key by name.
async fn place_previews(
    ctx: &JobContext,
    facts: &MetadataRow,
    previews: &[PreviewRow],
) -> Result<Vec<(String, String)>, JobError> {
    let mut moved = Vec::with_capacity(previews.len());
    for p in previews {
        let to = StorageKey::StoredPreview {
            md5: facts.md5,
            name: &p.name,
        };
        if p.bucket != Bucket::Regular {
            let from = StorageKey::Preview {
                upload: p.upload_id,
                name: &p.name,
            };
            ctx.store.copy(&from, &to).await?;
        }
        moved.push((p.name.clone(), to.key()));
    }
    Ok(moved)
}

/// The second half of moving one file: deletes the temp object and the temp
/// previews of an upload whose version has committed. Deleting what is already
/// gone succeeds, so this may run any number of times.
pub async fn remove_temp(ctx: &JobContext, upload: UploadId) -> Result<(), JobError> {
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    if versions::for_upload(&mut conn, upload).await?.is_none() {
        // Never expected: the version commits before this runs. Retried, and the
        // submission fails as move_failed if it persists; the temp object is kept.
        return Err(JobError::retry(anyhow::anyhow!(
            "upload {upload} has no stored version; its temp object is kept"
        )));
    }
    let Some(row) = upload_db::uploads::find(&mut conn, upload).await? else {
        return Ok(());
    };
    let previews = upload_db::results::previews(&mut conn, upload).await?;
    drop(conn);
    ctx.store
        .delete(&StorageKey::Temp {
            owner: &row.owner_id,
            upload,
        })
        .await?;
    for p in &previews {
        ctx.store
            .delete(&StorageKey::Preview {
                upload,
                name: &p.name,
            })
            .await?;
    }
    Ok(())
}
