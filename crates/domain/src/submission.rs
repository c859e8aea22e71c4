//! The rules of SubmitItem, as a pure decision: given the request, the item and
//! the uploads as the database holds them (locked), either a plan of what to write
//! or the refusal a seller reads. The database layer only locks, reads and writes.

use crate::{FileId, ItemId, ItemKind, MediaKind, ScanVerdict, UploadId, UploadState};

/// The item a submission names, as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOnRecord {
    /// No item given: the submission creates one.
    New,
    /// The caller's item, with its files, oldest first.
    Existing {
        /// The item.
        id: ItemId,
        /// Its kind, fixed at creation.
        kind: ItemKind,
        /// Its files, oldest first.
        files: Vec<FileId>,
    },
    /// An item that does not exist, or is someone else's (not told apart).
    Missing(ItemId),
}

/// One upload a submission names, as the database holds it (locked). Uploads that
/// do not exist or are someone else's are simply absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOnRecord {
    /// The upload.
    pub id: UploadId,
    /// Its state.
    pub state: UploadState,
    /// Its scan verdict, once scanned.
    pub verdict: Option<ScanVerdict>,
    /// What its bytes are, once scanned.
    pub sniffed_content_type: Option<String>,
    /// Why it stopped, when it did.
    pub failure_message: Option<String>,
}

/// What an accepted submission writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionPlan {
    /// The item: the existing one, or a fresh id.
    pub item_id: ItemId,
    /// True when the item is created by this submission.
    pub creates_item: bool,
    /// Files created by this submission.
    pub new_files: Vec<FileId>,
    /// Each upload with the file it becomes the next version of, in request order.
    pub files: Vec<(UploadId, FileId)>,
}

/// Why a submission was refused, in words a seller can act on. Nothing is written
/// when one is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitRefusal {
    /// The key was used before for a different request.
    #[error(
        "idempotency key {0:?} was already used for a different submission; use a new key for a new submission"
    )]
    KeyReused(String),
    /// The item does not exist or belongs to someone else.
    #[error("item {0} not found")]
    ItemNotFound(ItemId),
    /// An update asked for another kind than the item's.
    #[error("item {item} is a {actual} item; it cannot be submitted as a {asked} item")]
    KindChanged {
        /// The item.
        item: ItemId,
        /// Its kind.
        actual: ItemKind,
        /// The kind asked for.
        asked: ItemKind,
    },
    /// A new item without files.
    #[error("a new item needs at least one file: give the upload_id of a ready upload")]
    NoFiles,
    /// More files than the kind allows.
    #[error("a {kind} item holds at most {max} file(s); this submission would give it {would}")]
    TooManyFiles {
        /// The kind.
        kind: ItemKind,
        /// Its limit.
        max: usize,
        /// Files the item would have.
        would: usize,
    },
    /// A file id that is not one of the item's files.
    #[error("file {0} is not a file of this item; leave file_id empty to add a new file")]
    UnknownFile(FileId),
    /// Two uploads for the same file in one submission.
    #[error("file {0} is given two uploads in one submission; submit one new version at a time")]
    DuplicateFile(FileId),
    /// The upload does not exist or belongs to someone else.
    #[error("upload {0} not found")]
    UploadNotFound(UploadId),
    /// The upload is not ready (or not clean).
    #[error("upload {upload} cannot be submitted: {reason}")]
    UploadNotReady {
        /// The upload.
        upload: UploadId,
        /// Why, for the seller.
        reason: String,
    },
    /// A video item's file that is not a video.
    #[error("upload {upload} is {sniffed}, not a video; a video item's file must be a video")]
    NotAVideo {
        /// The upload.
        upload: UploadId,
        /// Its sniffed type.
        sniffed: String,
    },
}

/// Why an upload cannot be submitted, in words a seller can act on.
fn not_ready_reason(upload: &UploadOnRecord) -> String {
    let why = upload
        .failure_message
        .as_deref()
        .unwrap_or("no reason recorded");
    let state = upload.state;
    match state {
        UploadState::Created | UploadState::Uploading => {
            "it is not complete yet: send its parts and call CompleteUpload".into()
        }
        UploadState::Uploaded | UploadState::Scanning | UploadState::Processing => {
            "it is still being scanned and processed; submit it once it is ready".into()
        }
        UploadState::Submitted => "it is already part of a submission in progress".into(),
        UploadState::Stored => {
            "it is already stored as a version of an item; upload the file again to use it elsewhere".into()
        }
        UploadState::Quarantined => {
            format!("malware was found in it ({why}); it can never be submitted")
        }
        UploadState::Rejected | UploadState::Failed => format!("it is {state}: {why}"),
        UploadState::Aborted | UploadState::Expired => {
            format!("it was {state}; upload the file again")
        }
        UploadState::Ready => "it has no clean scan on record".into(),
    }
}

/// Decides a submission of `kind` for `item` bringing `files` (each upload with the
/// file it should become a version of, `None` for a new file), given `uploads` as
/// the database holds them. Checks come in a fixed order (the item, the files, then
/// each upload by id), so the same request always meets the same refusal first.
pub fn plan_submission(
    kind: ItemKind,
    item: &ItemOnRecord,
    files: &[(UploadId, Option<FileId>)],
    uploads: &[UploadOnRecord],
) -> Result<SubmissionPlan, SubmitRefusal> {
    let (item_id, existing): (ItemId, &[FileId]) = match item {
        ItemOnRecord::New => (ItemId::new(), &[]),
        ItemOnRecord::Missing(id) => return Err(SubmitRefusal::ItemNotFound(*id)),
        ItemOnRecord::Existing {
            id,
            kind: actual,
            files,
        } => {
            if *actual != kind {
                return Err(SubmitRefusal::KindChanged {
                    item: *id,
                    actual: *actual,
                    asked: kind,
                });
            }
            (*id, files)
        }
    };
    let creates_item = matches!(item, ItemOnRecord::New);
    if creates_item && files.is_empty() {
        return Err(SubmitRefusal::NoFiles);
    }
    let mut planned: Vec<(UploadId, FileId)> = Vec::with_capacity(files.len());
    let mut new_files = Vec::new();
    for &(upload, file) in files {
        let file = match (kind, file, existing.first()) {
            // A video item has one file: every upload is its next version.
            (ItemKind::Video, _, Some(only)) => *only,
            (_, Some(file), _) if existing.contains(&file) => file,
            (_, Some(file), _) => return Err(SubmitRefusal::UnknownFile(file)),
            (_, None, _) => {
                let file = FileId::new();
                new_files.push(file);
                file
            }
        };
        if planned.iter().any(|(_, f)| *f == file) {
            return Err(SubmitRefusal::DuplicateFile(file));
        }
        planned.push((upload, file));
    }
    let would = existing.len() + new_files.len();
    if would > kind.max_files() {
        return Err(SubmitRefusal::TooManyFiles {
            kind,
            max: kind.max_files(),
            would,
        });
    }
    let mut by_id: Vec<UploadId> = planned.iter().map(|(u, _)| *u).collect();
    by_id.sort();
    for id in by_id {
        let Some(upload) = uploads.iter().find(|u| u.id == id) else {
            return Err(SubmitRefusal::UploadNotFound(id));
        };
        let clean = upload.verdict.is_some_and(ScanVerdict::lets_through);
        if upload.state != UploadState::Ready || !clean {
            return Err(SubmitRefusal::UploadNotReady {
                upload: id,
                reason: not_ready_reason(upload),
            });
        }
        if kind == ItemKind::Video {
            let sniffed = upload.sniffed_content_type.clone().unwrap_or_default();
            if MediaKind::of(&sniffed) != MediaKind::Video {
                return Err(SubmitRefusal::NotAVideo {
                    upload: id,
                    sniffed,
                });
            }
        }
    }
    Ok(SubmissionPlan {
        item_id,
        creates_item,
        new_files,
        files: planned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(id: UploadId, sniffed: &str) -> UploadOnRecord {
        UploadOnRecord {
            id,
            state: UploadState::Ready,
            verdict: Some(ScanVerdict::Clean),
            sniffed_content_type: Some(sniffed.into()),
            failure_message: None,
        }
    }

    #[test]
    fn a_new_item_gets_a_new_file_per_upload() {
        let (a, b) = (UploadId::new(), UploadId::new());
        let plan = plan_submission(
            ItemKind::DigitalFile,
            &ItemOnRecord::New,
            &[(a, None), (b, None)],
            &[ready(a, "application/zip"), ready(b, "font/ttf")],
        )
        .unwrap();
        assert!(plan.creates_item);
        assert_eq!(plan.new_files.len(), 2);
        assert_eq!(plan.files.iter().map(|f| f.0).collect::<Vec<_>>(), [a, b]);
        assert_ne!(plan.files[0].1, plan.files[1].1);
    }

    #[test]
    fn a_video_item_takes_every_upload_as_its_one_files_next_version() {
        let (file, up) = (FileId::new(), UploadId::new());
        let item = ItemOnRecord::Existing {
            id: ItemId::new(),
            kind: ItemKind::Video,
            files: vec![file],
        };
        let plan = plan_submission(
            ItemKind::Video,
            &item,
            &[(up, None)],
            &[ready(up, "video/mp4")],
        )
        .unwrap();
        assert_eq!(plan.files, [(up, file)]);
        assert!(plan.new_files.is_empty() && !plan.creates_item);
        let zip = plan_submission(
            ItemKind::Video,
            &item,
            &[(up, None)],
            &[ready(up, "application/zip")],
        );
        assert!(matches!(zip, Err(SubmitRefusal::NotAVideo { .. })));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let up = UploadId::new();
        let missing = ItemId::new();
        assert_eq!(
            plan_submission(
                ItemKind::DigitalFile,
                &ItemOnRecord::Missing(missing),
                &[],
                &[]
            ),
            Err(SubmitRefusal::ItemNotFound(missing))
        );
        assert_eq!(
            plan_submission(ItemKind::DigitalFile, &ItemOnRecord::New, &[], &[]),
            Err(SubmitRefusal::NoFiles)
        );
        assert_eq!(
            plan_submission(
                ItemKind::DigitalFile,
                &ItemOnRecord::New,
                &[(up, None)],
                &[]
            ),
            Err(SubmitRefusal::UploadNotFound(up))
        );
        let mut infected = ready(up, "application/zip");
        infected.state = UploadState::Quarantined;
        infected.verdict = Some(ScanVerdict::Infected);
        infected.failure_message = Some("Eicar FOUND".into());
        let refusal = plan_submission(
            ItemKind::DigitalFile,
            &ItemOnRecord::New,
            &[(up, None)],
            &[infected],
        )
        .unwrap_err();
        assert!(refusal.to_string().contains("malware"), "{refusal}");
        // Ready but without a clean verdict on record: still refused.
        let mut unscanned = ready(up, "application/zip");
        unscanned.verdict = None;
        assert!(matches!(
            plan_submission(
                ItemKind::DigitalFile,
                &ItemOnRecord::New,
                &[(up, None)],
                &[unscanned]
            ),
            Err(SubmitRefusal::UploadNotReady { .. })
        ));
    }

    #[test]
    fn file_counts_and_file_ids_are_checked_against_the_item() {
        let files: Vec<FileId> = (0..20).map(|_| FileId::new()).collect();
        let item = ItemOnRecord::Existing {
            id: ItemId::new(),
            kind: ItemKind::DigitalFile,
            files: files.clone(),
        };
        let up = UploadId::new();
        assert!(matches!(
            plan_submission(
                ItemKind::DigitalFile,
                &item,
                &[(up, None)],
                &[ready(up, "x/y")]
            ),
            Err(SubmitRefusal::TooManyFiles { would: 21, .. })
        ));
        let stranger = FileId::new();
        assert_eq!(
            plan_submission(
                ItemKind::DigitalFile,
                &item,
                &[(up, Some(stranger))],
                &[ready(up, "x/y")]
            ),
            Err(SubmitRefusal::UnknownFile(stranger))
        );
        let other = UploadId::new();
        assert_eq!(
            plan_submission(
                ItemKind::DigitalFile,
                &item,
                &[(up, Some(files[0])), (other, Some(files[0]))],
                &[ready(up, "x/y"), ready(other, "x/y")]
            ),
            Err(SubmitRefusal::DuplicateFile(files[0]))
        );
        assert!(matches!(
            plan_submission(ItemKind::Video, &item, &[], &[]),
            Err(SubmitRefusal::KindChanged { .. })
        ));
    }
}
