//! `upload-admin release` and `confirm`: an operator's word on a quarantined
//! upload, or on stored content a later scan flagged (held, by its MD5). The
//! objects move in an order no crash can turn into a lost or leaked file, and the
//! decision is recorded by `upload_db` with the operator's name:
//!
//! - release an upload: copy the file from quarantine back to temp, record
//!   (quarantined → processing, a released verdict, metadata and preview queued,
//!   the seller told), then delete the quarantined copy. A crash before the record
//!   leaves it quarantined (a temp copy the temp bucket's lifecycle clears, or the
//!   next release overwrites); after it, only the quarantined copy is left, which
//!   its own lifecycle clears.
//! - confirm an upload: remove any temp copy a broken release left, then record.
//!   The quarantined file stays where its lifecycle deletes it after its days.
//! - release held content: copy it from its held key back to its MD5 key (under
//!   the content's lock), record (downloadable, a released verdict, every owner
//!   told), then delete the held copy. A crash before the record leaves it held
//!   (the copy at the MD5 key is not downloadable while the record says held);
//!   after it, the sweeper deletes the held copy left.
//! - confirm held content: copy it to the quarantine bucket (its days start now),
//!   record (quarantined, every owner told), then delete the held copy and any
//!   copy at the MD5 key a broken release left (or the sweeper does).
//!
//! Where held bytes are is asked of the store (held key first, then MD5 key), not
//! of the record of the hold's move, which a crash can leave behind the bytes.

use upload_db::AsyncPgConnection;
use upload_db::ops::Refused;
use upload_domain::{Actor, Md5Digest, UploadId};
use upload_storage::{StorageKey, Store, StoreError};

use crate::admin::Outcome;

/// What an operator decides on: a quarantined upload, or held content by MD5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// An upload quarantined by a scan.
    Upload(UploadId),
    /// Stored content a later scan flagged.
    Content(Md5Digest),
}

impl std::str::FromStr for Decided {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // 32 hex digits are an MD5 (an upload id is written with its dashes).
        if let Ok(md5) = text.parse() {
            return Ok(Self::Content(md5));
        }
        text.parse().map(Self::Upload).map_err(|_| {
            format!(
                "{text:?} is neither an upload id (a UUID) nor a stored file's MD5 (32 hex digits)"
            )
        })
    }
}

/// Upload `id`'s row, or why it cannot be decided on.
async fn checked(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> anyhow::Result<Result<upload_db::models::UploadRow, Refused>> {
    if let Err(refused) = upload_db::ops::check_quarantined(conn, id).await? {
        return Ok(Err(refused));
    }
    let row = upload_db::uploads::find(conn, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("upload {id} vanished"))?;
    Ok(Ok(row))
}

/// Where upload `row`'s file is held in quarantine, and where it is processed.
fn keys(row: &upload_db::models::UploadRow) -> (StorageKey<'_>, StorageKey<'_>) {
    let (owner, upload) = (&row.owner_id, row.id);
    (
        StorageKey::Quarantine { owner, upload },
        StorageKey::Temp { owner, upload },
    )
}

/// Releases `what`: a quarantined upload goes on to processing; held content is
/// downloadable again. `reason` is recorded with the operator's name.
pub async fn release(
    conn: &mut AsyncPgConnection,
    store: &Store,
    what: Decided,
    by: &Actor,
    reason: &str,
) -> anyhow::Result<Outcome> {
    match what {
        Decided::Upload(id) => release_upload(conn, store, id, by, reason).await,
        Decided::Content(md5) => {
            locked(conn, md5, async |conn| {
                release_held(conn, store, md5, by, reason).await
            })
            .await
        }
    }
}

/// Confirms `what`'s finding: a quarantined upload can no longer be released, held
/// content is quarantined; each file goes when its days in quarantine end.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    store: &Store,
    what: Decided,
    by: &Actor,
) -> anyhow::Result<Outcome> {
    match what {
        Decided::Upload(id) => confirm_upload(conn, store, id, by).await,
        Decided::Content(md5) => {
            locked(conn, md5, async |conn| {
                confirm_held(conn, store, md5, by).await
            })
            .await
        }
    }
}

async fn release_upload(
    conn: &mut AsyncPgConnection,
    store: &Store,
    id: UploadId,
    by: &Actor,
    reason: &str,
) -> anyhow::Result<Outcome> {
    let row = match checked(conn, id).await? {
        Ok(row) => row,
        Err(refused) => return Ok(Outcome::Refused(refused.to_string())),
    };
    let (quarantined, temp) = keys(&row);
    match store.copy(&quarantined, &temp).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => {
            return Ok(Outcome::Refused(Refused::FileGone { id }.to_string()));
        }
        Err(e) => return Err(e.into()),
    }
    match upload_db::ops::release_quarantine(conn, id, by, reason).await? {
        Ok(done) => {
            store.delete(&quarantined).await?;
            Ok(Outcome::Done(format!("{done}\n")))
        }
        Err(refused) => {
            // Confirmed meanwhile: the copy must not stay in temp. (Released by
            // someone else meanwhile: the copy is the file they released.)
            if matches!(refused, Refused::Confirmed { .. }) {
                store.delete(&temp).await?;
            }
            Ok(Outcome::Refused(refused.to_string()))
        }
    }
}

async fn confirm_upload(
    conn: &mut AsyncPgConnection,
    store: &Store,
    id: UploadId,
    by: &Actor,
) -> anyhow::Result<Outcome> {
    let row = match checked(conn, id).await? {
        Ok(row) => row,
        Err(refused) => return Ok(Outcome::Refused(refused.to_string())),
    };
    // Only a copy outside quarantine goes now; the quarantined one expires there.
    let (_, temp) = keys(&row);
    store.delete(&temp).await?;
    Ok(
        match upload_db::ops::confirm_quarantine(conn, id, by).await? {
            Ok(done) => Outcome::Done(format!("{done}\n")),
            Err(refused) => Outcome::Refused(refused.to_string()),
        },
    )
}

/// Held content `md5`'s bytes where a decision starts: at its held key, or at its
/// MD5 key where the hold has not moved them yet. Asked of the store, not of the
/// record of the move, which a move cut short between its delete and its record
/// leaves behind the bytes.
async fn held_bytes(
    conn: &mut AsyncPgConnection,
    store: &Store,
    md5: Md5Digest,
) -> anyhow::Result<Result<StorageKey<'static>, String>> {
    if let Err(not_held) = upload_db::holds::held(md5, upload_db::holds::find(conn, md5).await?) {
        return Ok(Err(not_held.to_string()));
    }
    for key in [StorageKey::HeldContent { md5 }, StorageKey::Content { md5 }] {
        if store.object_size(&key).await?.is_some() {
            return Ok(Ok(key));
        }
    }
    Ok(Err(format!(
        "stored file {md5} is held, but its bytes are at neither {} nor {}; nothing was changed",
        StorageKey::HeldContent { md5 }.key(),
        StorageKey::Content { md5 }.key()
    )))
}

/// Runs `decide` on held content `md5` under the content's lock (no move job,
/// hold or other decision touches its keys meanwhile), taken on `conn`'s session.
async fn locked(
    conn: &mut AsyncPgConnection,
    md5: Md5Digest,
    decide: impl AsyncFnOnce(&mut AsyncPgConnection) -> anyhow::Result<Outcome>,
) -> anyhow::Result<Outcome> {
    use upload_db::versions::ContentLock;
    ContentLock::take_on(conn, md5).await?;
    let outcome = decide(conn).await;
    ContentLock::release_on(conn, md5).await?;
    outcome
}

async fn release_held(
    conn: &mut AsyncPgConnection,
    store: &Store,
    md5: Md5Digest,
    by: &Actor,
    reason: &str,
) -> anyhow::Result<Outcome> {
    let from = match held_bytes(conn, store, md5).await? {
        Ok(from) => from,
        Err(refused) => return Ok(Outcome::Refused(refused)),
    };
    let (held, content) = (StorageKey::HeldContent { md5 }, StorageKey::Content { md5 });
    if from == held {
        store.copy(&held, &content).await?;
    }
    match upload_db::holds::release(conn, md5, by, reason).await? {
        Ok(told) => {
            store.delete(&held).await?;
            upload_db::holds::record_held_copy_gone(conn, md5).await?;
            Ok(Outcome::Done(format!(
                "stored file {md5}: held -> downloadable (released; overrides its finding); {told} version owner(s) told\n"
            )))
        }
        Err(refused) => Ok(Outcome::Refused(refused.to_string())),
    }
}

async fn confirm_held(
    conn: &mut AsyncPgConnection,
    store: &Store,
    md5: Md5Digest,
    by: &Actor,
) -> anyhow::Result<Outcome> {
    let from = match held_bytes(conn, store, md5).await? {
        Ok(from) => from,
        Err(refused) => return Ok(Outcome::Refused(refused)),
    };
    let quarantined = StorageKey::QuarantinedContent { md5 };
    store.copy(&from, &quarantined).await?;
    match upload_db::holds::confirm(conn, md5, by, quarantined.key()).await? {
        Ok(told) => {
            // Both keys: a release cut short before its record may have left a
            // copy at the downloads' key, where nothing expires.
            for key in [StorageKey::HeldContent { md5 }, StorageKey::Content { md5 }] {
                store.delete(&key).await?;
            }
            upload_db::holds::record_held_copy_gone(conn, md5).await?;
            Ok(Outcome::Done(format!(
                "stored file {md5}: held -> quarantined (deleted when its {} days there end); {told} version owner(s) told\n",
                upload_domain::QUARANTINE_DAYS
            )))
        }
        // Not held any more (nothing else decides under the lock, so never
        // expected): the copy made here expires with the quarantine's rule.
        Err(refused) => Ok(Outcome::Refused(refused.to_string())),
    }
}
