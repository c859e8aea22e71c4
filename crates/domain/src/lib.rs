#![doc = include_str!("../README.md")]
//!
//! Where things live: `words` declares the vocabulary enums; `access` the roles,
//! scopes, RPCs and the authorization table; `state` and `item`
//! hold the two state machines; `history` why and by whom they changed; `failure`, `scan`, `hold` (what a later finding does to passed content), `notification` and `bucket`
//! the words the pipeline records; `hash` the content digests; `download` when a version may be downloaded; `part_pin` how a part is pinned in its signed URL (MD5 or SHA-256); `ids`, `seller`
//! and `file` the values a request carries; `plan` the part plan; `policy` the
//! type allow-list; `file_type` what a file is by its declaration, bytes and name; `queue` the job queues; `submission` the rules of SubmitItem.

mod access;
mod bucket;
mod download;
mod error;
mod failure;
mod file;
mod file_type;
mod hash;
mod history;
mod hold;
mod ids;
mod item;
mod notification;
mod part_pin;
mod plan;
mod policy;
mod queue;
#[cfg(test)]
mod readme;
mod refusal;
mod scan;
mod seller;
mod stage;
mod state;
mod submission;
mod text;
mod words;

pub use access::{
    Delegation, DelegationRefusal, ITEM_SERVICE, Principal, Reach, Role, Rpc, Rule, Scope, TABLE,
    UPLOAD_SERVICE, rule,
};
pub use bucket::{Bucket, PreviewKind, QUARANTINE_DAYS};
pub use download::{DownloadRefusal, VersionStanding};
pub use error::DomainError;
pub use failure::{Failure, FailureCode, FailureSubject};
pub use file::{ContentType, FileName};
pub use file_type::{FileEvidence, Judged, is_software_type};
pub use hash::{ContentHash, Md5Digest, Sha256Digest};
pub use history::{Actor, ChangeCause};
pub use hold::{
    ObjectChange, ObjectStanding, StoredRescan, rescan_quarantines_ready, rescan_stored,
    rescan_unread,
};
pub use ids::{FileId, ItemId, NotificationId, SubmissionId, UploadId};
pub use item::{
    IdempotencyKey, ItemFields, ItemKind, MAX_ITEM_FILES, SubmissionEvent, SubmissionState,
    SubmissionTransitionError,
};
pub use notification::NotificationKind;
pub use part_pin::{PartChecksum, PartPin};
pub use plan::{MAX_PART_COUNT, MAX_PART_SIZE, MIN_PART_SIZE, PartNumber, PartPlan};
pub use policy::{MediaKind, TypePolicy, TypeRejection, UNKNOWN_TYPE, demuxers};
pub use queue::Queue;
pub use refusal::{REFUSAL_DOMAIN, Refusal};
pub use scan::{
    Classified, RescanState, ScanVerdict, ScannerAnswer, ScannerVersion, Uninspected, classify,
    uninspected_by,
};
pub use seller::{Caller, SellerGroup, SellerId};
pub use stage::{Stage, StageStatus, processing_settled};
pub use state::{TransitionError, UploadEvent, UploadState};
pub use submission::{
    ItemOnRecord, SubmissionPlan, SubmitRefusal, UploadOnRecord, plan_submission,
};
pub use text::is_invisible_format;
pub use words::UnknownWord;
