//! `upload-admin`: what an operator does to uploads, submissions and
//! notifications. Lists and shows read the database; every action goes through
//! `upload_db::ops` (the guarded transitions, a history line naming the operator,
//! the job queued, one transaction) and a refusal changes nothing. Releasing or
//! confirming a quarantine or a hold also moves objects (`admin_quarantine`).

use std::fmt::Write as _;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use upload_db::AsyncPgConnection;
use upload_db::inspect::{self, Filter};
use upload_domain::{Actor, NotificationId, SellerId, SubmissionId, UploadId};
use upload_storage::Store;

/// Operate the upload service: list, show, retry, requeue, redeliver, release or
/// confirm a quarantine.
#[derive(Debug, Parser)]
#[command(name = "upload-admin", version, about)]
pub struct AdminCli {
    /// Who is acting: recorded in the history of everything this changes.
    #[arg(long, env = "UPLOAD_OPERATOR")]
    pub operator: String,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Uploads or submissions.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Subject {
    /// Uploads.
    #[value(alias = "uploads")]
    Upload,
    /// Item submissions.
    #[value(alias = "submissions")]
    Submission,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// List uploads or submissions, least recently changed first.
    List {
        /// upload or submission.
        what: Subject,
        /// Only in this state (created, failed, queued, ...).
        #[arg(long)]
        state: Option<String>,
        /// Only this seller's.
        #[arg(long)]
        seller: Option<String>,
        /// Only those unchanged for this long: 90s, 30m, 2h, 3d.
        #[arg(long, value_parser = parse_age)]
        older_than: Option<Duration>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One upload or submission: its row, history, jobs, notifications, objects.
    Show {
        /// upload or submission.
        what: Subject,
        /// Its id.
        id: String,
    },
    /// Retry a failed upload (from the stage that failed) or submission.
    Retry {
        /// upload or submission.
        what: Subject,
        /// Its id.
        id: String,
    },
    /// Queue the job a stuck upload or submission waits on again.
    Requeue {
        /// upload or submission.
        what: Subject,
        /// Its id.
        id: String,
    },
    /// Deliver a notification's webhook again, under the same notification id.
    Redeliver {
        /// The notification's id.
        notification_id: String,
    },
    /// Judge a quarantined upload, or held content (by its MD5, listed in
    /// ops.held_objects), safe over the scanner's finding: the upload goes on to
    /// processing, the content downloads again; a later scan quarantines or holds
    /// it again only for another finding; the sellers are told. Needs the store's
    /// settings (UPLOAD_S3_*).
    Release {
        /// The upload's id, or the held content's MD5.
        id: String,
        /// Why it is safe, for the record.
        #[arg(long)]
        reason: String,
    },
    /// Confirm the finding on a quarantined upload or on held content (by its
    /// MD5): it can no longer be released, and its file is deleted when its days
    /// in quarantine end; the sellers are told. Needs the store's settings
    /// (UPLOAD_S3_*).
    Confirm {
        /// The upload's id, or the held content's MD5.
        id: String,
    },
}

impl AdminCommand {
    /// True when the command moves objects in the store.
    pub fn needs_store(&self) -> bool {
        matches!(self, Self::Release { .. } | Self::Confirm { .. })
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; what was read or done.
    Done(String),
    /// Refused, and why; nothing changed.
    Refused(String),
}

/// "90s", "30m", "2h", "3d" as a duration.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: write a number and a unit, as 90s, 30m, 2h or 3d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

fn needs(store: Option<&Store>) -> anyhow::Result<&Store> {
    store.ok_or_else(|| anyhow::anyhow!("this command needs the store's settings (UPLOAD_S3_*)"))
}

fn id<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a {what} id (a UUID)"))
}

/// Runs `cli` against the database behind `conn` and, for the commands that
/// need it, `store`.
pub async fn run(
    cli: AdminCli,
    conn: &mut AsyncPgConnection,
    store: Option<&Store>,
) -> anyhow::Result<Outcome> {
    let by = Actor::Operator(cli.operator.clone());
    let done = |r: Result<String, upload_db::ops::Refused>| match r {
        Ok(text) => Outcome::Done(text),
        Err(refused) => Outcome::Refused(refused.to_string()),
    };
    let parsed = |r: Result<Outcome, String>| r.unwrap_or_else(Outcome::Refused);
    Ok(match cli.command {
        AdminCommand::List {
            what,
            state,
            seller,
            older_than,
            limit,
        } => {
            let owner = match seller.map(|s| s.parse::<SellerId>()).transpose() {
                Ok(owner) => owner,
                Err(e) => return Ok(Outcome::Refused(format!("--seller: {e}"))),
            };
            let unchanged_since = older_than.map(|age| {
                chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or_default()
            });
            match list(conn, what, state.as_deref(), owner, unchanged_since, limit).await? {
                Ok(text) => Outcome::Done(text),
                Err(refused) => Outcome::Refused(refused),
            }
        }
        AdminCommand::Show { what, id: text } => match what {
            Subject::Upload => match id::<UploadId>("upload", &text) {
                Ok(id) => crate::admin_show::upload(conn, id).await?,
                Err(e) => Outcome::Refused(e),
            },
            Subject::Submission => match id::<SubmissionId>("submission", &text) {
                Ok(id) => crate::admin_show::submission(conn, id).await?,
                Err(e) => Outcome::Refused(e),
            },
        },
        AdminCommand::Retry { what, id: text } => parsed(match what {
            Subject::Upload => match id("upload", &text) {
                Ok(id) => Ok(done(upload_db::ops::retry_upload(conn, id, &by).await?)),
                Err(e) => Err(e),
            },
            Subject::Submission => match id("submission", &text) {
                Ok(id) => Ok(done(upload_db::ops::retry_submission(conn, id, &by).await?)),
                Err(e) => Err(e),
            },
        }),
        AdminCommand::Requeue { what, id: text } => parsed(match what {
            Subject::Upload => match id("upload", &text) {
                Ok(id) => Ok(done(upload_db::ops::requeue_upload(conn, id, &by).await?)),
                Err(e) => Err(e),
            },
            Subject::Submission => match id("submission", &text) {
                Ok(id) => Ok(done(
                    upload_db::ops::requeue_submission(conn, id, &by).await?,
                )),
                Err(e) => Err(e),
            },
        }),
        AdminCommand::Redeliver { notification_id } => parsed(
            match id::<NotificationId>("notification", &notification_id) {
                Ok(id) => Ok(done(upload_db::ops::redeliver(conn, id, &by).await?)),
                Err(e) => Err(e),
            },
        ),
        AdminCommand::Release { id, reason } => {
            if reason.trim().is_empty() {
                return Ok(Outcome::Refused(
                    "--reason: say why the file is safe; it is recorded with your name".into(),
                ));
            }
            match id.parse::<crate::admin_quarantine::Decided>() {
                Ok(what) => {
                    crate::admin_quarantine::release(conn, needs(store)?, what, &by, &reason)
                        .await?
                }
                Err(e) => Outcome::Refused(e),
            }
        }
        AdminCommand::Confirm { id } => match id.parse::<crate::admin_quarantine::Decided>() {
            Ok(what) => crate::admin_quarantine::confirm(conn, needs(store)?, what, &by).await?,
            Err(e) => Outcome::Refused(e),
        },
    })
}

async fn list(
    conn: &mut AsyncPgConnection,
    what: Subject,
    state: Option<&str>,
    owner: Option<SellerId>,
    unchanged_since: Option<chrono::DateTime<chrono::Utc>>,
    limit: i64,
) -> anyhow::Result<Result<String, String>> {
    let mut out = String::new();
    match what {
        Subject::Upload => {
            let state = match state.map(str::parse).transpose() {
                Ok(state) => state,
                Err(e) => return Ok(Err(format!("--state: {e}"))),
            };
            let filter = Filter {
                state,
                owner,
                unchanged_since,
                limit,
            };
            for u in inspect::uploads(conn, &filter).await? {
                let failure = u
                    .failure_code
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}  {:<11} {:<20} {}  {}  {}{failure}",
                    u.id,
                    u.state,
                    u.owner_id,
                    u.updated_at.format("%F %T"),
                    u.declared_size,
                    u.file_name
                )?;
            }
        }
        Subject::Submission => {
            let state = match state.map(str::parse).transpose() {
                Ok(state) => state,
                Err(e) => return Ok(Err(format!("--state: {e}"))),
            };
            let filter = Filter {
                state,
                owner,
                unchanged_since,
                limit,
            };
            for s in inspect::submissions(conn, &filter).await? {
                let failure = s
                    .failure_code
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}  {:<9} {:<20} {}  item {}  {}{failure}",
                    s.id,
                    s.state,
                    s.owner_id,
                    s.updated_at.format("%F %T"),
                    s.item_id,
                    s.title
                )?;
            }
        }
    }
    Ok(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_a_number_and_a_unit() {
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_age("3d"), Ok(Duration::from_secs(259_200)));
        assert!(parse_age("3w").unwrap_err().contains("unit"));
        assert!(parse_age("soon").is_err());
        assert!(parse_age("").is_err());
    }
}
