use upload_domain::{Bucket, Md5Digest, SellerId, UploadId};

/// Every object key the service uses comes from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageKey<'a> {
    /// An upload in the temp bucket: unique by construction (a UUID v7 per upload
    /// under the owner's prefix), never derived from the file name.
    Temp {
        /// The upload's owner.
        owner: &'a SellerId,
        /// The upload.
        upload: UploadId,
    },
    /// An infected upload, moved to quarantine under the same unique name.
    Quarantine {
        /// The upload's owner.
        owner: &'a SellerId,
        /// The upload.
        upload: UploadId,
    },
    /// A stored file that a later scan found infected and an operator confirmed,
    /// moved to quarantine under its MD5.
    QuarantinedContent {
        /// The content's MD5.
        md5: Md5Digest,
    },
    /// A stored file that a later scan flagged, held for an operator's review:
    /// in the regular bucket (nothing expires there), out of the downloads' key.
    HeldContent {
        /// The content's MD5.
        md5: Md5Digest,
    },
    /// A preview made from an upload (thumbnail, clip), beside it in the temp
    /// bucket until the file is stored. `name` is chosen by the preview job, never
    /// by a user.
    Preview {
        /// The upload previewed.
        upload: UploadId,
        /// `thumb-256.jpg`, `clip.mp4`, ...
        name: &'a str,
    },
    /// A stored file in the regular bucket, named by the hex MD5 of its content.
    Content {
        /// The content's MD5.
        md5: Md5Digest,
    },
    /// A preview of a stored file, moved beside it into the regular bucket. Named
    /// by the content's MD5 too: the same bytes give the same previews.
    StoredPreview {
        /// The previewed content's MD5.
        md5: Md5Digest,
        /// `thumb-256.jpg`, `clip.mp4`, ...
        name: &'a str,
    },
}

impl StorageKey<'_> {
    /// The bucket the key lives in.
    pub fn bucket(&self) -> Bucket {
        match self {
            StorageKey::Temp { .. } | StorageKey::Preview { .. } => Bucket::Temp,
            StorageKey::Quarantine { .. } | StorageKey::QuarantinedContent { .. } => {
                Bucket::Quarantine
            }
            StorageKey::Content { .. }
            | StorageKey::StoredPreview { .. }
            | StorageKey::HeldContent { .. } => Bucket::Regular,
        }
    }

    /// The key inside its bucket.
    pub fn key(&self) -> String {
        match self {
            StorageKey::Temp { owner, upload } => format!("uploads/{owner}/{upload}"),
            StorageKey::Quarantine { owner, upload } => format!("infected/{owner}/{upload}"),
            StorageKey::Preview { upload, name } => format!("previews/{upload}/{name}"),
            StorageKey::Content { md5 } => format!("files/{md5}"),
            StorageKey::QuarantinedContent { md5 } => format!("infected-files/{md5}"),
            StorageKey::HeldContent { md5 } => format!("held/{md5}"),
            StorageKey::StoredPreview { md5, name } => format!("previews/{md5}/{name}"),
        }
    }
}

/// A multipart upload in the store: the object it assembles and the store's id
/// for it. Built from an upload's row (owner, id, recorded store id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload<'a> {
    /// The object being assembled.
    pub key: StorageKey<'a>,
    /// The store's id of the multipart upload.
    pub store_upload_id: &'a str,
}

impl<'a> MultipartUpload<'a> {
    /// The multipart upload of `owner`'s upload `upload`, which the store knows as
    /// `store_upload_id`.
    pub fn of(owner: &'a SellerId, upload: UploadId, store_upload_id: &'a str) -> Self {
        Self {
            key: StorageKey::Temp { owner, upload },
            store_upload_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_keys_are_unique_per_upload_and_ignore_file_names() {
        let owner: SellerId = "seller-1".parse().unwrap();
        let a = StorageKey::Temp {
            owner: &owner,
            upload: UploadId::new(),
        }
        .key();
        let b = StorageKey::Temp {
            owner: &owner,
            upload: UploadId::new(),
        }
        .key();
        assert_ne!(a, b);
        assert!(a.starts_with("uploads/seller-1/"));
    }

    #[test]
    fn previews_live_beside_their_upload_under_their_own_prefix() {
        let upload = UploadId::new();
        let key = StorageKey::Preview {
            upload,
            name: "thumb-256.jpg",
        };
        assert_eq!(key.bucket(), Bucket::Temp);
        assert_eq!(key.key(), format!("previews/{upload}/thumb-256.jpg"));
    }

    #[test]
    fn content_keys_are_the_md5() {
        let md5: Md5Digest = "44d88612fea8a8f36de82e1278abb02f".parse().unwrap();
        let key = StorageKey::Content { md5 };
        assert_eq!(key.bucket(), Bucket::Regular);
        assert_eq!(key.key(), "files/44d88612fea8a8f36de82e1278abb02f");
        let preview = StorageKey::StoredPreview {
            md5,
            name: "poster.jpg",
        };
        assert_eq!(preview.bucket(), Bucket::Regular);
        assert_eq!(
            preview.key(),
            "previews/44d88612fea8a8f36de82e1278abb02f/poster.jpg"
        );
        assert!(
            !preview.key().starts_with("files/"),
            "previews never share the files' prefix"
        );
        let held = StorageKey::HeldContent { md5 };
        assert_eq!(
            held.bucket(),
            Bucket::Regular,
            "held content expires nowhere"
        );
        assert_eq!(held.key(), "held/44d88612fea8a8f36de82e1278abb02f");
    }
}
