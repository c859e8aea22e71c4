//! Re-scans when signatures change: the run for a signature version (its progress
//! row in `rescan_runs`), what is left to re-scan, and what a re-scan of a ready
//! upload records (a stored object's verdict is `holds`'). The objects' own
//! recorded versions are the run's bookmark, so a run that dies resumes where it
//! stopped.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use upload_domain::{
    Actor, Failure, FailureCode, Md5Digest, NotificationKind, ObjectStanding, QUARANTINE_DAYS,
    RescanState, ScanVerdict, ScannerVersion, Stage, StageStatus, UploadEvent, UploadState,
};

use crate::DbError;
use crate::jobs::{self, LIVE_JOB_STATUSES, Queue, RescanJob};
use crate::models::{NewNotification, UploadRow};
use crate::schema::{rescan_runs, stored_objects, upload_scans, uploads};
use crate::uploads::Transition;

/// A stored object's latest verdict, standing and release.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = stored_objects)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ObjectScanRow {
    #[diesel(column_name = md5_hex)]
    pub md5: Md5Digest,
    pub size_bytes: i64,
    pub verdict: ScanVerdict,
    pub signature: Option<String>,
    pub engine_version: Option<String>,
    pub signature_version: Option<i64>,
    pub standing: ObjectStanding,
    pub held_key: Option<String>,
    pub held_moved_at: Option<DateTime<Utc>>,
    pub quarantine_key: Option<String>,
    pub quarantined_at: Option<DateTime<Utc>>,
    pub quarantine_moved_at: Option<DateTime<Utc>>,
    pub released_signature: Option<String>,
}

impl ObjectScanRow {
    /// Where the object's bytes are now: at its MD5 key, or at its held key once
    /// moved there.
    pub fn is_at_held_key(&self) -> bool {
        self.standing == ObjectStanding::Held && self.held_moved_at.is_some()
    }

    /// Decided on (released or confirmed) with its held copy not yet deleted.
    pub fn has_held_leftover(&self) -> bool {
        self.standing != ObjectStanding::Held && self.held_key.is_some()
    }
}

/// One re-scan run: its progress, as ops read it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = rescan_runs)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct RunRow {
    pub signature_version: i64,
    pub engine_version: String,
    pub state: RescanState,
    pub objects_total: i32,
    pub objects_done: i32,
    pub bytes_total: i64,
    pub bytes_done: i64,
    pub infected_found: i32,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl RunRow {
    /// True while objects remain to re-scan.
    pub fn is_running(&self) -> bool {
        self.state == RescanState::Running
    }
}

/// The next thing a run must do.
#[derive(Debug, Clone)]
pub enum Target {
    /// A stored object recorded held but still at its MD5 key.
    MoveToHold(ObjectScanRow),
    /// A stored object quarantined before holds existed, still in the regular
    /// bucket.
    MoveToQuarantine(ObjectScanRow),
    /// A stored or held object whose verdict is older than the run's signatures.
    Stored(ObjectScanRow),
    /// A ready upload whose verdict is older than the run's signatures.
    Ready(UploadRow),
}

find_by_key!(
    /// One run.
    run,
    rescan_runs,
    i64,
    RunRow
);

/// Stored and held objects whose verdict predates `version`.
fn stale_objects(version: i64) -> stored_objects::BoxedQuery<'static, diesel::pg::Pg> {
    stored_objects::table
        .filter(stored_objects::standing.ne(ObjectStanding::Quarantined))
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "coalesce(stored_objects.signature_version, 0) < ",
            )
            .bind::<BigInt, _>(version),
        )
        .into_boxed()
}

/// Ready uploads whose verdict predates `version` (or has no recorded version).
fn stale_ready(
    version: i64,
) -> diesel::dsl::IntoBoxed<
    'static,
    diesel::dsl::InnerJoin<uploads::table, upload_scans::table>,
    diesel::pg::Pg,
> {
    uploads::table
        .inner_join(upload_scans::table)
        .filter(uploads::state.eq(UploadState::Ready))
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "coalesce(upload_scans.signature_version, 0) < ",
            )
            .bind::<BigInt, _>(version),
        )
        .into_boxed()
}

/// Starts a run for `scanner`'s signatures when anything stored or ready was
/// scanned with older ones, and makes sure a running run has a live job (one that
/// gave up, or whose worker died, gets a new attempt). Older runs still going are
/// finished: the new run covers what they had left. Returns the run started, if
/// one was.
pub async fn start_if_newer(
    conn: &mut AsyncPgConnection,
    scanner: &ScannerVersion,
) -> Result<Option<RunRow>, DbError> {
    let version = scanner.signatures;
    let engine = scanner.engine.clone();
    conn.transaction::<_, DbError, _>(async move |conn| {
        let newest: Option<RunRow> = rescan_runs::table
            .filter(rescan_runs::signature_version.ge(version))
            .order(rescan_runs::signature_version.desc())
            .select(RunRow::as_select())
            .first(conn)
            .await
            .optional()?;
        if let Some(run) = newest {
            if run.is_running() {
                ensure_job(conn, run.signature_version).await?;
            }
            return Ok(None);
        }
        let (objects, object_bytes): (i64, Option<i64>) = stale_objects(version)
            .select((
                diesel::dsl::count_star(),
                diesel::dsl::sql::<diesel::sql_types::Nullable<BigInt>>(
                    "sum(stored_objects.size_bytes)::bigint",
                ),
            ))
            .first(conn)
            .await?;
        let (ready, ready_bytes): (i64, Option<i64>) = stale_ready(version)
            .select((
                diesel::dsl::count_star(),
                diesel::dsl::sql::<diesel::sql_types::Nullable<BigInt>>(
                    "sum(uploads.declared_size)::bigint",
                ),
            ))
            .first(conn)
            .await?;
        if objects + ready == 0 {
            return Ok(None);
        }
        diesel::update(rescan_runs::table.filter(rescan_runs::state.eq(RescanState::Running)))
            .set((
                rescan_runs::state.eq(RescanState::Finished),
                rescan_runs::finished_at.eq(diesel::dsl::now),
                rescan_runs::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        let run: RunRow = diesel::insert_into(rescan_runs::table)
            .values((
                rescan_runs::signature_version.eq(version),
                rescan_runs::engine_version.eq(engine),
                rescan_runs::objects_total.eq(i32::try_from(objects + ready).unwrap_or(i32::MAX)),
                rescan_runs::bytes_total.eq(object_bytes.unwrap_or(0) + ready_bytes.unwrap_or(0)),
            ))
            .returning(RunRow::as_returning())
            .get_result(conn)
            .await?;
        jobs::enqueue(
            conn,
            Queue::Rescan,
            &RescanJob {
                signature_version: version,
                attempt: 1,
            },
            None,
        )
        .await?;
        Ok(Some(run))
    })
    .await
}

/// Enqueues the next attempt of run `version`'s job unless one is pending,
/// queued or running.
async fn ensure_job(conn: &mut AsyncPgConnection, version: i64) -> Result<(), DbError> {
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = BigInt)]
        live: i64,
        #[diesel(sql_type = BigInt)]
        all: i64,
    }
    let counts: Counts = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE status = ANY($3)) AS live, count(*) AS all
           FROM apalis.jobs WHERE job_type = $1 AND idempotency_key LIKE $2",
    )
    .bind::<Text, _>(Queue::Rescan.name())
    .bind::<Text, _>(format!("{version}#%"))
    .bind::<diesel::sql_types::Array<Text>, _>(LIVE_JOB_STATUSES.to_vec())
    .get_result(conn)
    .await?;
    if counts.live == 0 {
        let attempt = u32::try_from(counts.all + 1).unwrap_or(u32::MAX);
        tracing::warn!(
            version,
            attempt,
            "re-scan run without a live job; enqueued again"
        );
        jobs::enqueue(
            conn,
            Queue::Rescan,
            &RescanJob {
                signature_version: version,
                attempt,
            },
            None,
        )
        .await?;
    }
    Ok(())
}

/// What run `version` must do next: finish moving a held object to its held key
/// (or an object quarantined before holds existed to quarantine), re-scan a stored
/// or held object, then re-scan a ready upload; `None` when nothing is left.
pub async fn next_target(
    conn: &mut AsyncPgConnection,
    version: i64,
) -> Result<Option<Target>, DbError> {
    let unmoved: Option<ObjectScanRow> = stored_objects::table
        .filter(stored_objects::standing.eq(ObjectStanding::Held))
        .filter(stored_objects::held_moved_at.is_null())
        .select(ObjectScanRow::as_select())
        .first(conn)
        .await
        .optional()?;
    if let Some(object) = unmoved {
        return Ok(Some(Target::MoveToHold(object)));
    }
    let unmoved: Option<ObjectScanRow> = stored_objects::table
        .filter(stored_objects::standing.eq(ObjectStanding::Quarantined))
        .filter(stored_objects::quarantine_moved_at.is_null())
        .filter(stored_objects::held_key.is_null())
        .select(ObjectScanRow::as_select())
        .first(conn)
        .await
        .optional()?;
    if let Some(object) = unmoved {
        return Ok(Some(Target::MoveToQuarantine(object)));
    }
    let stale: Option<ObjectScanRow> = stale_objects(version)
        .order(stored_objects::md5_hex)
        .select(ObjectScanRow::as_select())
        .first(conn)
        .await
        .optional()?;
    if let Some(object) = stale {
        return Ok(Some(Target::Stored(object)));
    }
    let ready: Option<UploadRow> = stale_ready(version)
        .order(uploads::id)
        .select(UploadRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(ready.map(Target::Ready))
}

/// Counts one target of run `version` done.
pub(crate) async fn advance(
    conn: &mut AsyncPgConnection,
    version: i64,
    bytes: i64,
    infected: bool,
) -> Result<(), DbError> {
    diesel::update(rescan_runs::table.find(version))
        .set((
            rescan_runs::objects_done.eq(rescan_runs::objects_done + 1),
            rescan_runs::bytes_done.eq(rescan_runs::bytes_done + bytes),
            rescan_runs::infected_found.eq(rescan_runs::infected_found + i32::from(infected)),
            rescan_runs::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends run `version`: nothing is left.
pub async fn finish(conn: &mut AsyncPgConnection, version: i64) -> Result<(), DbError> {
    diesel::update(
        rescan_runs::table
            .find(version)
            .filter(rescan_runs::state.eq(RescanState::Running)),
    )
    .set((
        rescan_runs::state.eq(RescanState::Finished),
        rescan_runs::finished_at.eq(diesel::dsl::now),
        rescan_runs::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// The object quarantined before holds existed is in quarantine and gone from
/// the regular bucket.
pub async fn record_moved(conn: &mut AsyncPgConnection, md5: Md5Digest) -> Result<(), DbError> {
    diesel::update(stored_objects::table.find(md5))
        .set(stored_objects::quarantine_moved_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(())
}

/// A re-scan's verdict on a ready upload. Infected (its file already copied to
/// `quarantine_key`): the upload is quarantined and its seller told, as after a
/// first scan. Otherwise the verdict's provenance moves to the new signatures.
/// [`Transition::Lost`] when the upload left `ready` meanwhile (submitted): nothing
/// is recorded then, so the stored object keeps the old provenance and is
/// re-scanned in its turn.
pub async fn record_ready(
    conn: &mut AsyncPgConnection,
    run_version: i64,
    upload: &UploadRow,
    scanner: &ScannerVersion,
    infected: Option<(&str, String)>,
    deliver_webhooks: bool,
    by: &Actor,
) -> Result<Transition, DbError> {
    let (id, size) = (upload.id, upload.declared_size);
    let (engine, version) = (scanner.engine.clone(), scanner.signatures);
    let upload = upload.clone();
    let infected = infected.map(|(s, key)| (s.to_owned(), key));
    conn.transaction::<_, DbError, _>(async move |conn| {
        let Some((signature, quarantine_key)) = infected else {
            // Still ready under lock, or the provenance must not move.
            let still_ready = diesel::update(
                upload_scans::table.filter(upload_scans::upload_id.eq(id)).filter(
                    diesel::dsl::exists(
                        uploads::table
                            .filter(uploads::id.eq(id))
                            .filter(uploads::state.eq(UploadState::Ready)),
                    ),
                ),
            )
            .set((
                upload_scans::engine_version.eq(engine),
                upload_scans::signature_version.eq(version),
            ))
            .execute(conn)
            .await?;
            advance(conn, run_version, size, false).await?;
            return Ok(if still_ready == 1 {
                Transition::Applied(UploadState::Ready)
            } else {
                Transition::Lost
            });
        };
        let message = format!(
            "{} contains malware ({signature}), found by a scan with newer signatures; it was quarantined and will be deleted in {QUARANTINE_DAYS} days",
            upload.file_name
        );
        let failure = Failure::new(FailureCode::Infected, message.clone());
        let moved = crate::uploads::transition(
            conn,
            id,
            UploadState::Ready,
            UploadEvent::FoundInfected,
            Some(&failure),
            by,
        )
        .await?;
        if !matches!(moved, Ok(Transition::Applied(_))) {
            return Ok(Transition::Lost);
        }
        diesel::update(upload_scans::table.find(id))
            .set((
                upload_scans::verdict.eq(ScanVerdict::Infected),
                upload_scans::signature.eq(&signature),
                upload_scans::quarantine_key.eq(quarantine_key),
                upload_scans::engine_version.eq(engine),
                upload_scans::signature_version.eq(version),
                upload_scans::scanned_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        crate::progress::set(
            conn,
            id,
            Stage::Scan,
            StageStatus::Done,
            upload.declared_bytes(),
            upload.declared_bytes(),
            &format!("found {signature} by a later scan"),
        )
        .await?;
        // One notice per quarantine: released and found again, the seller hears again.
        let occasion = crate::history::latest_upload_event(conn, id).await?;
        let notification = NewNotification::about_upload(
            &upload,
            NotificationKind::UploadQuarantined,
            message,
            serde_json::json!({ "signature": signature, "file_name": upload.file_name, "signature_version": version }),
        )
        .on_occasion(occasion);
        crate::notifications::record(conn, &notification, deliver_webhooks).await?;
        advance(conn, run_version, size, true).await?;
        Ok(Transition::Applied(UploadState::Quarantined))
    })
    .await
}
