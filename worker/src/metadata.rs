//! The metadata job: media facts (container, duration, codecs, dimensions, bit
//! rate) from ffprobe, for audio, video and image files. The file's size, hashes
//! and sniffed type were already read by the scan, in the same pass.

use std::time::Duration;

use chrono::Utc;
use upload_db::jobs::{Queue, UploadJob};
use upload_db::models::MediaRow;
use upload_domain::{MediaKind, Stage, StageStatus};

use crate::JobContext;
use crate::job::job;
use crate::media::ProbeReport;
use crate::outcome::JobError;
use crate::processing;

job!(
    /// The metadata queue's job.
    Metadata,
    UploadJob,
    Queue::Metadata,
    run
);

/// A one-line summary for the progress stream.
pub fn summary(report: &ProbeReport) -> String {
    let mut parts = vec![
        report
            .container
            .split(',')
            .next()
            .unwrap_or_default()
            .to_owned(),
    ];
    if let Some(ms) = report.duration_ms {
        parts.push(format!("{}.{:03} s", ms / 1000, ms % 1000));
    }
    if let (Some(w), Some(h)) = (report.width, report.height) {
        parts.push(format!("{w}x{h}"));
    }
    parts.extend(report.video_codec.clone());
    parts.extend(report.audio_codec.clone());
    parts.join(", ")
}

/// Runs the metadata job for one upload. Safe to run twice: the first probe's row
/// stands and the stage settles once.
pub async fn run(ctx: &JobContext, job: UploadJob) -> Result<(), JobError> {
    let Some(claimed) = processing::claim(ctx, job, Stage::Metadata).await? else {
        return Ok(());
    };
    let sniffed = &claimed.facts.sniffed_content_type;
    // Only a media type ffprobe is held to the demuxers of is probed at all.
    let formats = match upload_domain::demuxers(sniffed) {
        Some(formats) if MediaKind::of(sniffed) != MediaKind::Other => formats,
        _ => {
            let detail = format!("no media facts for {sniffed} files");
            return processing::finish(ctx, job, Stage::Metadata, StageStatus::Skipped, &detail)
                .await;
        }
    };
    let url = ctx
        .store
        .presign_get(
            &claimed.object(),
            upload_storage::Reader::Service,
            ctx.media.config().timeout + Duration::from_secs(60),
        )
        .await?;
    let report = match ctx.media.probe(&url, formats).await {
        Ok(report) => report,
        Err(e) => return Err(claimed.media_failure(ctx, e).await),
    };
    let row = MediaRow {
        upload_id: claimed.row.id,
        container: report.container.clone(),
        duration_ms: report.duration_ms.and_then(|d| i64::try_from(d).ok()),
        bit_rate: report.bit_rate.and_then(|b| i64::try_from(b).ok()),
        width: report.width.and_then(|w| i32::try_from(w).ok()),
        height: report.height.and_then(|h| i32::try_from(h).ok()),
        video_codec: report.video_codec.clone(),
        audio_codec: report.audio_codec.clone(),
        frame_rate: report.frame_rate,
        probed_at: Utc::now(),
    };
    {
        let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::results::save_media(&mut conn, &row).await?;
    }
    processing::finish(
        ctx,
        job,
        Stage::Metadata,
        StageStatus::Done,
        &summary(&report),
    )
    .await
}
