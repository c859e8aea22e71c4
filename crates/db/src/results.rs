//! What the processing jobs found: scan verdicts, media facts and previews. Every
//! write is idempotent, so a job that runs twice leaves the same rows.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::UploadId;

use crate::DbError;
use crate::models::{MediaRow, PreviewRow, ScanRow};
use crate::schema::{upload_media, upload_previews, upload_scans};

/// Records a scan verdict; the first one recorded stands.
pub async fn save_scan(conn: &mut AsyncPgConnection, row: &ScanRow) -> Result<(), DbError> {
    diesel::insert_into(upload_scans::table)
        .values(row)
        .on_conflict(upload_scans::upload_id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

find_by_key!(
    /// The scan verdict, if any.
    scan,
    upload_scans,
    UploadId,
    ScanRow
);

/// Records media facts; the first probe recorded stands.
pub async fn save_media(conn: &mut AsyncPgConnection, row: &MediaRow) -> Result<(), DbError> {
    diesel::insert_into(upload_media::table)
        .values(row)
        .on_conflict(upload_media::upload_id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

find_by_key!(
    /// Media facts, if probed.
    media,
    upload_media,
    UploadId,
    MediaRow
);

/// Records previews. A preview made again replaces the row for its name (its object
/// was overwritten at the same key).
pub async fn save_previews(
    conn: &mut AsyncPgConnection,
    rows: &[PreviewRow],
) -> Result<(), DbError> {
    use diesel::upsert::excluded;
    if rows.is_empty() {
        return Ok(());
    }
    diesel::insert_into(upload_previews::table)
        .values(rows)
        .on_conflict((upload_previews::upload_id, upload_previews::name))
        .do_update()
        .set((
            upload_previews::kind.eq(excluded(upload_previews::kind)),
            upload_previews::content_type.eq(excluded(upload_previews::content_type)),
            upload_previews::object_key.eq(excluded(upload_previews::object_key)),
            upload_previews::width.eq(excluded(upload_previews::width)),
            upload_previews::height.eq(excluded(upload_previews::height)),
            upload_previews::size_bytes.eq(excluded(upload_previews::size_bytes)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// An upload's previews, by name.
pub async fn previews(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> Result<Vec<PreviewRow>, DbError> {
    Ok(upload_previews::table
        .filter(upload_previews::upload_id.eq(id))
        .order(upload_previews::name.asc())
        .select(PreviewRow::as_select())
        .load(conn)
        .await?)
}
