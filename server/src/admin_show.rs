//! `upload-admin show`: one upload or submission as an operator reads it: the
//! row, its history, every job and attempt, its notifications and the objects
//! it has in the store.

use std::fmt::Write as _;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use upload_db::AsyncPgConnection;
use upload_db::history::Change;
use upload_db::inspect::JobRow;
use upload_db::models::NotificationRow;
use upload_db::schema::notifications;
use upload_domain::{SubmissionId, UploadId};

use crate::admin::Outcome;

fn history<S: std::fmt::Display>(out: &mut String, lines: &[Change<S>]) -> std::fmt::Result {
    writeln!(out, "history:")?;
    for c in lines {
        let from = c.from.as_ref().map(ToString::to_string).unwrap_or_default();
        let attempt = c
            .attempt
            .map(|a| format!(" attempt {a}"))
            .unwrap_or_default();
        let detail = c
            .detail
            .as_deref()
            .map(|d| format!(" - {d}"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {}  {from:>11} -> {:<11} {:<20} {}{attempt}{detail}",
            c.at.format("%F %T%.3f"),
            c.to,
            c.cause,
            c.actor
        )?;
    }
    Ok(())
}

fn jobs(out: &mut String, rows: &[JobRow]) -> std::fmt::Result {
    writeln!(out, "jobs:")?;
    for j in rows {
        let result = j
            .last_result
            .as_deref()
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<17} {:<40} {:<8} due {}{result}",
            j.job_type,
            j.idempotency_key,
            j.status,
            j.run_at.format("%F %T")
        )?;
    }
    Ok(())
}

fn notes(out: &mut String, rows: &[NotificationRow]) -> std::fmt::Result {
    writeln!(out, "notifications:")?;
    for n in rows {
        let delivered = n
            .delivered_at
            .map(|t| format!("delivered {}", t.format("%F %T")))
            .unwrap_or_else(|| "not delivered".into());
        writeln!(out, "  {} {:<20} {delivered}", n.id, n.kind)?;
    }
    Ok(())
}

/// One upload.
pub async fn upload(conn: &mut AsyncPgConnection, id: UploadId) -> anyhow::Result<Outcome> {
    let Some(rows) = upload_db::snapshot::load(conn, id, true).await? else {
        return Ok(Outcome::Refused(format!("no upload {id}")));
    };
    let u = &rows.upload;
    let mut out = String::new();
    writeln!(
        out,
        "upload {id}: {} ({}), owner {}",
        u.state, u.file_name, u.owner_id
    )?;
    if let Some(code) = u.failure_code {
        writeln!(
            out,
            "failure: {code}: {}",
            u.failure_message.as_deref().unwrap_or(code.meaning())
        )?;
    }
    writeln!(out, "objects:")?;
    writeln!(out, "  temp        {}", u.temp_key)?;
    if let Some(key) = rows.scan.as_ref().and_then(|s| s.quarantine_key.as_deref()) {
        writeln!(out, "  quarantine  {key}")?;
    }
    if let Some(facts) = &rows.metadata {
        writeln!(
            out,
            "  content     md5 {} sha256 {}",
            facts.md5.to_hex(),
            facts.sha256.to_hex()
        )?;
    }
    for p in &rows.previews {
        writeln!(out, "  preview     {} {}", p.bucket, p.object_key)?;
    }
    history(&mut out, &rows.history)?;
    jobs(
        &mut out,
        &upload_db::inspect::jobs_of(conn, &id.to_string()).await?,
    )?;
    notes(
        &mut out,
        &upload_db::notifications::for_upload(conn, id).await?,
    )?;
    Ok(Outcome::Done(out))
}

/// One submission.
pub async fn submission(conn: &mut AsyncPgConnection, id: SubmissionId) -> anyhow::Result<Outcome> {
    let Some(s) = upload_db::submissions::find(conn, id).await? else {
        return Ok(Outcome::Refused(format!("no submission {id}")));
    };
    let mut out = String::new();
    writeln!(
        out,
        "submission {id}: {} (item {}, \"{}\"), owner {}",
        s.state, s.item_id, s.title, s.owner_id
    )?;
    if let Some(code) = s.failure_code {
        writeln!(
            out,
            "failure: {code}: {}",
            s.failure_message.as_deref().unwrap_or(code.meaning())
        )?;
    }
    writeln!(out, "uploads:")?;
    for f in upload_db::submissions::files_of(conn, id).await? {
        let state = upload_db::uploads::find(conn, f.upload_id)
            .await?
            .map(|u| u.state.to_string())
            .unwrap_or_else(|| "missing".into());
        writeln!(out, "  {} {state}", f.upload_id)?;
    }
    history(
        &mut out,
        &upload_db::history::of_submission(conn, id).await?,
    )?;
    jobs(
        &mut out,
        &upload_db::inspect::jobs_of(conn, &id.to_string()).await?,
    )?;
    let told: Vec<NotificationRow> = notifications::table
        .filter(notifications::submission_id.eq(id))
        .order(notifications::created_at.asc())
        .select(NotificationRow::as_select())
        .load(conn)
        .await?;
    notes(&mut out, &told)?;
    Ok(Outcome::Done(out))
}
