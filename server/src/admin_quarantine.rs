//! `upload-admin release` and `confirm`: an operator's word on a quarantined
//! upload. The objects move in an order no crash can turn into a lost or leaked
//! file, and the decision is recorded by `upload_db::ops` with the operator's name:
//!
//! - release: copy the file from quarantine back to temp, record (quarantined →
//!   processing, metadata and preview queued, the seller told), then delete the
//!   quarantined copy. A crash before the record leaves it quarantined (a temp copy
//!   the temp bucket's lifecycle clears, or the next release overwrites); after it,
//!   only the quarantined copy is left, which its own lifecycle clears.
//! - confirm: delete the file (and any temp copy a broken release left), then
//!   record. A crash before the record leaves it confirmable again.

use upload_db::AsyncPgConnection;
use upload_db::ops::Refused;
use upload_domain::{Actor, UploadId};
use upload_storage::{StorageKey, Store, StoreError};

use crate::admin::Outcome;

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

/// Releases quarantined upload `id`: its file goes on to processing.
pub async fn release(
    conn: &mut AsyncPgConnection,
    store: &Store,
    id: UploadId,
    by: &Actor,
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
    match upload_db::ops::release_quarantine(conn, id, by).await? {
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

/// Confirms quarantined upload `id`'s verdict: its file is deleted now.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    store: &Store,
    id: UploadId,
    by: &Actor,
) -> anyhow::Result<Outcome> {
    let row = match checked(conn, id).await? {
        Ok(row) => row,
        Err(refused) => return Ok(Outcome::Refused(refused.to_string())),
    };
    let (quarantined, temp) = keys(&row);
    for key in [quarantined, temp] {
        store.delete(&key).await?;
    }
    Ok(
        match upload_db::ops::confirm_quarantine(conn, id, by).await? {
            Ok(done) => Outcome::Done(format!("{done}\n")),
            Err(refused) => Outcome::Refused(refused.to_string()),
        },
    )
}
