//! The preview job: ffmpeg reads the stored file over a short-lived presigned URL
//! (never a local copy of it) and writes small previews to a scratch directory,
//! which are then stored under their own keys. Videos get a poster JPEG and a
//! short low-resolution MP4 clip; images get one JPEG thumbnail per configured
//! size; other files get none, and the stage says so.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use upload_db::jobs::{Queue, UploadJob};
use upload_db::models::PreviewRow;
use upload_domain::{Bucket, MediaKind, PreviewKind, Stage, StageStatus, UploadId};
use upload_storage::StorageKey;

use crate::JobContext;
use crate::job::job;
use crate::media::{self, Media};
use crate::outcome::JobError;
use crate::processing;

job!(
    /// The preview queue's job.
    Preview,
    UploadJob,
    Queue::Preview,
    run
);

/// One preview to make: its name (also its file and key name), kind and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// `poster.jpg`, `clip.mp4`, `thumb-256.jpg`.
    pub name: String,
    /// Still or clip.
    pub kind: PreviewKind,
    /// MIME type.
    pub content_type: &'static str,
}

/// Scales to fit inside `size`×`size`, never up.
fn fit(size: u32) -> String {
    format!("scale='min({size},iw)':'min({size},ih)':force_original_aspect_ratio=decrease")
}

/// Output options for one reproducible JPEG frame written to `path`.
fn jpeg_frame(path: &Path) -> [String; 11] {
    [
        "-frames:v".into(),
        "1".into(),
        "-q:v".into(),
        "4".into(),
        "-fflags".into(),
        "+bitexact".into(),
        "-flags:v".into(),
        "+bitexact".into(),
        "-f".into(),
        "image2".into(),
        path.to_string_lossy().into_owned(),
    ]
}

/// The ffmpeg runs that make a video's previews: (arguments, what they make).
pub fn video_runs(
    media: &Media,
    input: &str,
    formats: &str,
    dir: &Path,
) -> Vec<(Vec<String>, Planned)> {
    let cfg = media.config();
    let poster = Planned {
        name: "poster.jpg".into(),
        kind: PreviewKind::Thumbnail,
        content_type: "image/jpeg",
    };
    let clip = Planned {
        name: "clip.mp4".into(),
        kind: PreviewKind::Clip,
        content_type: "video/mp4",
    };
    let mut poster_args: Vec<String> = media.input_args(input, formats);
    poster_args.extend([
        "-map".into(),
        "0:v:0".into(),
        // The most representative of the first frames, not a black first frame.
        "-vf".into(),
        format!("thumbnail=50,{}", fit(cfg.video_thumbnail_size)),
    ]);
    poster_args.extend(jpeg_frame(&dir.join(&poster.name)));
    let mut clip_args: Vec<String> = media.input_args(input, formats);
    clip_args.extend([
        "-map".into(),
        "0:v:0".into(),
        "-map".into(),
        "0:a:0?".into(),
        "-t".into(),
        cfg.clip_seconds.to_string(),
        "-vf".into(),
        // Even dimensions for H.264, never taller than the source.
        format!("scale=-2:'trunc(min({},ih)/2)*2'", cfg.clip_height),
        "-c:v".into(),
        "libx264".into(),
        // One thread and bit-exact muxing: the same file always gives the same
        // clip, byte for byte, so a job run again rewrites an identical object.
        "-threads".into(),
        "1".into(),
        "-fflags".into(),
        "+bitexact".into(),
        "-flags:v".into(),
        "+bitexact".into(),
        "-flags:a".into(),
        "+bitexact".into(),
        "-map_metadata".into(),
        "-1".into(),
        "-preset".into(),
        "veryfast".into(),
        "-crf".into(),
        "30".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        "64k".into(),
        "-ac".into(),
        "2".into(),
        "-movflags".into(),
        "+faststart".into(),
        "-f".into(),
        "mp4".into(),
        dir.join(&clip.name).to_string_lossy().into_owned(),
    ]);
    vec![(poster_args, poster), (clip_args, clip)]
}

/// The one ffmpeg run that makes every image thumbnail from a single decode.
pub fn image_run(
    media: &Media,
    input: &str,
    formats: &str,
    dir: &Path,
) -> (Vec<String>, Vec<Planned>) {
    let sizes = &media.config().thumbnail_sizes;
    let mut graph = format!("[0:v]split={}", sizes.len());
    for i in 0..sizes.len() {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, size) in sizes.iter().enumerate() {
        graph.push_str(&format!(";[s{i}]{}[t{i}]", fit(*size)));
    }
    let mut args: Vec<String> = media.input_args(input, formats);
    args.extend(["-filter_complex".into(), graph]);
    let mut planned = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let p = Planned {
            name: format!("thumb-{size}.jpg"),
            kind: PreviewKind::Thumbnail,
            content_type: "image/jpeg",
        };
        args.extend(["-map".into(), format!("[t{i}]")]);
        args.extend(jpeg_frame(&dir.join(&p.name)));
        planned.push(p);
    }
    (args, planned)
}

/// Stores one made preview and describes it.
async fn store_preview(
    ctx: &JobContext,
    upload: UploadId,
    dir: &Path,
    planned: &Planned,
) -> Result<PreviewRow, JobError> {
    let path = dir.join(&planned.name);
    let formats = upload_domain::demuxers(planned.content_type).unwrap_or("image2");
    let (width, height) = media::dimensions(&ctx.media, &path, formats)
        .await
        .map_err(|e| JobError::RetryFew(e.into()))?;
    let key = StorageKey::Preview {
        upload,
        name: &planned.name,
    };
    let size = ctx
        .store
        .put_file(&key, &path, planned.content_type)
        .await?;
    Ok(PreviewRow {
        upload_id: upload,
        name: planned.name.clone(),
        kind: planned.kind,
        content_type: planned.content_type.to_owned(),
        object_key: key.key(),
        width: i32::try_from(width).unwrap_or(i32::MAX),
        height: i32::try_from(height).unwrap_or(i32::MAX),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        created_at: Utc::now(),
        bucket: Bucket::Temp,
    })
}

/// Runs the preview job for one upload. Safe to run twice: previews land at the
/// same keys and their rows are replaced, and the stage settles once.
pub async fn run(ctx: &JobContext, job: UploadJob) -> Result<(), JobError> {
    let Some(claimed) = processing::claim(ctx, job, Stage::Preview).await? else {
        return Ok(());
    };
    let id = job.upload_id;
    let sniffed = claimed.facts.sniffed_content_type.clone();
    let kind = MediaKind::of(&sniffed);
    let formats = match upload_domain::demuxers(&sniffed) {
        Some(formats) if matches!(kind, MediaKind::Video | MediaKind::Image) => formats,
        _ => {
            let detail = format!("no preview for {sniffed} files");
            return processing::finish(ctx, job, Stage::Preview, StageStatus::Skipped, &detail)
                .await;
        }
    };
    let url = ctx
        .store
        .presign_get(
            &claimed.object(),
            upload_storage::Reader::Service,
            ctx.media.config().timeout * 3 + Duration::from_secs(60),
        )
        .await?;
    let probe = match ctx.media.probe(&url, formats).await {
        Ok(probe) => probe,
        Err(e) => return Err(claimed.media_failure(ctx, e).await),
    };
    if probe.width.is_none() {
        let detail = format!("no picture to preview in this {sniffed} file");
        return processing::finish(ctx, job, Stage::Preview, StageStatus::Skipped, &detail).await;
    }
    let scratch = tempfile::Builder::new()
        .prefix("upload-preview-")
        .tempdir()
        .map_err(JobError::retry)?;
    let dir = scratch.path();
    let mut planned = Vec::new();
    match kind {
        MediaKind::Video => {
            for (args, made) in video_runs(&ctx.media, &url, formats, dir) {
                if let Err(e) = ctx.media.ffmpeg(dir, &args).await {
                    return Err(claimed.media_failure(ctx, e).await);
                }
                planned.push(made);
                crate::failpoint::reached("preview.mid").await;
            }
        }
        _ => {
            let (args, made) = image_run(&ctx.media, &url, formats, dir);
            if let Err(e) = ctx.media.ffmpeg(dir, &args).await {
                return Err(claimed.media_failure(ctx, e).await);
            }
            planned.extend(made);
        }
    }
    let mut rows = Vec::with_capacity(planned.len());
    for p in &planned {
        rows.push(store_preview(ctx, id, dir, p).await?);
    }
    {
        let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
        upload_db::results::save_previews(&mut conn, &rows).await?;
    }
    let detail = rows
        .iter()
        .map(|r| format!("{} {}x{}", r.name, r.width, r.height))
        .collect::<Vec<_>>()
        .join(", ");
    processing::finish(ctx, job, Stage::Preview, StageStatus::Done, &detail).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media() -> Media {
        let env: std::collections::HashMap<String, String> =
            [("UPLOAD_THUMBNAIL_SIZES".to_string(), "128,512".to_string())].into();
        Media::new(upload_config::MediaConfig::from_source(&env).unwrap())
    }

    #[test]
    fn one_image_run_makes_every_configured_size() {
        let (args, planned) = image_run(&media(), "http://x/y", "png_pipe", Path::new("/tmp/p"));
        let names: Vec<_> = planned.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["thumb-128.jpg", "thumb-512.jpg"]);
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(graph.starts_with("[0:v]split=2[s0][s1]"), "{graph}");
        assert!(graph.contains("min(512,iw)"), "{graph}");
        assert_eq!(args.last().unwrap(), "/tmp/p/thumb-512.jpg");
    }

    #[test]
    fn video_runs_make_a_poster_and_a_short_clip() {
        let runs = video_runs(&media(), "http://x/y", "mov", Path::new("/tmp/p"));
        let names: Vec<_> = runs.iter().map(|(_, p)| p.name.as_str()).collect();
        assert_eq!(names, ["poster.jpg", "clip.mp4"]);
        let clip = &runs[1].0;
        let t = clip.iter().position(|a| a == "-t").unwrap();
        assert_eq!(clip[t + 1], "6");
        assert!(clip.iter().any(|a| a == "libx264"));
        // Inputs may only use the protocols our own objects need.
        assert_eq!(clip[2], "-protocol_whitelist");
        assert_eq!(clip[0], "-max_pixels");
    }
}
