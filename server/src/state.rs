//! What every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use upload_config::UploadPolicyConfig;
use upload_db::DbPool;
use upload_db::models::UploadRow;
use upload_domain::{Caller, PartChecksum, PartPlan, SellerGroup, SellerId, UploadId};
use upload_storage::Store;

use crate::error::ApiError;
use crate::part_recorder::PartRecorder;
use crate::progress_hub::ProgressHub;

/// The facts of an upload that never change after creation, cached for signing.
#[derive(Debug, Clone)]
pub struct UploadFacts {
    /// The upload.
    pub id: UploadId,
    /// The owner.
    pub owner_id: SellerId,
    /// The store's multipart upload id.
    pub store_upload_id: String,
    /// The part plan.
    pub plan: PartPlan,
    /// The upload's deadline.
    pub expires_at: DateTime<Utc>,
    /// What every part is signed with.
    pub part_checksum: PartChecksum,
}

impl UploadFacts {
    /// The upload's multipart upload in the store.
    pub fn multipart(&self) -> upload_storage::MultipartUpload<'_> {
        upload_storage::MultipartUpload::of(&self.owner_id, self.id, &self.store_upload_id)
    }
}

impl TryFrom<&UploadRow> for UploadFacts {
    type Error = ApiError;

    fn try_from(row: &UploadRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            owner_id: row.owner_id.clone(),
            store_upload_id: row.store_upload_id.clone(),
            plan: row.plan()?,
            expires_at: row.expires_at,
            part_checksum: row.part_checksum,
        })
    }
}

/// Bounded cache of immutable upload facts; cleared whole when full (simple, and
/// a miss only costs one indexed read).
#[derive(Default)]
pub struct FactsCache {
    map: RwLock<HashMap<UploadId, Arc<UploadFacts>>>,
}

const FACTS_CACHE_CAPACITY: usize = 50_000;

impl FactsCache {
    /// The cached facts.
    pub fn get(&self, id: UploadId) -> Option<Arc<UploadFacts>> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Caches facts.
    pub fn put(&self, id: UploadId, facts: Arc<UploadFacts>) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= FACTS_CACHE_CAPACITY {
            map.clear();
        }
        map.insert(id, facts);
    }
}

/// Shared state of the upload API.
pub struct AppState {
    /// Database pool.
    pub pool: DbPool,
    /// Object store.
    pub store: Store,
    /// Upload rules.
    pub policy: UploadPolicyConfig,
    /// Group commit of signed parts.
    pub recorder: PartRecorder,
    /// Change notifications.
    pub hub: ProgressHub,
    /// The one feed of each watched upload.
    pub feeds: crate::upload_feeds::UploadFeeds,
    /// Immutable upload facts.
    pub facts: FactsCache,
    /// Per-caller limits.
    pub fair_use: crate::fair_use::FairUse,
    /// What the `/metrics` listener shows.
    pub metrics: std::sync::Arc<crate::metrics::ServerMetrics>,
}

impl AppState {
    /// The largest file a caller may upload.
    pub fn size_limit(&self, group: SellerGroup) -> u64 {
        match group {
            SellerGroup::Standard => self.policy.standard_limit_bytes,
            SellerGroup::Premium => self.policy.premium_limit_bytes,
        }
    }

    /// The upload's row if `caller` owns it; NOT_FOUND otherwise, so nobody learns
    /// whether someone else's upload exists.
    pub async fn owned_upload(&self, caller: &Caller, id: UploadId) -> Result<UploadRow, ApiError> {
        let mut conn = self.pool.get().await.map_err(upload_db::DbError::from)?;
        match upload_db::uploads::find(&mut conn, id).await? {
            Some(row) if caller.reaches(&row.owner_id) => Ok(row),
            _ => Err(ApiError::UploadNotFound(id)),
        }
    }

    /// The immutable facts of an upload `caller` owns, from cache when possible.
    pub async fn owned_facts(
        &self,
        caller: &Caller,
        id: UploadId,
    ) -> Result<Arc<UploadFacts>, ApiError> {
        if let Some(facts) = self.facts.get(id) {
            if caller.reaches(&facts.owner_id) {
                return Ok(facts);
            }
            return Err(ApiError::UploadNotFound(id));
        }
        let row = self.owned_upload(caller, id).await?;
        let facts = Arc::new(UploadFacts::try_from(&row)?);
        self.facts.put(id, Arc::clone(&facts));
        Ok(facts)
    }
}
