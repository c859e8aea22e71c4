//! Uploads as tests make them: clients and tokens for sellers, whole or partial
//! uploads, waiting for an upload to settle, and following its progress.

use std::time::Duration;

use upload_client::UploadClient;
use upload_domain::{Role, Scope, SellerGroup, SellerId};
use upload_server::auth::Claims;

use crate::{TestApp, TestFile, pb};

impl TestApp {
    /// Uploads `file` whole as `name` of type `content_type` for a standard seller
    /// and completes it.
    pub async fn upload_whole(
        &self,
        seller: &str,
        file: &TestFile,
        name: &str,
        content_type: &str,
    ) -> (UploadClient, pb::Upload) {
        let (client, upload) = self
            .create_and_send(seller, file, (name, content_type, None), None)
            .await;
        let done = client
            .complete(&upload.upload_id)
            .await
            .expect("CompleteUpload");
        (client, done)
    }

    /// Reads a whole object (small ones: previews) into memory.
    pub async fn object_bytes(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self
            .store
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.ok()?.into_bytes().to_vec())
    }

    /// A bearer token for a seller.
    pub fn token(&self, seller: &str, group: SellerGroup) -> String {
        let seller: SellerId = seller.parse().expect("valid seller id");
        self.keys
            .mint(&seller, group, Duration::from_secs(3600))
            .expect("minting a token")
    }

    /// A bearer token for `role` with subject `sub` and, for a service, `scopes`.
    pub fn role_token(&self, role: Role, sub: &str, scopes: &[Scope]) -> String {
        let scope = scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let claims = Claims {
            sub: Some(sub.to_owned()),
            role: Some(role.as_str().to_owned()),
            scope: (!scope.is_empty()).then_some(scope),
            ..Claims::default()
        };
        self.keys
            .mint_claims(claims, Duration::from_secs(3600))
            .expect("minting a token")
    }

    /// A connected client for a buyer or an operator (`role`) named `sub`.
    pub async fn client_as(&self, role: Role, sub: &str) -> UploadClient {
        self.connect(&self.role_token(role, sub, &[])).await
    }

    /// A connected client for the service `name` holding `scopes`, acting for the
    /// standard seller or buyer `acting_for`.
    pub async fn service_client(
        &self,
        name: &str,
        scopes: &[Scope],
        acting_for: &str,
    ) -> UploadClient {
        let acting_for = upload_client::ActingFor {
            subject: acting_for,
            ..Default::default()
        };
        self.acting_client(name, scopes, acting_for).await
    }

    /// A connected client for the service `name` holding `scopes`, sending the
    /// act-for headers of `acting_for`.
    pub async fn acting_client(
        &self,
        name: &str,
        scopes: &[Scope],
        acting_for: upload_client::ActingFor<'_>,
    ) -> UploadClient {
        let token = self.role_token(Role::Service, name, scopes);
        UploadClient::connect_acting_for(
            &self.endpoint,
            &token,
            acting_for,
            self.harness_ca().map(str::as_bytes),
        )
        .await
        .expect("connecting to the test server")
    }

    /// A connected client for a seller.
    pub async fn client(&self, seller: &str, group: SellerGroup) -> UploadClient {
        self.connect(&self.token(seller, group)).await
    }

    /// Creates an upload of `file` in 5 MiB parts for a standard seller and sends
    /// `parts` of it (every part when `None`); does not complete it.
    pub async fn upload_parts(
        &self,
        seller: &str,
        file: &TestFile,
        parts: Option<&[u32]>,
    ) -> (UploadClient, pb::Upload) {
        let declared = (
            "product.bin",
            "application/octet-stream",
            Some(5 * crate::MIB),
        );
        self.create_and_send(seller, file, declared, parts).await
    }

    /// Creates an upload of `file` for a standard seller, declared as (name,
    /// content type, part size), and sends `parts` of it (every part when `None`).
    async fn create_and_send(
        &self,
        seller: &str,
        file: &TestFile,
        (name, content_type, part_size): (&str, &str, Option<u64>),
        parts: Option<&[u32]>,
    ) -> (UploadClient, pb::Upload) {
        let client = self.client(seller, SellerGroup::Standard).await;
        let upload = client
            .create(name, file.size, content_type, part_size)
            .await
            .expect("CreateUpload");
        let all: Vec<u32> = (1..=upload.part_count).collect();
        client
            .send_parts(
                &upload,
                &file.path,
                parts.unwrap_or(&all),
                upload_client::SendOptions::default(),
                |_, _| {},
            )
            .await
            .expect("sending parts");
        (client, upload)
    }

    /// Assembles the test's first upload in the store directly, as a server that
    /// died between CompleteMultipartUpload and its database write would leave it.
    pub async fn complete_in_store_only(&self) {
        let row = self.first_upload().await;
        let multipart =
            upload_storage::MultipartUpload::of(&row.owner_id, row.id, &row.store_upload_id);
        let parts = self.store.list_parts(&multipart).await.expect("ListParts");
        self.store
            .complete_multipart(&multipart, &parts)
            .await
            .expect("CompleteMultipartUpload");
    }

    /// What the store lists of the test's first upload's parts (an error once the
    /// multipart upload is gone).
    pub async fn first_upload_parts(
        &self,
    ) -> Result<Vec<upload_storage::StoredPart>, upload_storage::StoreError> {
        let row = self.first_upload().await;
        self.parts_in_store(&row).await
    }

    /// The parts the store holds for upload `upload_id` (an error once the store
    /// has no such multipart upload: completed or aborted).
    pub async fn stored_parts_of(
        &self,
        upload_id: &str,
    ) -> Result<Vec<upload_storage::StoredPart>, upload_storage::StoreError> {
        use diesel::prelude::*;
        use upload_db::schema::uploads::dsl;
        let id: upload_domain::UploadId = upload_id.parse().expect("an upload id");
        let mut conn = self.db().await;
        let row: upload_db::models::UploadRow = diesel_async::RunQueryDsl::first(
            dsl::uploads
                .filter(dsl::id.eq(id))
                .select(upload_db::models::UploadRow::as_select()),
            &mut conn,
        )
        .await
        .expect("the upload's row");
        self.parts_in_store(&row).await
    }

    async fn parts_in_store(
        &self,
        row: &upload_db::models::UploadRow,
    ) -> Result<Vec<upload_storage::StoredPart>, upload_storage::StoreError> {
        self.store
            .list_parts(&upload_storage::MultipartUpload::of(
                &row.owner_id,
                row.id,
                &row.store_upload_id,
            ))
            .await
    }

    /// Waits until the upload settles, or panics after `timeout`.
    pub async fn wait_settled(
        &self,
        client: &UploadClient,
        upload_id: &str,
        timeout: Duration,
    ) -> pb::Upload {
        poll_until(
            &format!("upload {upload_id} to settle"),
            timeout,
            || async {
                let upload = client
                    .get(upload_id)
                    .await
                    .expect("GetUpload")
                    .upload
                    .expect("upload");
                let state = pb::UploadState::try_from(upload.state).unwrap_or_default();
                let settled = matches!(
                    state,
                    pb::UploadState::Ready
                        | pb::UploadState::Failed
                        | pb::UploadState::Rejected
                        | pb::UploadState::Quarantined
                        | pb::UploadState::Aborted
                        | pb::UploadState::Expired
                );
                (settled, upload)
            },
        )
        .await
    }
}

/// Calls `probe` every 100 ms until it reports done, and returns what it found
/// then; panics with the last finding after `timeout`.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    T: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = (bool, T)>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (done, found) = probe().await;
        if done {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {timeout:?} for {what}; last seen: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens WatchProgress on `upload_id` and collects every update in the background
/// until the stream ends (the upload settled).
pub async fn follow(
    client: &UploadClient,
    upload_id: &str,
) -> tokio::task::JoinHandle<Vec<pb::WatchProgressResponse>> {
    use futures::StreamExt;
    let mut watch = client.watch(upload_id).await.expect("WatchProgress");
    tokio::spawn(async move {
        let mut updates = Vec::new();
        while let Some(update) = watch.next().await {
            updates.push(update.expect("progress update"));
        }
        updates
    })
}

/// The gRPC status code of a failed call.
pub fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> tonic::Code {
    result.expect_err("the call should have failed").code()
}
