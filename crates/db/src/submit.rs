//! SubmitItem's one transaction: lock what the submission names, let the domain's
//! rules decide ([`plan_submission`]), then write the plan: uploads to `submitted`,
//! the item and its new files, the submission, and its persist job.

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, ChangeCause, FileId, IdempotencyKey, ItemFields, ItemId, ItemKind, ItemOnRecord,
    ScanVerdict, SellerId, SubmissionId, SubmissionPlan, SubmissionState, SubmitRefusal,
    UploadEvent, UploadId, UploadOnRecord, UploadState, plan_submission,
};

use crate::DbError;
use crate::jobs::{self, Queue, SubmissionJob};
use crate::models::{ItemRow, SubmissionFileRow, SubmissionRow};
use crate::schema::{
    item_files, item_submissions, items, submission_files, upload_metadata, upload_scans, uploads,
};
use crate::uploads::{self as upload_rows, Transition};

/// What SubmitItem asks for, parsed.
#[derive(Debug, Clone)]
pub struct SubmitRequest<'a> {
    /// The caller, who owns the item and the uploads.
    pub owner: &'a SellerId,
    /// The item to update, or None to create one.
    pub item_id: Option<ItemId>,
    /// The item's kind.
    pub kind: ItemKind,
    /// Title and description.
    pub fields: &'a ItemFields,
    /// The client's key for this submission.
    pub key: &'a IdempotencyKey,
    /// A digest of the whole request, to tell a retry from a different request.
    pub digest: &'a str,
    /// The uploads, each with the file it should become a version of (None: a new file).
    pub files: &'a [(UploadId, Option<FileId>)],
    /// Who submits (recorded in the histories).
    pub by: &'a Actor,
}

/// A submission the database accepted (now, or earlier under the same key).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The item.
    pub item_id: ItemId,
    /// The submission.
    pub submission_id: SubmissionId,
    /// Which file each upload becomes a version of.
    pub files: Vec<SubmissionFileRow>,
    /// True when the key was seen before and nothing new was written.
    pub repeated: bool,
}

/// How SubmitItem's transaction ends early. A refusal is carried out as an error so
/// that the transaction rolls back whatever was locked or written.
enum SubmitAbort {
    Db(DbError),
    Refused(SubmitRefusal),
}

impl From<DbError> for SubmitAbort {
    fn from(e: DbError) -> Self {
        SubmitAbort::Db(e)
    }
}

impl From<diesel::result::Error> for SubmitAbort {
    fn from(e: diesel::result::Error) -> Self {
        SubmitAbort::Db(e.into())
    }
}

/// SubmitItem's transaction. A key seen before returns that submission and writes
/// nothing; a refusal writes nothing either.
pub async fn submit(
    conn: &mut AsyncPgConnection,
    req: SubmitRequest<'_>,
) -> Result<Result<Accepted, SubmitRefusal>, DbError> {
    let req = req.clone();
    conn.transaction::<_, SubmitAbort, _>(async move |conn| {
        // A retry racing its original waits here, then finds it.
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<Text, _>(format!("submit:{}:{}", req.owner, req.key.as_str()))
            .execute(conn)
            .await?;
        let earlier: Option<SubmissionRow> = item_submissions::table
            .filter(item_submissions::owner_id.eq(req.owner))
            .filter(item_submissions::idempotency_key.eq(req.key.as_str()))
            .select(SubmissionRow::as_select())
            .first(conn)
            .await
            .optional()?;
        if let Some(earlier) = earlier {
            if earlier.request_digest != req.digest {
                return Err(SubmitAbort::Refused(SubmitRefusal::KeyReused(
                    req.key.as_str().to_owned(),
                )));
            }
            return Ok(Accepted {
                item_id: earlier.item_id,
                submission_id: earlier.id,
                files: crate::submissions::files_of(conn, earlier.id).await?,
                repeated: true,
            });
        }
        let item = lock_item(conn, &req).await?;
        let uploads = lock_uploads(conn, req.owner, req.files).await?;
        let plan =
            plan_submission(req.kind, &item, req.files, &uploads).map_err(SubmitAbort::Refused)?;
        Ok(record(conn, &req, &plan).await?)
    })
    .await
    .map(Ok)
    .or_else(|e| match e {
        SubmitAbort::Refused(refusal) => Ok(Err(refusal)),
        SubmitAbort::Db(e) => Err(e),
    })
}

/// The item the request names, locked, with its files; or what stands in its place.
async fn lock_item(
    conn: &mut AsyncPgConnection,
    req: &SubmitRequest<'_>,
) -> Result<ItemOnRecord, DbError> {
    let Some(id) = req.item_id else {
        return Ok(ItemOnRecord::New);
    };
    let item: Option<ItemRow> = items::table
        .find(id)
        .for_update()
        .select(ItemRow::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(item) = item.filter(|i| &i.owner_id == req.owner) else {
        return Ok(ItemOnRecord::Missing(id));
    };
    let files: Vec<FileId> = item_files::table
        .filter(item_files::item_id.eq(id))
        .order(item_files::created_at.asc())
        .select(item_files::id)
        .load(conn)
        .await?;
    Ok(ItemOnRecord::Existing {
        id,
        kind: item.kind,
        files,
    })
}

/// The owner's uploads among those named, locked in id order (so two submissions
/// cannot deadlock), with their verdicts and sniffed types.
async fn lock_uploads(
    conn: &mut AsyncPgConnection,
    owner: &SellerId,
    files: &[(UploadId, Option<FileId>)],
) -> Result<Vec<UploadOnRecord>, DbError> {
    let ids: Vec<UploadId> = files.iter().map(|(u, _)| *u).collect();
    let locked: Vec<UploadId> = uploads::table
        .filter(uploads::id.eq_any(&ids))
        .filter(uploads::owner_id.eq(owner))
        .order(uploads::id.asc())
        .for_update()
        .select(uploads::id)
        .load(conn)
        .await?;
    type Found = (
        UploadId,
        UploadState,
        Option<String>,
        Option<ScanVerdict>,
        Option<String>,
    );
    let rows: Vec<Found> = uploads::table
        .left_join(upload_scans::table)
        .left_join(upload_metadata::table)
        .filter(uploads::id.eq_any(&locked))
        .select((
            uploads::id,
            uploads::state,
            uploads::failure_message,
            upload_scans::verdict.nullable(),
            upload_metadata::sniffed_content_type.nullable(),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, state, failure_message, verdict, sniffed)| UploadOnRecord {
                id,
                state,
                verdict,
                sniffed_content_type: sniffed,
                failure_message,
            },
        )
        .collect())
}

/// Writes an accepted plan.
async fn record(
    conn: &mut AsyncPgConnection,
    req: &SubmitRequest<'_>,
    plan: &SubmissionPlan,
) -> Result<Accepted, DbError> {
    for (upload, _) in &plan.files {
        let moved = upload_rows::transition(
            conn,
            *upload,
            UploadState::Ready,
            UploadEvent::Submitted,
            None,
            req.by,
        )
        .await?;
        if !matches!(moved, Ok(Transition::Applied(_))) {
            return Err(DbError::Corrupt(format!(
                "upload {upload} was locked ready but did not move to submitted"
            )));
        }
    }
    let now = Utc::now();
    if plan.creates_item {
        diesel::insert_into(items::table)
            .values((
                items::id.eq(plan.item_id),
                items::owner_id.eq(req.owner),
                items::kind.eq(req.kind),
                items::created_at.eq(now),
                items::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
    }
    for file in &plan.new_files {
        diesel::insert_into(item_files::table)
            .values((
                item_files::id.eq(file),
                item_files::item_id.eq(plan.item_id),
            ))
            .execute(conn)
            .await?;
    }
    let submission_id = SubmissionId::new();
    diesel::insert_into(item_submissions::table)
        .values((
            item_submissions::id.eq(submission_id),
            item_submissions::item_id.eq(plan.item_id),
            item_submissions::owner_id.eq(req.owner),
            item_submissions::idempotency_key.eq(req.key.as_str()),
            item_submissions::request_digest.eq(req.digest),
            item_submissions::title.eq(req.fields.title()),
            item_submissions::description.eq(req.fields.description()),
            item_submissions::state.eq(SubmissionState::Queued),
        ))
        .execute(conn)
        .await?;
    crate::history::record_submission(
        conn,
        submission_id,
        None,
        SubmissionState::Queued,
        ChangeCause::Created,
        req.by,
        None,
    )
    .await?;
    let files: Vec<SubmissionFileRow> = plan
        .files
        .iter()
        .zip(0..)
        .map(|(&(upload_id, file_id), position)| SubmissionFileRow {
            submission_id,
            upload_id,
            file_id,
            position,
        })
        .collect();
    diesel::insert_into(submission_files::table)
        .values(&files)
        .execute(conn)
        .await?;
    jobs::enqueue(
        conn,
        Queue::Persist,
        &SubmissionJob::first(submission_id),
        None,
    )
    .await?;
    Ok(Accepted {
        item_id: plan.item_id,
        submission_id,
        files,
        repeated: false,
    })
}
