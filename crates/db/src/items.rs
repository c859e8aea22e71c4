//! Items and their submissions: SubmitItem's one transaction, the persist step,
//! how a submission ends, the reads the API needs, and access grants.

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    FileId, IdempotencyKey, ItemFields, ItemId, ItemKind, SubmissionEvent, SubmissionState,
    UploadEvent, UploadId, UploadState,
};
use uuid::Uuid;

use crate::DbError;
use crate::jobs::{self, Queue, SubmissionJob};
use crate::models::{
    ItemFileRow, ItemRow, NewNotification, SubmissionFileRow, SubmissionRow, UploadRow,
};
use crate::schema::{item_files, item_grants, item_submissions, items, submission_files, uploads};
use crate::uploads::{self as upload_rows, FailureNote, Transition};

/// What SubmitItem asks for, parsed.
#[derive(Debug, Clone)]
pub struct SubmitRequest<'a> {
    /// The caller, who owns the item and the uploads.
    pub owner: &'a str,
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
}

/// A submission the database accepted (now, or earlier under the same key).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The item.
    pub item_id: ItemId,
    /// The submission.
    pub submission_id: Uuid,
    /// Which file each upload becomes a version of.
    pub files: Vec<SubmissionFileRow>,
    /// True when the key was seen before and nothing new was written.
    pub repeated: bool,
}

/// Why a submission was refused. Nothing is written when one is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitRefusal {
    /// The key was used before for a different request.
    #[error(
        "idempotency key {0:?} was already used for a different submission; use a new key for a new submission"
    )]
    KeyReused(String),
    /// The item does not exist or belongs to someone else.
    #[error("item {0} not found")]
    ItemNotFound(ItemId),
    /// An update asked for another kind than the item's.
    #[error("item {item} is a {actual} item; it cannot be submitted as a {asked} item")]
    KindChanged {
        /// The item.
        item: ItemId,
        /// Its kind.
        actual: &'static str,
        /// The kind asked for.
        asked: &'static str,
    },
    /// A new item without files.
    #[error("a new item needs at least one file: give the upload_id of a ready upload")]
    NoFiles,
    /// More files than the kind allows.
    #[error("a {kind} item holds at most {max} file(s); this submission would give it {would}")]
    TooManyFiles {
        /// The kind.
        kind: &'static str,
        /// Its limit.
        max: usize,
        /// Files the item would have.
        would: usize,
    },
    /// A file id that is not one of the item's files.
    #[error("file {0} is not a file of this item; leave file_id empty to add a new file")]
    UnknownFile(FileId),
    /// Two uploads for the same file in one submission.
    #[error("file {0} is given two uploads in one submission; submit one new version at a time")]
    DuplicateFile(FileId),
    /// The upload does not exist or belongs to someone else.
    #[error("upload {0} not found")]
    UploadNotFound(UploadId),
    /// The upload is not ready (or not clean).
    #[error("upload {upload} cannot be submitted: {reason}")]
    UploadNotReady {
        /// The upload.
        upload: UploadId,
        /// Why, for the seller.
        reason: String,
    },
    /// A video item's file that is not a video.
    #[error("upload {upload} is {sniffed}, not a video; a video item's file must be a video")]
    NotAVideo {
        /// The upload.
        upload: UploadId,
        /// Its sniffed type.
        sniffed: String,
    },
}

/// Why an upload in `state` cannot be submitted, in words a seller can act on.
fn not_ready_reason(row: &UploadRow, state: UploadState) -> String {
    let why = row
        .failure_message
        .as_deref()
        .unwrap_or("no reason recorded");
    match state {
        UploadState::Created | UploadState::Uploading => {
            "it is not complete yet: send its parts and call CompleteUpload".into()
        }
        UploadState::Uploaded | UploadState::Scanning | UploadState::Processing => {
            "it is still being scanned and processed; submit it once it is ready".into()
        }
        UploadState::Submitted => "it is already part of a submission in progress".into(),
        UploadState::Stored => {
            "it is already stored as a version of an item; upload the file again to use it elsewhere".into()
        }
        UploadState::Quarantined => {
            format!("malware was found in it ({why}); it can never be submitted")
        }
        UploadState::Rejected | UploadState::Failed => format!("it is {state}: {why}"),
        UploadState::Aborted | UploadState::Expired => {
            format!("it was {state}; upload the file again")
        }
        UploadState::Ready => "it has no clean scan on record".into(),
    }
}

/// How SubmitItem's transaction ends early. A refusal is carried out as an error so
/// that the transaction rolls back what the checks already changed.
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

/// SubmitItem's transaction: checks the item and every upload, moves the uploads
/// to `submitted`, records the submission and queues the persist job. A key seen
/// before returns that submission and writes nothing.
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
                return Ok(Err(SubmitRefusal::KeyReused(req.key.as_str().to_owned())));
            }
            return Ok(Ok(Accepted {
                item_id: ItemId::from(earlier.item_id),
                submission_id: earlier.id,
                files: files_of(conn, earlier.id).await?,
                repeated: true,
            }));
        }
        match refuse_or_record(conn, &req).await? {
            Ok(accepted) => Ok(Ok(accepted)),
            // Roll back whatever the checks already changed (upload states).
            Err(refusal) => Err(SubmitAbort::Refused(refusal)),
        }
    })
    .await
    .or_else(|e| match e {
        SubmitAbort::Refused(refusal) => Ok(Err(refusal)),
        SubmitAbort::Db(e) => Err(e),
    })
}

async fn refuse_or_record(
    conn: &mut AsyncPgConnection,
    req: &SubmitRequest<'_>,
) -> Result<Result<Accepted, SubmitRefusal>, DbError> {
    let kind = req.kind;
    let (item_id, existing) = match req.item_id {
        Some(id) => {
            let item: Option<ItemRow> = items::table
                .find(id.as_uuid())
                .for_update()
                .select(ItemRow::as_select())
                .first(conn)
                .await
                .optional()?;
            let Some(item) = item.filter(|i| i.owner_id == req.owner) else {
                return Ok(Err(SubmitRefusal::ItemNotFound(id)));
            };
            let actual = item.kind()?;
            if actual != kind {
                return Ok(Err(SubmitRefusal::KindChanged {
                    item: id,
                    actual: actual.as_str(),
                    asked: kind.as_str(),
                }));
            }
            let files: Vec<Uuid> = item_files::table
                .filter(item_files::item_id.eq(id.as_uuid()))
                .order(item_files::created_at.asc())
                .select(item_files::id)
                .load(conn)
                .await?;
            (id, files)
        }
        None => (ItemId::new(), Vec::new()),
    };
    if req.item_id.is_none() && req.files.is_empty() {
        return Ok(Err(SubmitRefusal::NoFiles));
    }
    // Which file each upload becomes a version of.
    let mut plan: Vec<(UploadId, FileId)> = Vec::with_capacity(req.files.len());
    let mut new_files: Vec<FileId> = Vec::new();
    for &(upload, file) in req.files {
        let file = match (kind, file, <[Uuid]>::first(&existing)) {
            // A video item has one file: every upload is its next version.
            (ItemKind::Video, _, Some(only)) => FileId::from(*only),
            (_, Some(file), _) if existing.contains(&file.as_uuid()) => file,
            (_, Some(file), _) => return Ok(Err(SubmitRefusal::UnknownFile(file))),
            (_, None, _) => {
                let file = FileId::new();
                new_files.push(file);
                file
            }
        };
        if plan.iter().any(|(_, f)| *f == file) {
            return Ok(Err(SubmitRefusal::DuplicateFile(file)));
        }
        plan.push((upload, file));
    }
    let would = existing.len() + new_files.len();
    if would > kind.max_files() {
        return Ok(Err(SubmitRefusal::TooManyFiles {
            kind: kind.as_str(),
            max: kind.max_files(),
            would,
        }));
    }
    // Lock the uploads in one order, so two submissions cannot deadlock.
    let mut by_id: Vec<UploadId> = plan.iter().map(|(u, _)| *u).collect();
    by_id.sort();
    for upload in by_id {
        let row: Option<UploadRow> = uploads::table
            .find(upload.as_uuid())
            .for_update()
            .select(UploadRow::as_select())
            .first(conn)
            .await
            .optional()?;
        let Some(row) = row.filter(|r| r.owner_id == req.owner) else {
            return Ok(Err(SubmitRefusal::UploadNotFound(upload)));
        };
        let state = row.state()?;
        let clean = crate::results::scan(conn, upload)
            .await?
            .is_some_and(|s| s.verdict == "clean");
        if state != UploadState::Ready || !clean {
            return Ok(Err(SubmitRefusal::UploadNotReady {
                upload,
                reason: not_ready_reason(&row, state),
            }));
        }
        if kind == ItemKind::Video {
            let sniffed = upload_rows::metadata(conn, upload)
                .await?
                .map(|m| m.sniffed_content_type)
                .unwrap_or_default();
            if !sniffed.starts_with("video/") {
                return Ok(Err(SubmitRefusal::NotAVideo { upload, sniffed }));
            }
        }
        let moved = upload_rows::transition(
            conn,
            upload,
            UploadState::Ready,
            UploadEvent::Submitted,
            None,
        )
        .await?;
        if !matches!(moved, Ok(Transition::Applied(_))) {
            return Err(DbError::Corrupt(format!(
                "upload {upload} was locked ready but did not move to submitted"
            )));
        }
    }
    let now = Utc::now();
    if req.item_id.is_none() {
        diesel::insert_into(items::table)
            .values((
                items::id.eq(item_id.as_uuid()),
                items::owner_id.eq(req.owner),
                items::kind.eq(kind.as_str()),
                items::created_at.eq(now),
                items::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
    }
    for file in &new_files {
        diesel::insert_into(item_files::table)
            .values((
                item_files::id.eq(file.as_uuid()),
                item_files::item_id.eq(item_id.as_uuid()),
            ))
            .execute(conn)
            .await?;
    }
    let submission_id = Uuid::now_v7();
    diesel::insert_into(item_submissions::table)
        .values((
            item_submissions::id.eq(submission_id),
            item_submissions::item_id.eq(item_id.as_uuid()),
            item_submissions::owner_id.eq(req.owner),
            item_submissions::idempotency_key.eq(req.key.as_str()),
            item_submissions::request_digest.eq(req.digest),
            item_submissions::title.eq(req.fields.title()),
            item_submissions::description.eq(req.fields.description()),
            item_submissions::state.eq(SubmissionState::Queued.as_str()),
        ))
        .execute(conn)
        .await?;
    let files: Vec<SubmissionFileRow> = plan
        .iter()
        .zip(0..)
        .map(|(&(upload, file), position)| SubmissionFileRow {
            submission_id,
            upload_id: upload.as_uuid(),
            file_id: file.as_uuid(),
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
    Ok(Ok(Accepted {
        item_id,
        submission_id,
        files,
        repeated: false,
    }))
}

/// Moves submission `id` from `expected` by `event`, only if it is still there.
pub async fn transition(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    expected: SubmissionState,
    event: SubmissionEvent,
    failure: Option<FailureNote<'_>>,
) -> Result<bool, DbError> {
    let Ok(next) = expected.apply(event) else {
        return Ok(false);
    };
    let updated = diesel::update(
        item_submissions::table
            .filter(item_submissions::id.eq(id))
            .filter(item_submissions::state.eq(expected.as_str())),
    )
    .set((
        item_submissions::state.eq(next.as_str()),
        item_submissions::updated_at.eq(Utc::now()),
        item_submissions::failure_code.eq(failure.map(|f| f.code)),
        item_submissions::failure_message.eq(failure.map(|f| f.message)),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// The persist step: saves a queued submission's fields into its item (unless a
/// later submission's are already there) and queues the move, in one transaction.
/// Running it again changes nothing and queues nothing new. Returns the
/// submission's state, or None when it does not exist.
pub async fn persist(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<SubmissionState>, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let Some(sub) = lock_submission(conn, id).await? else {
            return Ok(None);
        };
        let state = sub.state()?;
        match state {
            SubmissionState::Queued => {
                diesel::update(
                    items::table.find(sub.item_id).filter(
                        items::fields_seq
                            .is_null()
                            .or(items::fields_seq.lt(sub.seq)),
                    ),
                )
                .set((
                    items::title.eq(&sub.title),
                    items::description.eq(&sub.description),
                    items::fields_seq.eq(sub.seq),
                    items::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
                transition(conn, id, state, SubmissionEvent::Persisted, None).await?;
                jobs::enqueue(conn, Queue::Move, &SubmissionJob::first(id), None).await?;
                Ok(Some(SubmissionState::Persisted))
            }
            SubmissionState::Persisted => {
                // Persisted before, perhaps without the move's row committing: the
                // enqueue is idempotent.
                jobs::enqueue(conn, Queue::Move, &SubmissionJob::first(id), None).await?;
                Ok(Some(state))
            }
            settled => Ok(Some(settled)),
        }
    })
    .await
}

/// Marks a persisted submission stored and tells the seller, in one transaction.
/// Returns false when it was not persisted (stored before, or failed).
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    notification: NewNotification,
    deliver: bool,
) -> Result<bool, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let moved = transition(
            conn,
            id,
            SubmissionState::Persisted,
            SubmissionEvent::Stored,
            None,
        )
        .await?;
        if moved {
            crate::notifications::record(conn, &notification, deliver).await?;
        }
        Ok(moved)
    })
    .await
}

/// Fails a submission that has not settled: records why, gives its uploads that
/// were not stored back to the seller (`ready` again, their temp objects untouched)
/// and tells the seller, in one transaction. Returns false when it had settled.
pub async fn fail(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    failure: FailureNote<'_>,
    notification: NewNotification,
    deliver: bool,
) -> Result<bool, DbError> {
    let (code, message) = (failure.code.to_owned(), failure.message.to_owned());
    conn.transaction::<_, DbError, _>(async move |conn| {
        let Some(sub) = lock_submission(conn, id).await? else {
            return Ok(false);
        };
        let note = FailureNote {
            code: &code,
            message: &message,
        };
        if !transition(conn, id, sub.state()?, SubmissionEvent::Failed, Some(note)).await? {
            return Ok(false);
        }
        for file in files_of(conn, id).await? {
            // Uploads already stored stay stored: their versions exist.
            let _released = upload_rows::transition(
                conn,
                UploadId::from(file.upload_id),
                UploadState::Submitted,
                UploadEvent::Released,
                None,
            )
            .await?;
        }
        crate::notifications::record(conn, &notification, deliver).await?;
        Ok(true)
    })
    .await
}

async fn lock_submission(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<SubmissionRow>, DbError> {
    Ok(item_submissions::table
        .find(id)
        .for_update()
        .select(SubmissionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// One submission.
pub async fn submission(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<SubmissionRow>, DbError> {
    Ok(item_submissions::table
        .find(id)
        .select(SubmissionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A submission's uploads, in the order given.
pub async fn files_of(
    conn: &mut AsyncPgConnection,
    submission: Uuid,
) -> Result<Vec<SubmissionFileRow>, DbError> {
    Ok(submission_files::table
        .filter(submission_files::submission_id.eq(submission))
        .order(submission_files::position.asc())
        .select(SubmissionFileRow::as_select())
        .load(conn)
        .await?)
}

/// One item.
pub async fn item(conn: &mut AsyncPgConnection, id: ItemId) -> Result<Option<ItemRow>, DbError> {
    Ok(items::table
        .find(id.as_uuid())
        .select(ItemRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The item's latest submission.
pub async fn latest_submission(
    conn: &mut AsyncPgConnection,
    id: ItemId,
) -> Result<Option<SubmissionRow>, DbError> {
    Ok(item_submissions::table
        .filter(item_submissions::item_id.eq(id.as_uuid()))
        .order(item_submissions::seq.desc())
        .select(SubmissionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The item's files, oldest first.
pub async fn files(conn: &mut AsyncPgConnection, id: ItemId) -> Result<Vec<ItemFileRow>, DbError> {
    Ok(item_files::table
        .filter(item_files::item_id.eq(id.as_uuid()))
        .order((item_files::created_at.asc(), item_files::id.asc()))
        .select(ItemFileRow::as_select())
        .load(conn)
        .await?)
}

/// True when `user` was granted access to the item.
pub async fn is_granted(
    conn: &mut AsyncPgConnection,
    id: ItemId,
    user: &str,
) -> Result<bool, DbError> {
    let found: i64 = item_grants::table
        .filter(item_grants::item_id.eq(id.as_uuid()))
        .filter(item_grants::user_id.eq(user))
        .count()
        .get_result(conn)
        .await?;
    Ok(found > 0)
}

/// Grants `user` access to the item; granting twice is one grant.
pub async fn grant(conn: &mut AsyncPgConnection, id: ItemId, user: &str) -> Result<(), DbError> {
    diesel::insert_into(item_grants::table)
        .values((
            item_grants::item_id.eq(id.as_uuid()),
            item_grants::user_id.eq(user),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes a grant back; revoking one that does not exist succeeds.
pub async fn revoke(conn: &mut AsyncPgConnection, id: ItemId, user: &str) -> Result<(), DbError> {
    diesel::delete(
        item_grants::table
            .filter(item_grants::item_id.eq(id.as_uuid()))
            .filter(item_grants::user_id.eq(user)),
    )
    .execute(conn)
    .await?;
    Ok(())
}

impl NewNotification {
    /// A fresh notification to the owner of a submission.
    pub fn about_submission(
        submission: &SubmissionRow,
        kind: &str,
        message: String,
        details: serde_json::Value,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            seller_id: submission.owner_id.clone(),
            upload_id: None,
            kind: kind.to_owned(),
            message,
            details,
            submission_id: Some(submission.id),
        }
    }
}
