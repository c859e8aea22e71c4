//! Reads and guarded writes of uploads and their signed parts.

use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Int4, Int8, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, ChangeCause, Failure, Md5Digest, PartPin, SellerId, Sha256Digest, TransitionError,
    UploadEvent, UploadId, UploadState,
};

use crate::DbError;
use crate::models::{MetadataRow, NewUpload, PartRow, UploadRow};
use crate::schema::{upload_metadata, upload_parts, uploads};

/// Inserts a new upload and the first line of its history, in one transaction.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewUpload<'_>,
    by: &Actor,
) -> Result<(), DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        diesel::insert_into(uploads::table)
            .values(new)
            .execute(conn)
            .await?;
        crate::history::record_upload(
            conn,
            new.id,
            None,
            UploadState::Created,
            ChangeCause::Created,
            by,
            None,
        )
        .await
    })
    .await
}

/// The upload `owner` created with idempotency key `key`, if any.
pub async fn find_by_idempotency_key(
    conn: &mut AsyncPgConnection,
    owner: &SellerId,
    key: &str,
) -> Result<Option<UploadRow>, DbError> {
    Ok(uploads::table
        .filter(uploads::owner_id.eq(owner))
        .filter(uploads::idempotency_key.eq(key))
        .select(UploadRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// How many of `owner`'s uploads are unfinished (created, parts being sent).
pub async fn count_unfinished(
    conn: &mut AsyncPgConnection,
    owner: &SellerId,
) -> Result<u64, DbError> {
    let n: i64 = uploads::table
        .filter(uploads::owner_id.eq(owner))
        .filter(uploads::state.eq_any([UploadState::Created, UploadState::Uploading]))
        .count()
        .get_result(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

find_by_key!(
    /// The upload with this id, whoever owns it.
    find,
    uploads,
    UploadId,
    UploadRow
);

/// The outcome of a guarded transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// This caller moved the upload to the new state.
    Applied(UploadState),
    /// The upload was no longer in the expected state; another actor moved it first.
    Lost,
}

/// Moves upload `id` from `expected` by `event`, only if it is still in `expected`.
/// The state machine decides the target; the `WHERE state = expected` guard makes
/// sure two actors racing on the same upload cannot both win. A failure is recorded
/// with the state it explains, and the change in the upload's history (who, why),
/// in one transaction.
pub async fn transition(
    conn: &mut AsyncPgConnection,
    id: UploadId,
    expected: UploadState,
    event: UploadEvent,
    failure: Option<&Failure>,
    by: &Actor,
) -> Result<Result<Transition, TransitionError>, DbError> {
    let next = match expected.apply(event) {
        Ok(next) => next,
        Err(e) => return Ok(Err(e)),
    };
    let detail = failure.map(crate::history::failure_detail);
    conn.transaction::<_, DbError, _>(async move |conn| {
        let now = chrono::Utc::now();
        let completed_at = (event == UploadEvent::Completed).then_some(now);
        let updated = diesel::update(
            uploads::table
                .filter(uploads::id.eq(id))
                .filter(uploads::state.eq(expected)),
        )
        .set((
            uploads::state.eq(next),
            uploads::updated_at.eq(now),
            uploads::failure_code.eq(failure.map(|f| f.code)),
            uploads::failure_message.eq(failure.map(|f| f.message.as_str())),
            completed_at.map(|at| uploads::completed_at.eq(at)),
        ))
        .execute(conn)
        .await?;
        if updated != 1 {
            return Ok(Ok(Transition::Lost));
        }
        crate::history::record_upload(
            conn,
            id,
            Some(expected),
            next,
            event.into(),
            by,
            detail.as_deref(),
        )
        .await?;
        Ok(Ok(Transition::Applied(next)))
    })
    .await
}

/// One part to record as signed.
#[derive(Debug, Clone)]
pub struct SignedPartRecord {
    /// The upload.
    pub upload_id: UploadId,
    /// The part number.
    pub part_number: i32,
    /// The digest the signature pins.
    pub pin: PartPin,
    /// The length the signature pins.
    pub size_bytes: i64,
    /// Who had it signed, by name (the first part's signer enters the upload's
    /// history).
    pub signed_by: std::sync::Arc<str>,
}

/// Records many signed parts (of any uploads) in one statement, but only for uploads
/// that still accept parts; moves those uploads from created to uploading. Returns the
/// (upload, part) pairs that were recorded; a pair missing from the answer belongs to
/// an upload that stopped accepting parts meanwhile.
pub async fn record_signed_parts(
    conn: &mut AsyncPgConnection,
    parts: &[SignedPartRecord],
) -> Result<Vec<(UploadId, i32)>, DbError> {
    let query = RecordSignedParts {
        actors: parts.iter().map(|p| p.signed_by.to_string()).collect(),
        ids: parts.iter().map(|p| p.upload_id).collect(),
        numbers: parts.iter().map(|p| p.part_number).collect(),
        md5s: parts.iter().map(|p| p.pin.md5()).collect(),
        sha256s: parts.iter().map(|p| p.pin.sha256()).collect(),
        sizes: parts.iter().map(|p| p.size_bytes).collect(),
    };
    Ok(query.load(conn).await?)
}

/// The statement behind [`record_signed_parts`], as a query type of its own. A
/// `sql_query` is never cached: every call would parse and plan it again, in two
/// round trips. With a static query id diesel prepares it once per connection, and
/// every later call is one round trip (Bind and Execute).
///
/// One round trip in all: the CTE moves fresh uploads to uploading (firing their
/// NOTIFY once) and writes that change in their history; the insert keeps only
/// parts of uploads that still accept them. The states and the cause are bound as
/// parameters, named by the domain.
struct RecordSignedParts {
    actors: Vec<String>,
    ids: Vec<UploadId>,
    numbers: Vec<i32>,
    md5s: Vec<Option<Md5Digest>>,
    sha256s: Vec<Option<Sha256Digest>>,
    sizes: Vec<i64>,
}

impl diesel::query_builder::QueryId for RecordSignedParts {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for RecordSignedParts {
    type SqlType = (SqlUuid, Int4);
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for RecordSignedParts {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("WITH incoming AS (SELECT * FROM unnest(");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Int4>, _>(&self.numbers)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Bytea>>, _>(&self.md5s)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Bytea>>, _>(&self.sha256s)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Int8>, _>(&self.sizes)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.actors)?;
        out.push_sql(
            ") AS t(upload_id, part_number, content_md5, checksum_sha256, size_bytes, actor)
             ), started AS (
                 UPDATE uploads SET state = ",
        );
        out.push_bind_param::<Text, _>(&UploadState::Uploading)?;
        out.push_sql(
            ", updated_at = now()
                 WHERE id IN (SELECT DISTINCT upload_id FROM incoming) AND state = ",
        );
        out.push_bind_param::<Text, _>(&UploadState::Created)?;
        out.push_sql(
            "
                 RETURNING id
             ), noted AS (
                 INSERT INTO upload_events (upload_id, from_state, to_state, cause, actor)
                 SELECT DISTINCT ON (s.id) s.id, ",
        );
        out.push_bind_param::<Text, _>(&UploadState::Created)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&UploadState::Uploading)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&ChangeCause::PartSigned)?;
        out.push_sql(
            ", i.actor FROM started s JOIN incoming i ON i.upload_id = s.id
             )
             INSERT INTO upload_parts (upload_id, part_number, content_md5, checksum_sha256, size_bytes)
             SELECT i.upload_id, i.part_number, i.content_md5, i.checksum_sha256, i.size_bytes
             FROM incoming i JOIN uploads u ON u.id = i.upload_id
             WHERE u.state = ANY(",
        );
        out.push_bind_param::<Array<Text>, _>(ACCEPTING_PARTS)?;
        out.push_sql(
            ")
             ON CONFLICT (upload_id, part_number) DO UPDATE
                 SET content_md5 = excluded.content_md5,
                     checksum_sha256 = excluded.checksum_sha256,
                     size_bytes = excluded.size_bytes,
                     signed_at = now()
             RETURNING upload_id, part_number",
        );
        Ok(())
    }
}

/// The states in which parts are still signed and recorded.
static ACCEPTING_PARTS: &[UploadState] = &[UploadState::Created, UploadState::Uploading];

/// The parts signed for an upload, by part number.
pub async fn signed_parts(
    conn: &mut AsyncPgConnection,
    id: UploadId,
) -> Result<Vec<PartRow>, DbError> {
    Ok(upload_parts::table
        .filter(upload_parts::upload_id.eq(id))
        .order(upload_parts::part_number.asc())
        .select(PartRow::as_select())
        .load(conn)
        .await?)
}

/// Stores the facts read from a file; a second write for the same upload keeps the first.
pub async fn save_metadata(conn: &mut AsyncPgConnection, row: &MetadataRow) -> Result<(), DbError> {
    diesel::insert_into(upload_metadata::table)
        .values(row)
        .on_conflict(upload_metadata::upload_id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

find_by_key!(
    /// The facts read from a file, once computed.
    metadata,
    upload_metadata,
    UploadId,
    MetadataRow
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_states_that_accept_parts_record_them() {
        for state in UploadState::ALL {
            assert_eq!(
                ACCEPTING_PARTS.contains(state),
                state.accepts_parts(),
                "{state}"
            );
        }
    }
}
