//! The signing phase, the table of measured unit costs, and the capacity model
//! built from them.

use std::collections::BTreeMap;
use std::time::Duration;

use md5::Digest;
use upload_client::UploadClient;

use super::{CLAMD, Cpu, GARAGE, KINDS, MEDIA, MIB, Meter, PART, POSTGRES, SERVER, WORKER, pb};

/// Parts per upload in the signing phase (all 5 MiB, so every part signs alike).
const SIGN_PARTS: u32 = 200;
const SIGN_PART: u64 = 5 * MIB;
/// Uploads signed in each way.
const SIGN_UPLOADS: usize = 10;
/// Parts per `SignParts` call in the batched way.
const BATCH: u32 = 50;

/// Server and database CPU per signed part, one part per call and in batches.
pub struct Sign {
    pub single: Cpu,
    pub batched: Cpu,
}

/// Signs every part of `SIGN_UPLOADS` uploads one part per call (four callers),
/// then of as many more in `BATCH`-part calls; CPU per signed part of each way.
pub async fn measure_signing(client: &UploadClient, meter: &Meter) -> Sign {
    let md5 = md5::Md5::digest(b"a part of the capacity run").to_vec();
    let mut ways = Vec::new();
    for batch in [1, BATCH] {
        let mut uploads = Vec::new();
        for i in 0..SIGN_UPLOADS {
            let upload = client
                .create(
                    &format!("signed-{batch}-{i}.bin"),
                    u64::from(SIGN_PARTS) * SIGN_PART,
                    "application/octet-stream",
                    Some(SIGN_PART),
                )
                .await
                .expect("create");
            uploads.push(upload.upload_id);
        }
        let before = meter.read();
        let mut tasks = tokio::task::JoinSet::new();
        for callers in uploads.chunks(SIGN_UPLOADS.div_ceil(4)) {
            let (api, ids, md5) = (client.api(), callers.to_vec(), md5.clone());
            tasks.spawn(async move {
                let mut api = api;
                for id in ids {
                    for first in (1..=SIGN_PARTS).step_by(batch as usize) {
                        let parts: Vec<pb::PartToSign> = (first..first + batch)
                            .map(|n| pb::PartToSign {
                                checksum_sha256: Vec::new(),
                                part_number: n,
                                content_md5: md5.clone(),
                                content_length: SIGN_PART,
                            })
                            .collect();
                        let signed = if batch == 1 {
                            api.sign_part(pb::SignPartRequest {
                                upload_id: id.clone(),
                                part: parts.into_iter().next(),
                            })
                            .await
                            .map(|r| usize::from(r.into_inner().part.is_some()))
                        } else {
                            api.sign_parts(pb::SignPartsRequest {
                                upload_id: id.clone(),
                                parts,
                            })
                            .await
                            .map(|r| r.into_inner().parts.len())
                        };
                        assert_eq!(signed.expect("signing"), batch as usize);
                    }
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a signing task");
        }
        let parts = f64::from(SIGN_PARTS) * SIGN_UPLOADS as f64;
        ways.push(meter.read().minus(&before).scaled(1.0 / parts));
        for id in uploads {
            let _ = client
                .api()
                .abort_upload(pb::AbortUploadRequest { upload_id: id })
                .await;
        }
    }
    Sign {
        single: ways[0],
        batched: ways[1],
    }
}

/// Every unit cost the run measured.
pub struct Measured {
    pub small: usize,
    pub small_elapsed: Duration,
    /// CPU of one small upload, uploaded to stored.
    pub per_small: Cpu,
    /// Rows per upload left in each table.
    pub db_rows: BTreeMap<String, f64>,
    pub db_bytes: f64,
    pub wal_bytes: f64,
    /// Store requests per upload by the server and the worker, by operation.
    pub store_calls: BTreeMap<String, f64>,
    pub large: usize,
    pub large_mib: u64,
    pub per_gib_upload: Cpu,
    pub per_gib_ready: Cpu,
    pub per_gib_store: Cpu,
    pub scan_rate_mib_s: f64,
    pub videos: usize,
    /// A video's CPU beyond a plain small file's.
    pub per_video: Cpu,
    pub hash_per_gib: f64,
    pub sign: Sign,
    pub clamd_rss_mib: f64,
    pub worker_rss_mib: f64,
}

fn row(label: &str, cpu: &Cpu, scale: f64, unit: &str) {
    let cells: Vec<String> = cpu
        .0
        .iter()
        .map(|v| format!("{:>8.3}", v * scale))
        .collect();
    println!("| {label:<44} | {} | {unit}", cells.join(" | "));
}

impl Measured {
    /// The measured unit costs, as tables.
    pub fn print(&self) {
        println!();
        println!(
            "CPU by process ({} small uploads to stored in {:.1} s; {} × {} MiB; {} videos)",
            self.small,
            self.small_elapsed.as_secs_f64(),
            self.large,
            self.large_mib,
            self.videos
        );
        let head: Vec<String> = KINDS.iter().map(|k| format!("{k:>8}")).collect();
        println!("| {:<44} | {} |", "unit", head.join(" | "));
        println!("|{}|", "-".repeat(46 + 11 * KINDS.len()));
        row(
            "one upload, fixed (256 KiB → stored)",
            &self.per_small,
            1e3,
            "ms",
        );
        row(
            "per GiB uploaded (client PUTs)",
            &self.per_gib_upload,
            1.0,
            "s",
        );
        row(
            "per GiB CompleteUpload → ready",
            &self.per_gib_ready,
            1.0,
            "s",
        );
        row(
            "per GiB submit → stored (copy)",
            &self.per_gib_store,
            1.0,
            "s",
        );
        row(
            "per preview (10 s 640×360 video), extra",
            &self.per_video,
            1.0,
            "s",
        );
        row(
            "per part, SignPart (1 per call)",
            &self.sign.single,
            1e3,
            "ms",
        );
        row(
            &format!("per part, SignParts ({} per call)", BATCH),
            &self.sign.batched,
            1e3,
            "ms",
        );
        println!();
        println!(
            "hashing alone (MD5 + SHA-256, one thread): {:.2} CPU s per GiB",
            self.hash_per_gib
        );
        println!(
            "CompleteUpload → ready of the large files: {:.0} MiB/s; peak RSS clamd {:.0} MiB, worker {:.0} MiB",
            self.scan_rate_mib_s, self.clamd_rss_mib, self.worker_rss_mib
        );
        println!(
            "database per upload (to stored): {:.1} kB in tables and indexes, {:.1} kB of WAL; rows: {}",
            self.db_bytes / 1e3,
            self.wal_bytes / 1e3,
            self.db_rows
                .iter()
                .map(|(t, n)| format!("{t} {n:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "store requests per upload (server and worker; the client's part PUTs besides): {}",
            self.store_calls
                .iter()
                .map(|(c, n)| format!("{c} {n:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    /// One upload's CPU by process for a file of `mib`, a video with `video_share`.
    fn per_upload(&self, mib: f64, video_share: f64) -> Cpu {
        let gib = mib / 1024.0;
        let parts = (mib * MIB as f64 / PART as f64).ceil().max(1.0);
        let bytes = self
            .per_gib_upload
            .plus(&self.per_gib_ready)
            .plus(&self.per_gib_store)
            .scaled(gib);
        let mut signing = self.sign.batched.scaled(parts - 1.0);
        // Only the server and the database sign; other columns moved by chance.
        for i in [WORKER, MEDIA, CLAMD, GARAGE] {
            signing.0[i] = 0.0;
        }
        self.per_small
            .plus(&bytes)
            .plus(&self.per_video.scaled(video_share))
            .plus(&signing)
    }

    /// The model for `per_hour` uploads of `mib` MiB, `video_share` of them videos.
    pub fn model(&self, per_hour: f64, mib: f64, video_share: f64) {
        let one = self.per_upload(mib, video_share);
        let parts = (mib * MIB as f64 / PART as f64).ceil().max(1.0);
        println!();
        println!(
            "model: {per_hour:.0} uploads per hour of {mib:.0} MiB ({parts:.0} parts of 16 MiB), {:.0} % videos",
            video_share * 100.0
        );
        println!("| process  | CPU s per upload | cores busy at that rate |");
        println!("|----------|------------------|-------------------------|");
        let mut ranked: Vec<(&str, f64)> = KINDS.iter().copied().zip(one.0).collect();
        for (kind, secs) in &ranked {
            println!(
                "| {kind:<8} | {secs:>16.3} | {:>23.2} |",
                secs * per_hour / 3600.0
            );
        }
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let scan_node = one.0[CLAMD] + one.0[WORKER] + one.0[MEDIA];
        println!(
            "first limit: {} ({:.2} cores); a scan-and-process node (worker + clamd + ffmpeg) needs {:.2} cores, the servers {:.2}, the store {:.2}, PostgreSQL {:.2}",
            ranked[0].0,
            ranked[0].1 * per_hour / 3600.0,
            scan_node * per_hour / 3600.0,
            one.0[SERVER] * per_hour / 3600.0,
            one.0[GARAGE] * per_hour / 3600.0,
            one.0[POSTGRES] * per_hour / 3600.0,
        );
        let requests: f64 = self.store_calls.values().sum::<f64>() + parts;
        println!(
            "database: {:.0} rows, {:.1} MB and {:.1} MB of WAL per hour; store: {:.0} requests and {:.1} GB moved per hour (written once, read twice, copied once)",
            self.db_rows.values().sum::<f64>() * per_hour,
            self.db_bytes * per_hour / 1e6,
            self.wal_bytes * per_hour / 1e6,
            requests * per_hour,
            mib * MIB as f64 * 4.0 * per_hour / 1e9,
        );
    }
}
