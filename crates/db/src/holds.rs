//! Stored content after its first scan: what a re-scan's verdict records (the
//! object stays, is held, stays held, or is found clean while held), the object's
//! moves to and from its held key, and an operator's word on a held object
//! (released, or confirmed). Each change writes an `object_events` row, and its
//! sellers are told once per change (the row is the notification's occasion).
//! The objects are moved by the callers, in an order no crash turns into a lost
//! file; what is recorded here says where they are.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, ItemId, Md5Digest, NotificationKind, ObjectChange, ObjectStanding, QUARANTINE_DAYS,
    ScanVerdict, ScannerVersion, SellerId, StoredRescan, UploadId,
};

use crate::DbError;
use crate::history::record_object;
use crate::models::NewNotification;
use crate::rescan::{ObjectScanRow, advance};
use crate::schema::{file_versions, item_files, items, stored_objects};

/// Every version stored with content `md5`: (upload, version, file name, item,
/// owner).
async fn versions_of(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
) -> Result<Vec<(UploadId, i32, String, ItemId, SellerId)>, DbError> {
    Ok(file_versions::table
        .inner_join(item_files::table.inner_join(items::table))
        .filter(file_versions::md5_hex.eq(md5))
        .select((
            file_versions::upload_id,
            file_versions::version,
            file_versions::file_name,
            items::id,
            items::owner_id,
        ))
        .load(conn)
        .await?)
}

/// Whether owners' notices also go out by webhook.
#[derive(Debug, Clone, Copy)]
enum Webhooks {
    /// As the worker's configuration says.
    Deliver(bool),
    /// The way the owners heard of the file before: an operator's decision is told
    /// by webhook where any version's upload was.
    AsBefore,
}

/// Tells the owner of every version of `md5` about `change` (the object event
/// `occasion`): `sentence` makes each one's message from the file's name, version
/// and item. Returns how many were told.
async fn tell_owners(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
    kind: NotificationKind,
    occasion: i64,
    details: serde_json::Value,
    sentence: impl Fn(&str, i32, ItemId) -> String,
    webhooks: Webhooks,
) -> Result<usize, DbError> {
    let affected = versions_of(conn, md5).await?;
    let deliver_webhooks = match webhooks {
        Webhooks::Deliver(deliver) => deliver,
        Webhooks::AsBefore => {
            let mut told = false;
            for (upload, ..) in &affected {
                if crate::notifications::upload_told_by_webhook(conn, *upload).await? {
                    told = true;
                    break;
                }
            }
            told
        }
    };
    for (upload, number, file_name, item, owner) in &affected {
        let mut details = details.clone();
        if let Some(fields) = details.as_object_mut() {
            fields.insert("item_id".into(), item.to_string().into());
            fields.insert("version".into(), (*number).into());
            fields.insert("file_name".into(), file_name.clone().into());
            fields.insert("md5".into(), md5.to_hex().into());
        }
        let notification = NewNotification::about_stored_version(
            owner,
            *upload,
            kind,
            sentence(file_name, *number, *item),
            details,
        )
        .on_occasion(occasion);
        crate::notifications::record(conn, &notification, deliver_webhooks).await?;
    }
    Ok(affected.len())
}

/// What a re-scan found, to record.
#[derive(Debug, Clone)]
pub struct Rescanned<'a> {
    /// The run's signature version.
    pub run_version: i64,
    /// The scanner and signatures it was made with.
    pub scanner: &'a ScannerVersion,
    /// The name clamd gave, when it gave one.
    pub finding: Option<String>,
    /// Who re-scanned.
    pub by: &'a Actor,
    /// Where the object is kept if it is held (`StorageKey::HeldContent`).
    pub held_key: String,
}

/// Records a re-scan's `outcome` for `object` (a decision of
/// [`upload_domain::rescan_stored`]), and counts it done in the run. A hold
/// records the object as held at once (its versions stop being downloadable in
/// the same transaction) and tells every owner (`file.held`); the object is
/// moved to its held key afterwards ([`crate::rescan::Target::MoveToHold`]).
/// Recording twice changes nothing. Returns the owners told.
pub async fn record_rescan(
    conn: &mut AsyncPgConnection,
    object: &ObjectScanRow,
    scanned: Rescanned<'_>,
    outcome: StoredRescan,
    deliver_webhooks: bool,
) -> Result<usize, DbError> {
    let (md5, size) = (object.md5, object.size_bytes);
    let held_key = scanned.held_key.clone();
    let standing = object.standing;
    let engine = scanned.scanner.engine.clone();
    let version = scanned.scanner.signatures;
    let finding = scanned.finding.clone();
    let (run_version, by) = (scanned.run_version, scanned.by.clone());
    conn.transaction::<_, DbError, _>(async move |conn| {
        // Guarded on the standing read: a decision made meanwhile wins.
        let row = stored_objects::table
            .find(md5)
            .filter(stored_objects::standing.eq(standing));
        let provenance = (
            stored_objects::engine_version.eq(engine),
            stored_objects::signature_version.eq(version),
            stored_objects::scanned_at.eq(diesel::dsl::now),
        );
        let (told, infected) = match outcome {
            StoredRescan::Stays { verdict } => {
                diesel::update(row)
                    .set((
                        provenance,
                        stored_objects::verdict.eq(verdict),
                        stored_objects::signature.eq(finding),
                    ))
                    .execute(conn)
                    .await?;
                (0, false)
            }
            StoredRescan::StillHeld {
                signature: Some(signature),
            } => {
                // Found again: whatever an earlier scan found clean no longer counts.
                diesel::update(row)
                    .set((
                        provenance,
                        stored_objects::signature.eq(signature),
                        stored_objects::clean_under_version.eq(None::<i64>),
                    ))
                    .execute(conn)
                    .await?;
                (0, true)
            }
            StoredRescan::StillHeld { signature: None } => {
                diesel::update(row).set(provenance).execute(conn).await?;
                (0, false)
            }
            StoredRescan::CleanWhileHeld => {
                let found_clean = diesel::update(row.filter(
                    stored_objects::clean_under_version
                        .is_distinct_from(Some(version)),
                ))
                .set((provenance, stored_objects::clean_under_version.eq(version)))
                .execute(conn)
                .await?;
                if found_clean == 1 {
                    let detail = format!("found clean by signatures {version}");
                    record_object(conn, md5, ObjectChange::CleanWhileHeld, &by, Some(&detail))
                        .await?;
                }
                (0, false)
            }
            StoredRescan::Hold { signature } => {
                let held = diesel::update(row)
                    .set((
                        provenance,
                        stored_objects::verdict.eq(ScanVerdict::Infected),
                        stored_objects::signature.eq(&signature),
                        stored_objects::standing.eq(ObjectStanding::Held),
                        stored_objects::held_key.eq(held_key),
                        stored_objects::held_at.eq(diesel::dsl::now),
                        stored_objects::held_moved_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                        stored_objects::clean_under_version.eq(None::<i64>),
                    ))
                    .execute(conn)
                    .await?;
                if held == 0 {
                    return Ok(0);
                }
                let occasion =
                    record_object(conn, md5, ObjectChange::Held, &by, Some(&signature)).await?;
                let told = tell_owners(
                    conn,
                    md5,
                    NotificationKind::FileHeld,
                    occasion,
                    serde_json::json!({ "signature": signature, "signature_version": version }),
                    |file_name, number, item| {
                        format!(
                            "{file_name} (version {number} of item {item}) was flagged by a malware scan with newer signatures ({signature}); it cannot be downloaded while our staff review it, and nothing has been deleted"
                        )
                    },
                    Webhooks::Deliver(deliver_webhooks),
                )
                .await?;
                (told, true)
            }
        };
        advance(conn, run_version, size, infected).await?;
        Ok(told)
    })
    .await
}

/// The held object is at its held key and gone from its MD5 key.
pub async fn record_held_moved(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
) -> Result<(), DbError> {
    diesel::update(
        stored_objects::table
            .find(md5)
            .filter(stored_objects::standing.eq(ObjectStanding::Held)),
    )
    .set(stored_objects::held_moved_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    Ok(())
}

/// The held object at `md5`, locked for a decision, or why there is none.
async fn lock_held(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
) -> Result<Result<ObjectScanRow, NotHeld>, DbError> {
    let object: Option<ObjectScanRow> = stored_objects::table
        .find(md5)
        .for_update()
        .select(ObjectScanRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(held(md5, object))
}

/// `object` (the row at `md5`) if it is held, or why it is not.
pub fn held(md5: Md5Digest, object: Option<ObjectScanRow>) -> Result<ObjectScanRow, NotHeld> {
    match object {
        None => Err(NotHeld::Unknown(md5)),
        Some(object) if object.standing != ObjectStanding::Held => Err(NotHeld::Standing {
            md5,
            standing: object.standing,
        }),
        Some(object) => Ok(object),
    }
}

/// An object `md5` where it stands now, without a lock.
pub async fn find(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
) -> Result<Option<ObjectScanRow>, DbError> {
    Ok(stored_objects::table
        .find(md5)
        .select(ObjectScanRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Why an operator's decision on an object was refused; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotHeld {
    /// No object of that MD5 is stored.
    #[error("no stored file has MD5 {0}")]
    Unknown(Md5Digest),
    /// The object is not held (downloadable, or quarantined already).
    #[error(
        "the stored file {md5} is {standing}, not held; only a held file is released or confirmed"
    )]
    Standing {
        /// The object.
        md5: Md5Digest,
        /// Where it stands.
        standing: ObjectStanding,
    },
}

/// Records an operator's release of held object `md5`, whose bytes the caller has
/// copied back to its MD5 key: downloadable again, its verdict a release naming the
/// operator, the reason and the finding overridden (a later scan holds it again
/// only for another finding), and every owner told (`file.released`). The held copy
/// is the caller's to delete next ([`record_held_copy_gone`]).
pub async fn release(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
    by: &Actor,
    reason: &str,
) -> Result<Result<usize, NotHeld>, DbError> {
    let (by, reason) = (by.clone(), reason.to_owned());
    conn.transaction::<_, DbError, _>(async move |conn| {
        let object = match lock_held(conn, md5).await? {
            Ok(object) => object,
            Err(not_held) => return Ok(Err(not_held)),
        };
        let overridden = object.signature.clone().unwrap_or_default();
        diesel::update(stored_objects::table.find(md5))
            .set((
                stored_objects::standing.eq(ObjectStanding::Stored),
                stored_objects::verdict.eq(ScanVerdict::Released),
                stored_objects::released_by.eq(by.to_string()),
                stored_objects::release_reason.eq(&reason),
                stored_objects::released_signature.eq(&overridden),
                stored_objects::released_at.eq(diesel::dsl::now),
                stored_objects::held_at.eq(None::<chrono::DateTime<chrono::Utc>>),
            ))
            .execute(conn)
            .await?;
        let detail = format!("overrode {overridden}: {reason}");
        let occasion = record_object(conn, md5, ObjectChange::Released, &by, Some(&detail)).await?;
        let told = tell_owners(
            conn,
            md5,
            NotificationKind::FileReleased,
            occasion,
            serde_json::json!({ "overridden_signature": overridden, "reason": reason }),
            |file_name, number, item| {
                format!(
                    "{file_name} (version {number} of item {item}) was reviewed by our staff and found safe; it can be downloaded again"
                )
            },
            Webhooks::AsBefore,
        )
        .await?;
        Ok(Ok(told))
    })
    .await
}

/// Records an operator's confirmation of held object `md5`'s finding, whose bytes
/// the caller has copied to the quarantine bucket (`quarantine_key`): quarantined,
/// never downloadable again, deleted when its days there end; every owner told
/// (`file.quarantined`). The held copy is the caller's to delete next.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
    by: &Actor,
    quarantine_key: String,
) -> Result<Result<usize, NotHeld>, DbError> {
    let by = by.clone();
    conn.transaction::<_, DbError, _>(async move |conn| {
        let object = match lock_held(conn, md5).await? {
            Ok(object) => object,
            Err(not_held) => return Ok(Err(not_held)),
        };
        let signature = object.signature.clone().unwrap_or_default();
        diesel::update(stored_objects::table.find(md5))
            .set((
                stored_objects::standing.eq(ObjectStanding::Quarantined),
                stored_objects::quarantine_key.eq(quarantine_key),
                stored_objects::quarantined_at.eq(diesel::dsl::now),
                stored_objects::quarantine_moved_at.eq(diesel::dsl::now),
                stored_objects::confirmed_by.eq(by.to_string()),
            ))
            .execute(conn)
            .await?;
        let occasion =
            record_object(conn, md5, ObjectChange::Confirmed, &by, Some(&signature)).await?;
        let told = tell_owners(
            conn,
            md5,
            NotificationKind::FileQuarantined,
            occasion,
            serde_json::json!({ "signature": signature }),
            |file_name, number, item| {
                format!(
                    "{file_name} (version {number} of item {item}): our staff confirmed the malware finding ({signature}); it will not be downloadable again and is deleted in {QUARANTINE_DAYS} days"
                )
            },
            Webhooks::AsBefore,
        )
        .await?;
        Ok(Ok(told))
    })
    .await
}

/// Objects decided on (released or confirmed) whose held copy is still in the
/// regular bucket: a decision that died before deleting it
/// ([`ObjectScanRow::has_held_leftover`]). At most `limit`.
pub async fn decided_with_held_copy(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> Result<Vec<ObjectScanRow>, DbError> {
    Ok(stored_objects::table
        .filter(stored_objects::standing.ne(ObjectStanding::Held))
        .filter(stored_objects::held_key.is_not_null())
        .limit(limit)
        .select(ObjectScanRow::as_select())
        .load(conn)
        .await?)
}

/// The held copy of a decided object is gone.
pub async fn record_held_copy_gone(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
) -> Result<(), DbError> {
    diesel::update(
        stored_objects::table
            .find(md5)
            .filter(stored_objects::standing.ne(ObjectStanding::Held)),
    )
    .set((
        stored_objects::held_key.eq(None::<String>),
        stored_objects::held_moved_at.eq(None::<chrono::DateTime<chrono::Utc>>),
    ))
    .execute(conn)
    .await?;
    Ok(())
}
