//! Where the store's ETags are not MD5s (SSE-KMS, SSE-C), completion checks only
//! the parts' sizes; the scan then hashes each part's byte range as it reads the
//! file and compares it with the MD5 signed for that part, so a part sent through
//! an older URL (other bytes) still fails the upload (`part_mismatch`). Parts
//! pinned by SHA-256 need no such pass: completion compared the SHA-256 the store
//! verified for each part, whatever its ETags are.

use bytes::Bytes;
use md5::Digest;
use tokio::sync::mpsc;
use upload_db::models::UploadRow;
use upload_db::uploads;
use upload_domain::{Md5Digest, PartChecksum};

use crate::JobContext;
use crate::outcome::JobError;

/// Hashes the stream part by part: one MD5 per length in `lengths`, in order
/// (bytes past the last length go into one more). Blocks may straddle parts.
pub(crate) fn spawn(
    mut rx: mpsc::Receiver<Bytes>,
    lengths: Vec<u64>,
) -> tokio::task::JoinHandle<Vec<Md5Digest>> {
    tokio::task::spawn_blocking(move || {
        let mut digests = Vec::with_capacity(lengths.len());
        let mut lengths = lengths.into_iter();
        let mut left = lengths.next().unwrap_or(u64::MAX);
        let mut digest = md5::Md5::new();
        while let Some(mut block) = rx.blocking_recv() {
            while !block.is_empty() {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(block.len());
                digest.update(block.split_to(take));
                left -= take as u64;
                if left == 0 {
                    let done = std::mem::replace(&mut digest, md5::Md5::new());
                    digests.extend(Md5Digest::from_bytes(&done.finalize()).ok());
                    left = lengths.next().unwrap_or(u64::MAX);
                }
            }
        }
        if left != u64::MAX || digests.is_empty() {
            // A part cut short (or bytes past the last one): hashed as it is.
            digests.extend(Md5Digest::from_bytes(&digest.finalize()).ok());
        }
        digests
    })
}

/// Where the store's ETags are not MD5s (SSE-KMS), completion checked only the
/// parts' sizes: each part's number, length and signed MD5, in order, for the
/// scan to hash the parts and compare. `None` where completion compared them (ETags
/// that are MD5s, or parts pinned by SHA-256).
pub(crate) async fn signed_parts(
    ctx: &JobContext,
    row: &UploadRow,
) -> Result<Option<Vec<(u32, u64, Option<Md5Digest>)>>, JobError> {
    if ctx.store.etag_is_md5() || row.part_checksum == PartChecksum::Sha256 {
        return Ok(None);
    }
    let plan = row.plan()?;
    let signed = {
        let mut conn = ctx.pool.get().await.map_err(upload_db::DbError::from)?;
        uploads::signed_parts(&mut conn, row.id).await?
    };
    let md5_of: std::collections::HashMap<i32, Md5Digest> = signed
        .iter()
        .filter_map(|p| Some((p.part_number, p.content_md5?)))
        .collect();
    Ok(Some(
        plan.parts()
            .map(|n| {
                let number = n.get();
                let signed = i32::try_from(number).ok().and_then(|k| md5_of.get(&k));
                (number, plan.part_len(n), signed.copied())
            })
            .collect(),
    ))
}

/// The first part whose bytes' MD5 is not the one signed for it, said for the
/// seller; `None` when every part is as signed.
pub(crate) fn first_swapped(
    signed: &[(u32, u64, Option<Md5Digest>)],
    read: &[Md5Digest],
) -> Option<String> {
    signed
        .iter()
        .enumerate()
        .find(|(i, (_, _, want))| want.is_none() || read.get(*i) != want.as_ref())
        .map(|(i, (number, _, want))| {
            format!(
                "part {number} holds other bytes than the ones signed for it (MD5 {} stored, {} signed); upload the file again",
                read.get(i).map_or_else(|| "none".to_owned(), Md5Digest::to_hex),
                want.as_ref().map_or_else(|| "none".to_owned(), Md5Digest::to_hex),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn hashed(blocks: &[&[u8]], lengths: Vec<u64>) -> Vec<Md5Digest> {
        let (tx, rx) = mpsc::channel(8);
        let task = spawn(rx, lengths);
        for block in blocks {
            tx.send(Bytes::copy_from_slice(block)).await.unwrap();
        }
        drop(tx);
        task.await.unwrap()
    }

    fn md5(bytes: &[u8]) -> Md5Digest {
        Md5Digest::from_bytes(&md5::Md5::digest(bytes)).unwrap()
    }

    #[tokio::test]
    async fn parts_are_hashed_by_their_ranges_whatever_the_blocks() {
        let parts = [b"aaaaa".as_slice(), b"bbbbb", b"cc"];
        // Blocks straddling the parts' edges.
        let got = hashed(&[b"aaa", b"aabbbbbc", b"c"], vec![5, 5, 2]).await;
        assert_eq!(got, parts.iter().map(|p| md5(p)).collect::<Vec<_>>());
        // A file cut short: its last part is hashed as it is, and differs.
        let short = hashed(&[b"aaaaabb"], vec![5, 5]).await;
        assert_eq!(short, vec![md5(b"aaaaa"), md5(b"bb")]);
    }

    #[test]
    fn the_first_part_not_as_signed_is_named() {
        let signed = vec![
            (1, 5, Some(md5(b"aaaaa"))),
            (2, 5, Some(md5(b"bbbbb"))),
            (3, 2, Some(md5(b"cc"))),
        ];
        let read = vec![md5(b"aaaaa"), md5(b"BBBBB"), md5(b"cc")];
        let said = first_swapped(&signed, &read).expect("part 2 differs");
        assert!(said.starts_with("part 2 holds other bytes"), "{said}");
        assert!(said.contains(&md5(b"BBBBB").to_hex()), "{said}");
        let honest = vec![md5(b"aaaaa"), md5(b"bbbbb"), md5(b"cc")];
        assert_eq!(first_swapped(&signed, &honest), None);
        // A part never signed is never taken as signed.
        let unsigned = vec![(1, 5, None)];
        assert!(first_swapped(&unsigned, &honest[..1]).is_some());
    }
}
