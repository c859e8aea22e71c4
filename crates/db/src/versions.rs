//! The regular bucket's records: which object holds which content, and every
//! version of every item file.

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, Bucket, FileId, ItemId, Md5Digest, ObjectStanding, Sha256Digest, SubmissionId,
    UploadEvent, UploadId, UploadState,
};

use crate::DbError;
use crate::models::{ItemFileRow, StoredObjectRow, VersionRow};
use crate::schema::{file_versions, item_files, stored_objects, upload_previews};
use crate::uploads::{self, Transition};

/// The right to check and fill the regular bucket's key for one MD5: two moves of
/// different content with the same MD5 cannot both find the key free. A session
/// lock on a connection of its own, so no transaction stays open while the store
/// copies; it is released when this is dropped, and by PostgreSQL if the process
/// dies (the connection goes with it).
pub struct ContentLock {
    _conn: AsyncPgConnection,
}

impl ContentLock {
    /// Waits for the lock on `md5`'s key, on a new connection to `database_url`.
    pub async fn acquire(database_url: &str, md5: Md5Digest) -> Result<Self, DbError> {
        let mut conn = crate::connect::establish(database_url).await?;
        Self::take_on(&mut conn, md5).await?;
        Ok(Self { _conn: conn })
    }

    /// Waits for the same lock on `conn`'s session (a tool's one connection),
    /// until [`ContentLock::release_on`] or the connection's end.
    pub async fn take_on(conn: &mut AsyncPgConnection, md5: Md5Digest) -> Result<(), DbError> {
        diesel::sql_query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
            .bind::<Text, _>(format!("content:{md5}"))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Gives back a lock [`ContentLock::take_on`] took on `conn`.
    pub async fn release_on(conn: &mut AsyncPgConnection, md5: Md5Digest) -> Result<(), DbError> {
        diesel::sql_query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind::<Text, _>(format!("content:{md5}"))
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// The record of the object stored under `md5`.
pub async fn stored_object(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
) -> Result<Option<StoredObjectRow>, DbError> {
    Ok(stored_objects::table
        .find(md5)
        .select(StoredObjectRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The version an upload became, if it did.
pub async fn for_upload(
    conn: &mut AsyncPgConnection,
    upload: UploadId,
) -> Result<Option<VersionRow>, DbError> {
    Ok(file_versions::table
        .filter(file_versions::upload_id.eq(upload))
        .select(VersionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// What the move job records once the object is in place.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// The file it is a version of.
    pub file_id: FileId,
    /// The upload it came from.
    pub upload: UploadId,
    /// The submission that brought it.
    pub submission_id: SubmissionId,
    /// The object holding the content.
    pub object: &'a StoredObjectRow,
    /// The seller's file name.
    pub file_name: &'a str,
    /// The content type recorded for downloads.
    pub content_type: &'a str,
    /// Where each of the upload's previews now is, by name.
    pub previews: &'a [(String, String)],
}

/// The content under an MD5 key is not the content being stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the regular bucket holds different content (SHA-256 {existing}) under MD5 {md5}")]
pub struct ContentConflict {
    /// The key's MD5.
    pub md5: Md5Digest,
    /// The SHA-256 of what is there.
    pub existing: Sha256Digest,
}

/// Records a stored version inside the caller's transaction: the object (unless
/// recorded before), the next version number of the file (which becomes current),
/// the previews' new home, and the upload as `stored`. An upload recorded before
/// returns its version unchanged.
pub async fn record(
    conn: &mut AsyncPgConnection,
    new: &NewVersion<'_>,
    by: &Actor,
) -> Result<Result<VersionRow, ContentConflict>, DbError> {
    diesel::insert_into(stored_objects::table)
        .values(new.object)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    // A new object carries the verdict of the upload that brought it, with its
    // provenance and an operator's release if there was one (an object stored
    // before keeps its own: the older, the sooner re-scanned).
    diesel::sql_query(
        "UPDATE stored_objects o
            SET verdict = s.verdict,
                engine_version = s.engine_version,
                signature_version = s.signature_version,
                scanned_at = s.scanned_at,
                released_by = s.released_by,
                release_reason = s.release_reason,
                released_signature = s.released_signature
           FROM upload_scans s
          WHERE o.md5_hex = $1 AND o.scanned_at IS NULL AND s.upload_id = $2",
    )
    .bind::<Text, _>(new.object.md5.to_hex())
    .bind::<diesel::sql_types::Uuid, _>(new.upload)
    .execute(conn)
    .await?;
    let held = stored_object(conn, new.object.md5)
        .await?
        .ok_or_else(|| DbError::Corrupt("stored object vanished inside its transaction".into()))?;
    if held.sha256 != new.object.sha256 {
        return Ok(Err(ContentConflict {
            md5: held.md5,
            existing: held.sha256,
        }));
    }
    if let Some(done) = for_upload(conn, new.upload).await? {
        return Ok(Ok(done));
    }
    // The file's row is the lock that numbers its versions one at a time.
    let file: ItemFileRow = item_files::table
        .find(new.file_id)
        .for_update()
        .select(ItemFileRow::as_select())
        .first(conn)
        .await?;
    let last: Option<i32> = file_versions::table
        .filter(file_versions::file_id.eq(file.id))
        .select(diesel::dsl::max(file_versions::version))
        .first(conn)
        .await?;
    let row = VersionRow {
        file_id: file.id,
        version: last.unwrap_or(0) + 1,
        upload_id: new.upload,
        submission_id: new.submission_id,
        md5: held.md5,
        sha256: held.sha256,
        size_bytes: held.size_bytes,
        file_name: new.file_name.to_owned(),
        content_type: new.content_type.to_owned(),
        created_at: Utc::now(),
    };
    diesel::insert_into(file_versions::table)
        .values(&row)
        .execute(conn)
        .await?;
    diesel::update(item_files::table.find(file.id))
        .set(item_files::current_version.eq(row.version))
        .execute(conn)
        .await?;
    for (name, key) in new.previews {
        diesel::update(
            upload_previews::table
                .filter(upload_previews::upload_id.eq(new.upload))
                .filter(upload_previews::name.eq(name)),
        )
        .set((
            upload_previews::bucket.eq(Bucket::Regular),
            upload_previews::object_key.eq(key),
        ))
        .execute(conn)
        .await?;
    }
    let moved = uploads::transition(
        conn,
        new.upload,
        UploadState::Submitted,
        UploadEvent::Stored,
        None,
        by,
    )
    .await?;
    if !matches!(moved, Ok(Transition::Applied(_))) {
        return Err(DbError::Corrupt(format!(
            "upload {} was not submitted when its version was recorded",
            new.upload
        )));
    }
    Ok(Ok(row))
}

/// A version as callers see it: the row, whether it is the file's current one,
/// and its file's hold or quarantine when a later scan found malware in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// The version.
    pub row: VersionRow,
    /// True for the version buyers get.
    pub current: bool,
    /// Set while the content may not be downloaded (held, or quarantined).
    pub quarantine: Option<ObjectQuarantine>,
}

/// Why a stored object stopped being downloadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectQuarantine {
    /// The malware found.
    pub signature: String,
    /// When it was found.
    pub quarantined_at: chrono::DateTime<Utc>,
    /// The signature database version that found it.
    pub signature_version: Option<i64>,
    /// Held for an operator's review (true), or confirmed and quarantined.
    pub held: bool,
}

/// The object columns a [`VersionEntry`]'s quarantine is read from.
type StandingColumns = (
    ObjectStanding,
    Option<String>,
    Option<chrono::DateTime<Utc>>,
    Option<chrono::DateTime<Utc>>,
    Option<i64>,
);

/// The stored object's standing columns, in [`StandingColumns`]' order.
fn standing_columns() -> (
    stored_objects::standing,
    stored_objects::signature,
    stored_objects::held_at,
    stored_objects::quarantined_at,
    stored_objects::signature_version,
) {
    (
        stored_objects::standing,
        stored_objects::signature,
        stored_objects::held_at,
        stored_objects::quarantined_at,
        stored_objects::signature_version,
    )
}

fn entry(
    row: VersionRow,
    current: Option<i32>,
    (standing, signature, held_at, quarantined_at, signature_version): StandingColumns,
) -> VersionEntry {
    let current = current == Some(row.version);
    let since = quarantined_at.or(held_at).unwrap_or(row.created_at);
    VersionEntry {
        row,
        current,
        quarantine: (!standing.downloadable()).then(|| ObjectQuarantine {
            signature: signature.unwrap_or_default(),
            quarantined_at: since,
            signature_version,
            held: standing == ObjectStanding::Held,
        }),
    }
}

/// The versions of an item's files (or of one of them), newest first per file.
pub async fn list(
    conn: &mut AsyncPgConnection,
    item: ItemId,
    file: Option<FileId>,
) -> Result<Vec<VersionEntry>, DbError> {
    let mut query = file_versions::table
        .inner_join(item_files::table)
        .inner_join(stored_objects::table)
        .filter(item_files::item_id.eq(item))
        .into_boxed();
    if let Some(file) = file {
        query = query.filter(file_versions::file_id.eq(file));
    }
    let rows: Vec<(VersionRow, Option<i32>, StandingColumns)> = query
        .order((
            item_files::created_at.asc(),
            file_versions::file_id.asc(),
            file_versions::version.desc(),
        ))
        .select((
            VersionRow::as_select(),
            item_files::current_version,
            standing_columns(),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(row, current, standing)| entry(row, current, standing))
        .collect())
}

/// One version of one of the item's files; `version` None means the current one.
pub async fn find(
    conn: &mut AsyncPgConnection,
    item: ItemId,
    file: FileId,
    version: Option<i32>,
) -> Result<Option<VersionEntry>, DbError> {
    let file_row: Option<ItemFileRow> = item_files::table
        .find(file)
        .filter(item_files::item_id.eq(item))
        .select(ItemFileRow::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(file_row) = file_row else {
        return Ok(None);
    };
    let Some(wanted) = version.or(file_row.current_version) else {
        return Ok(None);
    };
    let row: Option<(VersionRow, StandingColumns)> = file_versions::table
        .inner_join(stored_objects::table)
        .filter(file_versions::file_id.eq(file_row.id))
        .filter(file_versions::version.eq(wanted))
        .select((VersionRow::as_select(), standing_columns()))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(v, standing)| entry(v, file_row.current_version, standing)))
}

/// Makes `version` the file's current one. None when the item has no such file
/// or the file no such version.
pub async fn set_current(
    conn: &mut AsyncPgConnection,
    item: ItemId,
    file: FileId,
    version: i32,
) -> Result<Option<ItemFileRow>, DbError> {
    let exists: i64 = file_versions::table
        .inner_join(item_files::table)
        .filter(item_files::item_id.eq(item))
        .filter(file_versions::file_id.eq(file))
        .filter(file_versions::version.eq(version))
        .count()
        .get_result(conn)
        .await?;
    if exists == 0 {
        return Ok(None);
    }
    Ok(diesel::update(item_files::table.find(file))
        .set(item_files::current_version.eq(version))
        .returning(ItemFileRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}
