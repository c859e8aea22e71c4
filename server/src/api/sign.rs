use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use upload_db::uploads::SignedPartRecord;
use upload_domain::{Actor, Caller, PartNumber, PartPin};
use upload_proto::v1 as pb;

use crate::convert;
use crate::error::ApiError;
use crate::state::{AppState, UploadFacts};

/// The most parts one SignParts call may ask for.
pub const MAX_PARTS_PER_CALL: usize = 1000;

/// SignPart and SignParts: check every part against the plan, record and presign.
/// All parts are signed or none: a bad part fails the whole call.
pub async fn handle_sign_parts(
    state: &AppState,
    caller: &Caller,
    raw_upload_id: &str,
    parts: Vec<pb::PartToSign>,
) -> Result<Vec<pb::SignedPart>, ApiError> {
    let id = super::upload_id(raw_upload_id)?;
    if parts.is_empty() {
        return Err(ApiError::invalid(
            "parts",
            "parts is empty: give at least one part to sign",
        ));
    }
    if parts.len() > MAX_PARTS_PER_CALL {
        return Err(ApiError::invalid(
            "parts",
            format!(
                "{} parts asked for; sign at most {MAX_PARTS_PER_CALL} per call",
                parts.len()
            ),
        ));
    }
    let facts = state.owned_facts(caller, id).await?;
    let now = Utc::now();
    if facts.expires_at <= now {
        return Err(ApiError::UploadExpired {
            upload: id,
            at: facts.expires_at,
        });
    }
    let mut seen = HashSet::with_capacity(parts.len());
    let mut checked = Vec::with_capacity(parts.len());
    for part in &parts {
        let number = facts
            .plan
            .check_part(part.part_number, part.content_length)?;
        if !seen.insert(number) {
            return Err(ApiError::invalid(
                "parts",
                format!("part {} appears twice in one call", number.get()),
            ));
        }
        let pin = PartPin::from_request(
            facts.part_checksum,
            &part.content_md5,
            &part.checksum_sha256,
        )?;
        checked.push((number, pin, part.content_length));
    }

    let signed_by: std::sync::Arc<str> = Actor::caller(caller).to_string().into();
    let records: Vec<SignedPartRecord> = checked
        .iter()
        .map(|(number, pin, length)| SignedPartRecord {
            upload_id: id,
            part_number: i32::try_from(number.get()).unwrap_or(i32::MAX),
            pin: *pin,
            size_bytes: i64::try_from(*length).unwrap_or(i64::MAX),
            signed_by: signed_by.clone(),
        })
        .collect();
    // The database write and the signing overlap: polled first (`biased`), the
    // recorder queues the parts and its flusher writes them on its own task while
    // this one signs. URLs leave only once their parts are recorded; if the upload
    // stopped accepting parts, they are thrown away.
    let remaining = (facts.expires_at - now).to_std().unwrap_or_default();
    let expires_in = state.policy.sign_expiry.min(remaining);
    let (recorded, signed) = tokio::join!(biased; state.recorder.record(records), async {
        presign_parts(state, &facts, &checked, expires_in)
    });
    let recorded = recorded?;
    if !recorded.contains(&(id, i32::try_from(checked[0].0.get()).unwrap_or(0))) {
        return Err(ApiError::NotAcceptingParts(id));
    }
    if signed.is_ok() {
        let bytes = checked.iter().map(|(_, _, length)| length).sum();
        state.metrics.bytes_signed(caller.group, bytes);
    }
    signed
}

/// Presigns every checked part's PUT; a URL never outlives its upload.
fn presign_parts(
    state: &AppState,
    facts: &UploadFacts,
    checked: &[(PartNumber, PartPin, u64)],
    expires_in: Duration,
) -> Result<Vec<pb::SignedPart>, ApiError> {
    let signed = state
        .store
        .presign_parts(&facts.multipart(), checked, expires_in)?;
    Ok(checked
        .iter()
        .zip(signed)
        .map(|((number, _, _), request)| pb::SignedPart {
            part_number: number.get(),
            method: request.method,
            url: request.url,
            headers: request
                .headers
                .into_iter()
                .map(|(name, value)| pb::Header { name, value })
                .collect(),
            expires_at: Some(convert::timestamp(request.expires_at)),
        })
        .collect())
}
