//! The memory a transfer holds: each sending slot reads its part into a buffer that
//! goes back to a pool once the HTTP client lets go of the body, the body is handed
//! over in blocks (so a client that copies what it sends copies a block, not a
//! part), and hashing reads a part a block at a time. So a transfer holds one part
//! per slot and two blocks for hashing, whatever the file's size.

use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use md5::Digest;

/// The unit of reads for hashing and of the body handed to the HTTP client.
pub(crate) const BLOCK: usize = 1 << 20;

/// Part buffers no body holds any more, kept for the next part.
#[derive(Clone, Default)]
pub(crate) struct Pool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    made: Arc<std::sync::atomic::AtomicUsize>,
}

/// A part's bytes, back to the pool when the last `Bytes` of it is dropped.
struct Pooled {
    buf: Vec<u8>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Ok(mut free) = self.free.lock() {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

impl Pool {
    /// Reads `len` bytes at `offset` of `file` into a buffer of the pool (a new one
    /// only when every buffer is still held), on a blocking thread.
    pub(crate) async fn read(
        &self,
        file: &Arc<std::fs::File>,
        offset: u64,
        len: usize,
    ) -> std::io::Result<Bytes> {
        let (file, pool) = (Arc::clone(file), self.clone());
        tokio::task::spawn_blocking(move || {
            let reused = pool.free.lock().ok().and_then(|mut free| free.pop());
            let mut buf = reused.unwrap_or_else(|| {
                pool.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Vec::new()
            });
            buf.resize(len, 0);
            file.read_exact_at(&mut buf, offset)?;
            Ok(Bytes::from_owner(Pooled {
                buf,
                free: Arc::clone(&pool.free),
            }))
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// How many buffers the pool has made so far.
    #[cfg(test)]
    fn made(&self) -> usize {
        self.made.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The MD5 of `len` bytes at `offset` of `file`, read a block at a time on a
/// blocking thread.
pub(crate) async fn md5_of(
    file: &Arc<std::fs::File>,
    offset: u64,
    len: u64,
) -> std::io::Result<Vec<u8>> {
    let file = Arc::clone(file);
    tokio::task::spawn_blocking(move || {
        let mut hasher = md5::Md5::new();
        let mut block = vec![0u8; BLOCK];
        let mut done = 0u64;
        while done < len {
            let n = usize::try_from((len - done).min(BLOCK as u64)).unwrap_or(BLOCK);
            file.read_exact_at(&mut block[..n], offset + done)?;
            hasher.update(&block[..n]);
            done += n as u64;
        }
        Ok(hasher.finalize().to_vec())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// `bytes` as a request body of `BLOCK`-sized slices of the same memory.
pub(crate) fn body(bytes: &Bytes) -> reqwest::Body {
    reqwest::Body::wrap_stream(futures::stream::iter(
        blocks(bytes).into_iter().map(Ok::<_, std::io::Error>),
    ))
}

/// `bytes` in `BLOCK`-sized slices that share its memory.
fn blocks(bytes: &Bytes) -> Vec<Bytes> {
    (0..bytes.len())
        .step_by(BLOCK)
        .map(|at| bytes.slice(at..(at + BLOCK).min(bytes.len())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(bytes: &[u8]) -> Arc<std::fs::File> {
        let path = std::env::temp_dir().join(format!(
            "upload-client-buffers-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::write(&path, bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        Arc::new(file)
    }

    #[tokio::test]
    async fn a_buffer_comes_back_when_the_last_slice_of_its_body_is_dropped() {
        let data: Vec<u8> = (0..3 * BLOCK + 5).map(|i| (i % 251) as u8).collect();
        let file = file_of(&data);
        let pool = Pool::default();
        let first = pool.read(&file, 0, data.len()).await.unwrap();
        assert_eq!(&first[..], &data[..]);
        let slice = first.slice(BLOCK..2 * BLOCK);
        drop(first);
        // A slice still holds the part: the next read needs a buffer of its own.
        let second = pool.read(&file, 7, 100).await.unwrap();
        assert_eq!(&second[..], &data[7..107]);
        assert_eq!(pool.made(), 2);
        drop((slice, second));
        // Both are back: reads in turn reuse them, making none.
        for offset in [0, 11, 3 * BLOCK as u64] {
            let again = pool.read(&file, offset, 5).await.unwrap();
            let at = offset as usize;
            assert_eq!(&again[..], &data[at..at + 5]);
        }
        assert_eq!(pool.made(), 2);
    }

    #[tokio::test]
    async fn hashing_in_blocks_gives_the_whole_part_s_md5() {
        let data: Vec<u8> = (0..2 * BLOCK + 77).map(|i| (i % 253) as u8).collect();
        let file = file_of(&data);
        let len = (2 * BLOCK + 70) as u64;
        let md5 = md5_of(&file, 7, len).await.unwrap();
        assert_eq!(md5, md5::Md5::digest(&data[7..7 + len as usize]).to_vec());
        assert_eq!(
            md5_of(&file, 0, 0).await.unwrap(),
            md5::Md5::digest(b"").to_vec()
        );
    }

    #[test]
    fn a_body_is_the_part_in_blocks_of_the_same_memory() {
        let bytes = Bytes::from(vec![9u8; 2 * BLOCK + 1]);
        let blocks = blocks(&bytes);
        assert_eq!(
            blocks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [BLOCK, BLOCK, 1]
        );
        assert_eq!(blocks[1].as_ptr(), bytes[BLOCK..].as_ptr());
        assert!(super::blocks(&Bytes::new()).is_empty());
    }
}
