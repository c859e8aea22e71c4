//! The whole upload of one file: create or find the upload, send what the store
//! lacks, complete; with a state file so a killed client picks up where it stopped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{ClientError, Event, SendOptions, SendStats, UploadClient, UploadState, pb};

/// An upload ready to send: new, or found again from its state file.
#[derive(Debug)]
pub struct PlannedUpload {
    /// The upload as the server has it.
    pub upload: pb::Upload,
    /// The parts the store does not hold yet, from the server's record.
    pub missing: Vec<u32>,
    /// Whether this continues an upload started earlier.
    pub resumed: bool,
    file: PathBuf,
    state: Option<(PathBuf, UploadState)>,
}

impl PlannedUpload {
    /// Bytes of the parts the store already holds.
    pub fn bytes_stored(&self) -> u64 {
        let missing: u64 = self
            .missing
            .iter()
            .filter_map(|&n| crate::part_range(&self.upload, n).ok())
            .map(|(_, len)| len)
            .sum();
        self.upload.size_bytes - missing
    }
}

fn is_state(upload: &pb::Upload, state: pb::UploadState) -> bool {
    upload.state == state as i32
}

/// Whether parts may still be sent: created (nothing signed yet) or uploading.
fn is_open(upload: &pb::Upload) -> bool {
    is_state(upload, pb::UploadState::Created) || is_state(upload, pb::UploadState::Uploading)
}

impl UploadClient {
    /// Plans the upload of `file`. With a `state_dir`, an upload of the same file that
    /// was interrupted (the client killed, the network gone) is continued: the server
    /// says which parts the store holds, and only the others are sent.
    pub async fn plan_file(
        &self,
        file: &Path,
        content_type: &str,
        part_size: Option<u64>,
        state_dir: Option<&Path>,
    ) -> Result<PlannedUpload, ClientError> {
        if let Some(dir) = state_dir {
            let path = UploadState::path_for(dir, file)?;
            if let Some(state) = UploadState::load(&path)? {
                match self.plan_from_state(file, path.clone(), state).await? {
                    Some(planned) => return Ok(planned),
                    None => {
                        std::fs::remove_file(&path)?;
                    }
                }
            }
        }
        let upload = self.start_file(file, content_type, part_size).await?;
        let state = match state_dir {
            Some(dir) => {
                let path = UploadState::path_for(dir, file)?;
                let state = UploadState::new(&upload.upload_id, &self.endpoint, file)?;
                state.save(&path)?;
                Some((path, state))
            }
            None => None,
        };
        Ok(PlannedUpload {
            missing: (1..=upload.part_count).collect(),
            upload,
            resumed: false,
            file: file.to_owned(),
            state,
        })
    }

    /// Continues the upload of `file` recorded in `state_dir`; an error if there is none.
    pub async fn plan_resume(
        &self,
        file: &Path,
        state_dir: &Path,
    ) -> Result<PlannedUpload, ClientError> {
        let path = UploadState::path_for(state_dir, file)?;
        let state = UploadState::load(&path)?.ok_or_else(|| {
            ClientError::State(format!(
                "no interrupted upload of {} is recorded in {}",
                file.display(),
                state_dir.display()
            ))
        })?;
        let id = state.upload_id.clone();
        self.plan_from_state(file, path, state).await?.ok_or_else(|| {
            ClientError::Upload(format!(
                "upload {id} can no longer be continued (aborted or expired); upload the file again"
            ))
        })
    }

    /// Continues upload `upload_id` of `file` from the server's record alone (no state
    /// file: another machine, a lost state directory).
    pub async fn plan_upload_id(
        &self,
        file: &Path,
        upload_id: &str,
    ) -> Result<PlannedUpload, ClientError> {
        let upload = self.get(upload_id).await?.upload.ok_or_else(|| {
            ClientError::Upload(format!("the server returned no upload {upload_id}"))
        })?;
        let (size, _) = crate::state::identity(file)?;
        if size != upload.size_bytes {
            return Err(ClientError::FileChanged(format!(
                "upload {upload_id} is for {} bytes but {} has {size}; is it the same file?",
                upload.size_bytes,
                file.display()
            )));
        }
        let missing = self.still_missing(&upload).await?.ok_or_else(|| {
            ClientError::Upload(format!(
                "upload {upload_id} can no longer be continued (aborted or expired); upload the file again"
            ))
        })?;
        Ok(PlannedUpload {
            upload,
            missing,
            resumed: true,
            file: file.to_owned(),
            state: None,
        })
    }

    /// `None` when the recorded upload is gone (aborted, expired): start afresh.
    async fn plan_from_state(
        &self,
        file: &Path,
        path: PathBuf,
        state: UploadState,
    ) -> Result<Option<PlannedUpload>, ClientError> {
        if state.endpoint != self.endpoint {
            return Err(ClientError::State(format!(
                "the interrupted upload of {} was started on {}, not {}; use that server or \
                 delete {}",
                file.display(),
                state.endpoint,
                self.endpoint,
                path.display()
            )));
        }
        state.check_file(file)?;
        let upload = match self.get(&state.upload_id).await {
            Ok(res) => res.upload,
            Err(ClientError::Rpc(s)) if s.code() == tonic::Code::NotFound => None,
            Err(e) => return Err(e),
        };
        let Some(upload) = upload else {
            return Ok(None);
        };
        let Some(missing) = self.still_missing(&upload).await? else {
            return Ok(None);
        };
        Ok(Some(PlannedUpload {
            upload,
            missing,
            resumed: true,
            file: file.to_owned(),
            state: Some((path, state)),
        }))
    }

    /// The parts a found upload still needs from the server's record: none once it
    /// was completed (the client killed after CompleteUpload), `None` when it can no
    /// longer be continued (aborted, expired).
    async fn still_missing(&self, upload: &pb::Upload) -> Result<Option<Vec<u32>>, ClientError> {
        if is_open(upload) {
            Ok(Some(self.missing_parts(&upload.upload_id).await?))
        } else if is_state(upload, pb::UploadState::Aborted)
            || is_state(upload, pb::UploadState::Expired)
        {
            Ok(None)
        } else {
            Ok(Some(Vec::new()))
        }
    }

    /// Sends what `planned` lacks, completes the upload and removes its state file.
    /// The state file is brought up to date as parts are stored.
    pub async fn finish(
        &self,
        planned: PlannedUpload,
        options: SendOptions,
        observe: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Result<(pb::Upload, SendStats), ClientError> {
        let PlannedUpload {
            upload,
            missing,
            state,
            file,
            ..
        } = planned;
        let state_path = state.as_ref().map(|(p, _)| p.clone());
        let state = state.map(|(p, s)| (p, Arc::new(Mutex::new(s))));
        let stats = if missing.is_empty() {
            SendStats::default()
        } else {
            let keeper = state.clone();
            self.send_parts_observed(&upload, &file, &missing, options, move |event| {
                if let (Event::PartSent { part, .. }, Some((path, state))) = (event, &keeper) {
                    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
                    s.mark_done(*part);
                    if let Err(e) = s.save(path) {
                        tracing::warn!(error = %e, "cannot update the state file");
                    }
                }
                observe(event);
            })
            .await?
        };
        let done = if is_open(&upload) {
            self.complete(&upload.upload_id).await?
        } else {
            upload
        };
        if let Some(path) = state_path {
            std::fs::remove_file(path)?;
        }
        Ok((done, stats))
    }
}
