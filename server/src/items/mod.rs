//! The `upload.v1.ItemService` handlers: submitting items, reading and watching
//! them, their versions and download links, and access grants.

mod submit;
mod versions;
mod view;

use std::sync::Arc;

use tonic::{Request, Response, Status};
use upload_db::models::ItemRow;
use upload_domain::{Caller, FileId, ItemId, Reach, SellerId};
use upload_proto::v1 as pb;
use upload_proto::v1::item_service_server::ItemService;

use crate::api::caller;
use crate::error::ApiError;
use crate::state::AppState;

/// The gRPC item service.
#[derive(Clone)]
pub struct ItemApi {
    state: Arc<AppState>,
}

impl ItemApi {
    /// A service over `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

fn item_id(raw: &str) -> Result<ItemId, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid("item_id", "item_id is required"));
    }
    Ok(raw.parse()?)
}

fn file_id(raw: &str) -> Result<FileId, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid(
            "file_id",
            "file_id is required: take it from GetItem or ListVersions",
        ));
    }
    Ok(raw.parse()?)
}

/// What a caller wants to do with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Read it, its versions and downloads: the owner and granted users.
    Read,
    /// Change it: the owner alone.
    Own,
}

/// The item, if `caller` may do what `need` says with it. NOT_FOUND otherwise, so
/// nobody learns whether someone else's item exists.
async fn item_for(
    state: &AppState,
    caller: &Caller,
    id: ItemId,
    need: Need,
) -> Result<ItemRow, ApiError> {
    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    let Some(item) = upload_db::items::item(&mut conn, id).await? else {
        return Err(ApiError::ItemNotFound(id));
    };
    if caller.reaches(&item.owner_id) {
        return match (need, caller.reach) {
            (Need::Read, _) | (Need::Own, Reach::Own) => Ok(item),
            // Reading anyone's items (ops) is not owning them.
            (Need::Own, _) => Err(ApiError::NotTheOwner(id)),
        };
    }
    if !upload_db::grants::is_granted(&mut conn, id, &caller.seller_id).await? {
        return Err(ApiError::ItemNotFound(id));
    }
    match need {
        Need::Read => Ok(item),
        // A granted user knows the item exists; they may not change it.
        Need::Own => Err(ApiError::NotTheOwner(id)),
    }
}

#[tonic::async_trait]
impl ItemService for ItemApi {
    #[tracing::instrument(skip_all, fields(seller))]
    async fn submit_item(
        &self,
        req: Request<pb::SubmitItemRequest>,
    ) -> Result<Response<pb::SubmitItemResponse>, Status> {
        let caller = caller(&req)?;
        tracing::Span::current().record("seller", caller.seller_id.as_str());
        let response = submit::handle_submit_item(&self.state, &caller, req.into_inner()).await?;
        Ok(Response::new(response))
    }

    async fn get_item(
        &self,
        req: Request<pb::GetItemRequest>,
    ) -> Result<Response<pb::GetItemResponse>, Status> {
        let caller = caller(&req)?;
        let id = item_id(&req.get_ref().item_id)?;
        let row = item_for(&self.state, &caller, id, Need::Read).await?;
        let (item, _) = view::snapshot(&self.state, row).await?;
        Ok(Response::new(pb::GetItemResponse { item: Some(item) }))
    }

    type WatchItemStream = view::ItemStream;

    async fn watch_item(
        &self,
        req: Request<pb::WatchItemRequest>,
    ) -> Result<Response<Self::WatchItemStream>, Status> {
        let caller = caller(&req)?;
        let id = item_id(&req.get_ref().item_id)?;
        let expiry = req.extensions().get::<crate::auth::TokenExpiry>().copied();
        let slot = self.state.fair_use.open_watch(&caller.seller_id)?;
        let stream = view::handle_watch_item(Arc::clone(&self.state), caller, id).await?;
        Ok(Response::new(crate::fair_use::holding(
            crate::auth::until_expiry(stream, expiry),
            slot,
        )))
    }

    async fn list_versions(
        &self,
        req: Request<pb::ListVersionsRequest>,
    ) -> Result<Response<pb::ListVersionsResponse>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        let id = item_id(&req.item_id)?;
        let file = if req.file_id.is_empty() {
            None
        } else {
            Some(file_id(&req.file_id)?)
        };
        item_for(&self.state, &caller, id, Need::Read).await?;
        let versions = versions::handle_list_versions(&self.state, id, file).await?;
        Ok(Response::new(pb::ListVersionsResponse { versions }))
    }

    #[tracing::instrument(skip_all)]
    async fn set_current_version(
        &self,
        req: Request<pb::SetCurrentVersionRequest>,
    ) -> Result<Response<pb::SetCurrentVersionResponse>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        let (id, file) = (item_id(&req.item_id)?, file_id(&req.file_id)?);
        item_for(&self.state, &caller, id, Need::Own).await?;
        let file = versions::handle_set_current(&self.state, id, file, req.version).await?;
        Ok(Response::new(pb::SetCurrentVersionResponse {
            file: Some(file),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_download_url(
        &self,
        req: Request<pb::GetDownloadUrlRequest>,
    ) -> Result<Response<pb::GetDownloadUrlResponse>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        let (id, file) = (item_id(&req.item_id)?, file_id(&req.file_id)?);
        item_for(&self.state, &caller, id, Need::Read).await?;
        let response = versions::handle_download(&self.state, id, file, req.version).await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn grant_access(
        &self,
        req: Request<pb::GrantAccessRequest>,
    ) -> Result<Response<pb::GrantAccessResponse>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        change_grant(&self.state, &caller, &req.item_id, &req.user_id, true).await?;
        Ok(Response::new(pb::GrantAccessResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_access(
        &self,
        req: Request<pb::RevokeAccessRequest>,
    ) -> Result<Response<pb::RevokeAccessResponse>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        change_grant(&self.state, &caller, &req.item_id, &req.user_id, false).await?;
        Ok(Response::new(pb::RevokeAccessResponse {}))
    }
}

/// Grants (or revokes) a user's read access to an item the caller owns.
async fn change_grant(
    state: &AppState,
    caller: &Caller,
    raw_item: &str,
    raw_user: &str,
    grant: bool,
) -> Result<(), ApiError> {
    let (id, user) = (item_id(raw_item)?, grantee(raw_user)?);
    item_for(state, caller, id, Need::Own).await?;
    let mut conn = state.pool.get().await.map_err(upload_db::DbError::from)?;
    if grant {
        upload_db::grants::grant(&mut conn, id, &user).await?;
    } else {
        upload_db::grants::revoke(&mut conn, id, &user).await?;
    }
    Ok(())
}

/// A user id to grant to: the subject their tokens carry.
fn grantee(raw: &str) -> Result<SellerId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::invalid(
            "user_id",
            format!(
                "user_id {:?} is not a user id: 1-64 letters, digits, '-' or '_', as in the user's token",
                raw.chars().take(80).collect::<String>()
            ),
        )
    })
}
