//! SubmitItem: parse, check and queue in one transaction; answer at once.

use sha2::Digest;
use upload_db::submit::{Accepted, SubmitRequest};
use upload_domain::{
    Actor, Caller, FileId, IdempotencyKey, ItemFields, ItemKind, MAX_ITEM_FILES, UploadId,
};
use upload_proto::v1 as pb;

use super::{Need, item_for, item_id, view};
use crate::error::ApiError;
use crate::state::AppState;

fn kind(raw: i32) -> Result<ItemKind, ApiError> {
    match pb::ItemKind::try_from(raw) {
        Ok(pb::ItemKind::DigitalFile) => Ok(ItemKind::DigitalFile),
        Ok(pb::ItemKind::Video) => Ok(ItemKind::Video),
        _ => Err(ApiError::invalid(
            "kind",
            "kind is required: ITEM_KIND_DIGITAL_FILE or ITEM_KIND_VIDEO",
        )),
    }
}

/// The request's files, parsed; each upload at most once.
fn files(raw: &[pb::FileToSubmit]) -> Result<Vec<(UploadId, Option<FileId>)>, ApiError> {
    if raw.len() > MAX_ITEM_FILES {
        return Err(ApiError::invalid(
            "files",
            format!(
                "at most {MAX_ITEM_FILES} files per submission; {} were given",
                raw.len()
            ),
        ));
    }
    let mut out: Vec<(UploadId, Option<FileId>)> = Vec::with_capacity(raw.len());
    for f in raw {
        if f.upload_id.is_empty() {
            return Err(ApiError::invalid("files", "every file needs an upload_id"));
        }
        let upload: UploadId = f.upload_id.parse()?;
        if out.iter().any(|(u, _)| *u == upload) {
            return Err(ApiError::invalid(
                "files",
                format!("upload {upload} is given twice"),
            ));
        }
        let file = if f.file_id.is_empty() {
            None
        } else {
            Some(f.file_id.parse()?)
        };
        out.push((upload, file));
    }
    Ok(out)
}

/// A digest of everything the request asks for, to tell a retry of it from a
/// different request under the same key.
fn digest(req: &pb::SubmitItemRequest) -> String {
    let mut sha = sha2::Sha256::new();
    for part in [
        req.item_id.as_str(),
        &req.kind.to_string(),
        req.title.trim(),
        req.description.trim(),
    ] {
        sha.update(part.len().to_le_bytes());
        sha.update(part.as_bytes());
    }
    for f in &req.files {
        for part in [f.upload_id.trim(), f.file_id.trim()] {
            sha.update(part.len().to_le_bytes());
            sha.update(part.as_bytes());
        }
    }
    hex::encode(sha.finalize())
}

/// Handles SubmitItem.
pub async fn handle_submit_item(
    state: &AppState,
    caller: &Caller,
    req: pb::SubmitItemRequest,
) -> Result<pb::SubmitItemResponse, ApiError> {
    let key: IdempotencyKey = req.idempotency_key.parse()?;
    let kind = kind(req.kind)?;
    let fields = ItemFields::parse(&req.title, &req.description)?;
    let files = files(&req.files)?;
    let existing = if req.item_id.is_empty() {
        None
    } else {
        Some(item_id(&req.item_id)?)
    };
    let digest = digest(&req);
    let by = Actor::caller(caller);
    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    let accepted: Accepted = upload_db::submit::submit(
        &mut conn,
        SubmitRequest {
            owner: &caller.seller_id,
            item_id: existing,
            kind,
            fields: &fields,
            key: &key,
            digest: &digest,
            files: &files,
            by: &by,
        },
    )
    .await??;
    drop(conn);
    if accepted.repeated {
        tracing::info!(submission = %accepted.submission_id, "submission repeated under its key");
    } else {
        tracing::info!(submission = %accepted.submission_id, item = %accepted.item_id, "submission queued");
    }
    let row = item_for(state, caller, accepted.item_id, Need::Own).await?;
    let (item, _) = view::snapshot(state, row).await?;
    Ok(pb::SubmitItemResponse {
        item: Some(item),
        submission_id: accepted.submission_id.to_string(),
        files: accepted
            .files
            .iter()
            .map(|f| pb::FileToSubmit {
                upload_id: f.upload_id.to_string(),
                file_id: f.file_id.to_string(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_has_the_digest_of_its_original_and_any_change_another() {
        let req = pb::SubmitItemRequest {
            idempotency_key: "k1".into(),
            title: "Font pack".into(),
            kind: pb::ItemKind::DigitalFile as i32,
            files: vec![pb::FileToSubmit {
                upload_id: "a".into(),
                file_id: String::new(),
            }],
            ..Default::default()
        };
        let same = pb::SubmitItemRequest {
            title: " Font pack ".into(),
            ..req.clone()
        };
        assert_eq!(
            digest(&req),
            digest(&same),
            "trimmed like the fields it saves"
        );
        let retitled = pb::SubmitItemRequest {
            title: "Font pack 2".into(),
            ..req.clone()
        };
        assert_ne!(digest(&req), digest(&retitled));
        // Field boundaries count: moving text from title to description differs.
        let a = pb::SubmitItemRequest {
            title: "ab".into(),
            description: "c".into(),
            ..req.clone()
        };
        let b = pb::SubmitItemRequest {
            title: "a".into(),
            description: "bc".into(),
            ..req
        };
        assert_ne!(digest(&a), digest(&b));
    }
}
