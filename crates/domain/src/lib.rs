#![doc = include_str!("../README.md")]

mod error;
mod file;
mod ids;
mod item;
mod plan;
mod policy;
mod seller;
mod stage;
mod state;

pub use error::DomainError;
pub use file::{ContentType, FileName, Md5Digest};
pub use ids::{FileId, ItemId, UploadId};
pub use item::{
    IdempotencyKey, ItemFields, ItemKind, MAX_ITEM_FILES, SubmissionEvent, SubmissionState,
    SubmissionTransitionError,
};
pub use plan::{MAX_PART_COUNT, MAX_PART_SIZE, MIN_PART_SIZE, PartNumber, PartPlan};
pub use policy::{MediaKind, TypePolicy, TypeRejection, UNKNOWN_TYPE};
pub use seller::{Caller, SellerGroup, SellerId};
pub use stage::{Stage, StageStatus};
pub use state::{TransitionError, UploadEvent, UploadState};
