//! The `upload.v1.UploadService` handlers, one file per family of calls.

mod abort;
mod complete;
mod create;
mod parts;
mod sign;
mod watch;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status};
use upload_domain::{Caller, UploadId};
use upload_proto::v1 as pb;
use upload_proto::v1::upload_service_server::UploadService;

use crate::error::ApiError;
use crate::snapshot::UploadSnapshot;
use crate::state::AppState;

/// The gRPC service.
#[derive(Clone)]
pub struct UploadApi {
    state: Arc<AppState>,
}

impl UploadApi {
    /// A service over `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// The authenticated caller the auth layer put into the request.
pub(crate) fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    // The auth layer puts the caller here; its absence means the layer was not installed.
    req.extensions().get::<Caller>().cloned().ok_or_else(|| {
        crate::error::refusal_status(
            tonic::Code::Unauthenticated,
            "missing authorization: send 'authorization: Bearer <token>'",
            upload_domain::Refusal::Unauthenticated,
            None,
            None,
        )
    })
}

fn upload_id(raw: &str) -> Result<UploadId, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid("upload_id", "upload_id is required"));
    }
    Ok(raw.parse()?)
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchProgressResponse, Status>> + Send>>;

#[tonic::async_trait]
impl UploadService for UploadApi {
    #[tracing::instrument(skip_all, fields(seller))]
    async fn create_upload(
        &self,
        req: Request<pb::CreateUploadRequest>,
    ) -> Result<Response<pb::CreateUploadResponse>, Status> {
        let caller = caller(&req)?;
        tracing::Span::current().record("seller", caller.seller_id.as_str());
        let upload = create::handle_create_upload(&self.state, &caller, req.into_inner()).await?;
        Ok(Response::new(pb::CreateUploadResponse {
            upload: Some(upload),
        }))
    }

    async fn sign_part(
        &self,
        req: Request<pb::SignPartRequest>,
    ) -> Result<Response<pb::SignPartResponse>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        let part = req.part.ok_or_else(|| {
            ApiError::invalid(
                "part",
                "part is required: give part_number, content_md5 and content_length",
            )
        })?;
        let mut signed =
            sign::handle_sign_parts(&self.state, &caller, &req.upload_id, vec![part]).await?;
        Ok(Response::new(pb::SignPartResponse { part: signed.pop() }))
    }

    async fn sign_parts(
        &self,
        req: Request<pb::SignPartsRequest>,
    ) -> Result<Response<pb::SignPartsResponse>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        let parts =
            sign::handle_sign_parts(&self.state, &caller, &req.upload_id, req.parts).await?;
        Ok(Response::new(pb::SignPartsResponse { parts }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_uploaded_parts(
        &self,
        req: Request<pb::ListUploadedPartsRequest>,
    ) -> Result<Response<pb::ListUploadedPartsResponse>, Status> {
        let caller = caller(&req)?;
        let id = upload_id(&req.get_ref().upload_id)?;
        Ok(Response::new(
            parts::handle_list_uploaded_parts(&self.state, &caller, id).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn complete_upload(
        &self,
        req: Request<pb::CompleteUploadRequest>,
    ) -> Result<Response<pb::CompleteUploadResponse>, Status> {
        let caller = caller(&req)?;
        let id = upload_id(&req.get_ref().upload_id)?;
        let upload = complete::handle_complete_upload(&self.state, &caller, id).await?;
        Ok(Response::new(pb::CompleteUploadResponse {
            upload: Some(upload),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn abort_upload(
        &self,
        req: Request<pb::AbortUploadRequest>,
    ) -> Result<Response<pb::AbortUploadResponse>, Status> {
        let caller = caller(&req)?;
        let id = upload_id(&req.get_ref().upload_id)?;
        let upload = abort::handle_abort_upload(&self.state, &caller, id).await?;
        Ok(Response::new(pb::AbortUploadResponse {
            upload: Some(upload),
        }))
    }

    async fn get_upload(
        &self,
        req: Request<pb::GetUploadRequest>,
    ) -> Result<Response<pb::GetUploadResponse>, Status> {
        let caller = caller(&req)?;
        let id = upload_id(&req.get_ref().upload_id)?;
        let with_history = req.get_ref().include_history;
        let snapshot = UploadSnapshot::load_with(&self.state, &caller, id, with_history).await?;
        let (upload, stages) = snapshot.to_proto(&self.state).await?;
        Ok(Response::new(pb::GetUploadResponse {
            upload: Some(upload),
            stages,
            history: snapshot.history(),
        }))
    }

    type WatchProgressStream = WatchStream;

    async fn watch_progress(
        &self,
        req: Request<pb::WatchProgressRequest>,
    ) -> Result<Response<Self::WatchProgressStream>, Status> {
        let caller = caller(&req)?;
        let id = upload_id(&req.get_ref().upload_id)?;
        let expiry = req.extensions().get::<crate::auth::TokenExpiry>().copied();
        let slot = self.state.fair_use.open_watch(&caller.seller_id)?;
        let stream = watch::handle_watch_progress(Arc::clone(&self.state), &caller, id).await?;
        Ok(Response::new(crate::fair_use::holding(
            crate::auth::until_expiry(stream, expiry),
            slot,
        )))
    }
}
