//! The small file that lets an upload be resumed after the client was killed.
//!
//! It names the upload and the file (path, size, modification time) and keeps the
//! parts this client saw stored, as ranges. The server's record of stored parts stays
//! the authority on resume; the state file is how the client finds its upload again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use md5::Digest;
use serde::{Deserialize, Serialize};

use crate::ClientError;

/// What is kept about one upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    /// The upload's id.
    pub upload_id: String,
    /// The server it was created on.
    pub endpoint: String,
    /// The file, as given when the upload started (made absolute).
    pub file: PathBuf,
    /// The file's size then.
    pub size_bytes: u64,
    /// The file's modification time then, in nanoseconds since the epoch.
    pub modified_ns: u128,
    /// Part ranges (first, last) this client saw stored.
    pub parts_done: Vec<(u32, u32)>,
}

/// A file's size and modification time.
pub fn identity(file: &Path) -> Result<(u64, u128), ClientError> {
    let meta = std::fs::metadata(file)?;
    let modified = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok((meta.len(), modified))
}

impl UploadState {
    /// A state for a new upload of `file`.
    pub fn new(upload_id: &str, endpoint: &str, file: &Path) -> Result<Self, ClientError> {
        let (size_bytes, modified_ns) = identity(file)?;
        Ok(Self {
            upload_id: upload_id.to_owned(),
            endpoint: endpoint.to_owned(),
            file: std::path::absolute(file)?,
            size_bytes,
            modified_ns,
            parts_done: Vec::new(),
        })
    }

    /// Where the state of `file`'s upload lives in `dir`: one file per absolute path.
    pub fn path_for(dir: &Path, file: &Path) -> Result<PathBuf, ClientError> {
        let absolute = std::path::absolute(file)?;
        let digest = md5::Md5::digest(absolute.as_os_str().as_encoded_bytes());
        Ok(dir.join(format!("{}.json", hex::encode(digest))))
    }

    /// Reads a state file; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, ClientError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                ClientError::State(format!(
                    "{} is not a state file this client wrote ({e}); delete it to start over",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the state atomically: a crash leaves the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile_in(dir)?;
        tmp.1
            .write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, path)?;
        Ok(())
    }

    /// Checks that `file` is still the file this upload was started with.
    pub fn check_file(&self, file: &Path) -> Result<(), ClientError> {
        let (size, modified) = identity(file)?;
        if size != self.size_bytes || modified != self.modified_ns {
            return Err(ClientError::FileChanged(format!(
                "{} changed since upload {} started ({} bytes then, {size} now); \
                 start a new upload",
                file.display(),
                self.upload_id,
                self.size_bytes
            )));
        }
        Ok(())
    }

    /// Records part `number` as stored.
    pub fn mark_done(&mut self, number: u32) {
        let ranges = &mut self.parts_done;
        let at = ranges.partition_point(|&(_, last)| last < number);
        if at < ranges.len() && ranges[at].0 <= number {
            return;
        }
        let joins_left = at > 0 && ranges[at - 1].1 + 1 == number;
        let joins_right = at < ranges.len() && ranges[at].0 == number + 1;
        match (joins_left, joins_right) {
            (true, true) => {
                ranges[at - 1].1 = ranges[at].1;
                ranges.remove(at);
            }
            (true, false) => ranges[at - 1].1 = number,
            (false, true) => ranges[at].0 = number,
            (false, false) => ranges.insert(at, (number, number)),
        }
    }

    /// How many parts are recorded as stored.
    pub fn done_count(&self) -> u64 {
        self.parts_done
            .iter()
            .map(|&(a, b)| u64::from(b - a) + 1)
            .sum()
    }
}

fn tempfile_in(dir: &Path) -> Result<(PathBuf, std::fs::File), ClientError> {
    let path = dir.join(format!(
        ".state-{}-{}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_kept_as_merged_ranges_in_any_order() {
        let mut s = UploadState {
            upload_id: "u".into(),
            endpoint: "e".into(),
            file: "f".into(),
            size_bytes: 0,
            modified_ns: 0,
            parts_done: vec![],
        };
        for n in [5, 1, 3, 2, 9, 4, 3, 8] {
            s.mark_done(n);
        }
        assert_eq!(s.parts_done, vec![(1, 5), (8, 9)]);
        assert_eq!(s.done_count(), 7);
        s.mark_done(7);
        s.mark_done(6);
        assert_eq!(s.parts_done, vec![(1, 9)]);
    }

    #[test]
    fn a_state_survives_a_round_trip_and_notices_a_changed_file() {
        let dir = std::env::temp_dir().join(format!("upload-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("data.bin");
        std::fs::write(&file, b"hello").unwrap();
        let path = UploadState::path_for(&dir, &file).unwrap();
        assert!(UploadState::load(&path).unwrap().is_none());
        let mut s = UploadState::new("u1", "http://x", &file).unwrap();
        s.mark_done(1);
        s.save(&path).unwrap();
        let back = UploadState::load(&path).unwrap().unwrap();
        assert_eq!(back, s);
        back.check_file(&file).unwrap();
        std::fs::write(&file, b"hello, changed").unwrap();
        let err = back.check_file(&file).unwrap_err().to_string();
        assert!(err.contains("changed since upload u1 started"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
