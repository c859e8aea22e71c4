//! Helpers for item tests: ready uploads, submissions, waiting for them, and
//! reading back what landed in the store.

use std::time::Duration;

use upload_client::UploadClient;
use upload_domain::SellerGroup;

use crate::{TestApp, TestFile, pb};

/// What a plain HTTP GET returned.
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// The Content-Disposition header, if any.
    pub disposition: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// GETs a URL (a presigned download) with a client of its own.
pub async fn fetch(url: &str) -> Fetched {
    let res = reqwest::get(url).await.expect("GET the URL");
    let status = res.status().as_u16();
    let disposition = res
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.bytes().await.expect("body").to_vec();
    Fetched {
        status,
        disposition,
        body,
    }
}

/// A submission of new files for a new item (`item_id` empty) or an existing one.
pub fn submission(
    key: &str,
    item_id: &str,
    kind: pb::ItemKind,
    title: &str,
    files: &[(&str, &str)],
) -> pb::SubmitItemRequest {
    pb::SubmitItemRequest {
        item_id: item_id.to_owned(),
        idempotency_key: key.to_owned(),
        title: title.to_owned(),
        description: format!("{title}, described"),
        kind: kind as i32,
        files: files
            .iter()
            .map(|(upload, file)| pb::FileToSubmit {
                upload_id: (*upload).to_owned(),
                file_id: (*file).to_owned(),
            })
            .collect(),
    }
}

impl TestApp {
    /// Uploads `file` for `seller`, completes it and waits until it is ready.
    pub async fn ready_upload(
        &self,
        seller: &str,
        file: &TestFile,
        name: &str,
        content_type: &str,
    ) -> (UploadClient, pb::Upload) {
        let (client, upload) = self.upload_whole(seller, file, name, content_type).await;
        let ready = self
            .wait_settled(&client, &upload.upload_id, Duration::from_secs(60))
            .await;
        assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
        (client, ready)
    }

    /// A client for a user who is not a seller of the item (a buyer, another seller).
    pub async fn user(&self, id: &str) -> UploadClient {
        self.client(id, SellerGroup::Standard).await
    }

    /// Every key in `bucket` under `prefix`.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .store
                .client()
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .expect("ListObjectsV2");
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match out.next_continuation_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        keys.sort();
        keys
    }

    /// The temp bucket's name.
    pub fn temp_bucket(&self) -> &str {
        &self.config.store.temp_bucket
    }

    /// The regular bucket's name.
    pub fn regular_bucket(&self) -> &str {
        &self.config.store.regular_bucket
    }

    /// The temp key recorded for an upload.
    pub async fn temp_key(&self, upload_id: &str) -> String {
        let mut conn = self.db().await;
        let id: upload_domain::UploadId = upload_id.parse().expect("upload id");
        upload_db::uploads::find(&mut conn, id)
            .await
            .expect("reading the upload")
            .expect("the upload exists")
            .temp_key
    }
}

/// Polls GetItem until the item's latest submission is stored or failed. A new
/// item is NOT_FOUND until its persist job has saved it (later than usual after a
/// database outage): that counts as not yet settled.
pub async fn wait_item(client: &UploadClient, item_id: &str, timeout: Duration) -> pb::Item {
    crate::poll_until(&format!("item {item_id} to settle"), timeout, || async {
        let answer = client
            .items()
            .get_item(pb::GetItemRequest {
                item_id: item_id.to_owned(),
            })
            .await;
        let item = match answer {
            Err(status) if status.code() == tonic::Code::NotFound => return (false, None),
            answer => answer.expect("GetItem").into_inner().item.expect("item"),
        };
        let state = pb::SubmissionState::try_from(item.state).unwrap_or_default();
        let settled = matches!(
            state,
            pb::SubmissionState::Stored | pb::SubmissionState::Failed
        );
        (settled, Some(item))
    })
    .await
    .expect("the item")
}

/// Submits a new item of one upload and returns the answer; panics if refused.
pub async fn submit_new_item(
    client: &UploadClient,
    key: &str,
    kind: pb::ItemKind,
    title: &str,
    upload_id: &str,
) -> pb::SubmitItemResponse {
    client
        .items()
        .submit_item(submission(key, "", kind, title, &[(upload_id, "")]))
        .await
        .expect("SubmitItem")
        .into_inner()
}

/// Submits `upload_id` as the next version of `file_id` of the digital-file item
/// `item_id` (titled "Font pack"), and waits until the submission settles.
pub async fn submit_version(
    client: &UploadClient,
    key: &str,
    item_id: &str,
    file_id: &str,
    upload_id: &str,
) -> pb::Item {
    client
        .items()
        .submit_item(submission(
            key,
            item_id,
            pb::ItemKind::DigitalFile,
            "Font pack",
            &[(upload_id, file_id)],
        ))
        .await
        .expect("SubmitItem update");
    wait_item(client, item_id, crate::WAIT).await
}

/// An item of one file stored twice, for the calls that read and choose versions.
pub struct TwoVersions {
    /// The owner's client.
    pub client: UploadClient,
    /// The item.
    pub item_id: String,
    /// Its one file.
    pub file_id: String,
    /// Version 1, stored as `pack v1.zip`.
    pub first: TestFile,
    /// Version 2 (current), stored as `pack v2.zip`.
    pub second: TestFile,
}

impl TwoVersions {
    /// GetDownloadUrl of `version` (0: the current one).
    pub async fn download(
        &self,
        version: u32,
    ) -> Result<pb::GetDownloadUrlResponse, tonic::Status> {
        self.client
            .items()
            .get_download_url(pb::GetDownloadUrlRequest {
                item_id: self.item_id.clone(),
                file_id: self.file_id.clone(),
                version,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// SetCurrentVersion to `version`.
    pub async fn set_current(
        &self,
        version: u32,
    ) -> Result<pb::SetCurrentVersionResponse, tonic::Status> {
        self.client
            .items()
            .set_current_version(pb::SetCurrentVersionRequest {
                item_id: self.item_id.clone(),
                file_id: self.file_id.clone(),
                version,
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

impl TestApp {
    /// Makes `file` ready for `seller` as `name`, submits it as a new digital-file
    /// item titled `title` (its idempotency key too, spaces made dashes) and waits
    /// until it is stored; returns the client, the ready upload and the item.
    pub async fn stored_item(
        &self,
        seller: &str,
        file: &TestFile,
        (name, content_type): (&str, &str),
        title: &str,
    ) -> (UploadClient, pb::Upload, pb::Item) {
        let (client, ready) = self.ready_upload(seller, file, name, content_type).await;
        let key = title.replace(|c: char| !c.is_ascii_graphic(), "-");
        let res = submit_new_item(
            &client,
            &key,
            pb::ItemKind::DigitalFile,
            title,
            &ready.upload_id,
        )
        .await;
        let item = wait_item(&client, &res.item.expect("item").item_id, crate::WAIT).await;
        assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
        (client, ready, item)
    }

    /// Stores an item for `seller` whose one file has two versions, the second current.
    pub async fn item_with_two_versions(&self, seller: &str) -> TwoVersions {
        let first = TestFile::random_zip(6 * crate::MIB);
        let second = TestFile::random_zip(6 * crate::MIB);
        let (client, _, item) = self
            .stored_item(
                seller,
                &first,
                ("pack v1.zip", "application/octet-stream"),
                "Font pack",
            )
            .await;
        let item_id = item.item_id;
        let file_id = item.files[0].file_id.clone();
        let (_, up2) = self
            .ready_upload(seller, &second, "pack v2.zip", "application/octet-stream")
            .await;
        let item = submit_version(&client, "v2", &item_id, &file_id, &up2.upload_id).await;
        assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
        TwoVersions {
            client,
            item_id,
            file_id,
            first,
            second,
        }
    }
}
