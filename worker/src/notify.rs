//! The notify job: posts a seller notification to the configured webhook, signed
//! with HMAC-SHA256 so the receiver can tell it came from us and is fresh.
//!
//! Headers: `X-Upload-Notification-Id` (for de-duplication: a delivery may repeat)
//! and `X-Upload-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

use std::time::Duration;

use chrono::Utc;
use hmac::{KeyInit, Mac};
use upload_db::jobs::{NotifyJob, Queue};
use upload_db::models::NotificationRow;

use crate::JobContext;
use crate::job::job;
use crate::outcome::JobError;

job!(
    /// The notify queue's job.
    Notify,
    NotifyJob,
    Queue::Notify,
    run
);

/// The signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The JSON a webhook receives.
pub fn body(n: &NotificationRow) -> serde_json::Value {
    serde_json::json!({
        "id": n.id,
        "kind": n.kind.as_str(),
        "seller_id": n.seller_id.as_str(),
        "upload_id": n.upload_id,
        "submission_id": n.submission_id,
        "message": n.message,
        "details": n.details,
        "created_at": n.created_at,
    })
}

async fn deliver(ctx: &JobContext, n: &NotificationRow) -> anyhow::Result<()> {
    let Some(hook) = &ctx.config.webhook else {
        anyhow::bail!("no webhook is configured");
    };
    let body = serde_json::to_vec(&body(n))?;
    let timestamp = Utc::now().timestamp();
    let response = ctx
        .http
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-upload-notification-id", n.id.to_string())
        .header("x-upload-event", n.kind.as_str())
        .header(
            "x-upload-signature",
            signature(hook.secret.as_bytes(), timestamp, &body),
        )
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        // The URL may carry the receiver's token: errors recorded on the row and
        // logged never show it.
        .map_err(reqwest::Error::without_url)?;
    let status = response.status();
    anyhow::ensure!(
        !status.is_redirection(),
        "the webhook answered {status}, a redirect, which is not followed: configure the URL it points to"
    );
    anyhow::ensure!(status.is_success(), "the webhook answered {status}");
    Ok(())
}

/// Delivers one notification. A failed delivery is recorded on the row and tried
/// again later (by the job's retry, with the same notification id), up to the
/// attempt limit; it never changes the upload.
pub async fn run(ctx: &JobContext, job: NotifyJob) -> Result<(), JobError> {
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    let Some(n) = upload_db::notifications::find(&mut conn, job.notification_id).await? else {
        return Ok(());
    };
    if n.delivered_at.is_some() {
        return Ok(());
    }
    drop(conn);
    let result = deliver(ctx, &n).await;
    let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
    let error = result.as_ref().err().map(|e| format!("{e:#}"));
    upload_db::notifications::record_attempt(&mut conn, n.id, error.as_deref()).await?;
    match error {
        None => {
            tracing::info!(notification = %n.id, kind = %n.kind, "notification delivered");
            Ok(())
        }
        Some(error) => Err(JobError::retry(anyhow::anyhow!(
            "webhook delivery failed: {error}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_time_and_body() {
        let a = signature(b"secret", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="), "{a}");
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature(b"secret", 1_700_000_001, b"{}"));
        assert_ne!(a, signature(b"secret", 1_700_000_000, b"{ }"));
        assert_ne!(a, signature(b"other", 1_700_000_000, b"{}"));
    }
}
