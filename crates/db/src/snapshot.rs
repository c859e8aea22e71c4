//! The rows of one upload's snapshot (the upload, its stages, and what the
//! pipeline found: facts, verdict, media, previews), read in one query: the
//! one-to-one rows by left joins, the stages and previews aggregated by PostgreSQL.
//! Every RPC that returns an upload reads it here.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Jsonb;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::{UploadId, UploadState};

use crate::DbError;
use crate::history::{Change, JsonChange};
use crate::models::{MediaRow, MetadataRow, PreviewRow, ProgressRow, ScanRow, UploadRow};
use crate::schema::{upload_media, upload_metadata, upload_scans, uploads};

/// Everything the API shows of one upload.
#[derive(Debug, Clone)]
pub struct UploadSnapshotRows {
    /// The upload.
    pub upload: UploadRow,
    /// Size, hashes, sniffed type (after the scan's read).
    pub metadata: Option<MetadataRow>,
    /// The scan verdict.
    pub scan: Option<ScanRow>,
    /// Media facts.
    pub media: Option<MediaRow>,
    /// Every stage's progress.
    pub progress: Vec<ProgressRow>,
    /// Previews, by name.
    pub previews: Vec<PreviewRow>,
    /// Its history, oldest first, when it was asked for (empty otherwise).
    pub history: Vec<Change<UploadState>>,
}

const PROGRESS: &str = "(SELECT coalesce(jsonb_agg(p), '[]'::jsonb) \
     FROM upload_progress p WHERE p.upload_id = uploads.id)";
const PREVIEWS: &str = "(SELECT coalesce(jsonb_agg(v ORDER BY v.name), '[]'::jsonb) \
     FROM upload_previews v WHERE v.upload_id = uploads.id)";

const HISTORY: &str = "(SELECT coalesce(jsonb_agg(e ORDER BY e.id), '[]'::jsonb) \
     FROM upload_events e WHERE e.upload_id = uploads.id)";
const NO_HISTORY: &str = "'[]'::jsonb";

/// The snapshot rows of upload `id`, whoever owns it, with its history when
/// `with_history`; one query either way.
pub async fn load(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    with_history: bool,
) -> Result<Option<UploadSnapshotRows>, DbError> {
    type Found = (
        UploadRow,
        Option<MetadataRow>,
        Option<ScanRow>,
        Option<MediaRow>,
        serde_json::Value,
        serde_json::Value,
        serde_json::Value,
    );
    let found: Option<Found> = uploads::table
        .left_join(upload_metadata::table)
        .left_join(upload_scans::table)
        .left_join(upload_media::table)
        .filter(uploads::id.eq(id))
        .select((
            UploadRow::as_select(),
            Option::<MetadataRow>::as_select(),
            Option::<ScanRow>::as_select(),
            Option::<MediaRow>::as_select(),
            sql::<Jsonb>(PROGRESS),
            sql::<Jsonb>(PREVIEWS),
            sql::<Jsonb>(if with_history { HISTORY } else { NO_HISTORY }),
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((upload, metadata, scan, media, progress, previews, history)) = found else {
        return Ok(None);
    };
    let corrupt =
        |what: &str, e: serde_json::Error| DbError::Corrupt(format!("{what} of upload {id}: {e}"));
    Ok(Some(UploadSnapshotRows {
        upload,
        metadata,
        scan,
        media,
        progress: serde_json::from_value(progress).map_err(|e| corrupt("progress", e))?,
        previews: serde_json::from_value(previews).map_err(|e| corrupt("previews", e))?,
        history: serde_json::from_value::<Vec<JsonChange>>(history)
            .map_err(|e| corrupt("history", e))?
            .into_iter()
            .map(JsonChange::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| DbError::Corrupt(format!("history of upload {id}: {e}")))?,
    }))
}
