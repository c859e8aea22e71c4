//! Buckets of a test's own: every test run creates its temp, quarantine and
//! regular buckets (with the service's lifecycle and CORS rules), so nothing a
//! test stores meets another test's or an earlier run's objects, and removes them,
//! emptied, when it ends.

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_s3::error::ProvideErrorMetadata;
use upload_storage::{Bucket, LifecycleRules, Store, apply_bucket_rules};

/// The three bucket names of one test, by role.
#[derive(Debug, Clone)]
pub struct TestBuckets {
    names: Vec<(Bucket, String)>,
}

impl TestBuckets {
    /// Fresh names: a run-unique prefix and the role.
    pub fn fresh() -> Self {
        let run = uuid::Uuid::now_v7().simple().to_string();
        // The random tail of a v7 UUID: unique without the clock's prefix.
        let tag = &run[run.len() - 12..];
        Self {
            names: Bucket::ALL
                .iter()
                .map(|b| (*b, format!("t{tag}-{b}")))
                .collect(),
        }
    }

    /// The bucket settings for the services' environment.
    pub fn env(&self) -> HashMap<String, String> {
        self.names
            .iter()
            .map(|(role, name)| {
                let var = match role {
                    Bucket::Temp => "UPLOAD_BUCKET_TEMP",
                    Bucket::Quarantine => "UPLOAD_BUCKET_QUARANTINE",
                    Bucket::Regular => "UPLOAD_BUCKET_REGULAR",
                };
                (var.to_owned(), name.clone())
            })
            .collect()
    }

    /// Creates the buckets and sets their rules, as `upload-server setup` does.
    pub async fn create(&self, store: &Store) -> anyhow::Result<()> {
        for (_, name) in &self.names {
            store
                .client()
                .create_bucket()
                .bucket(name)
                .send()
                .await
                .with_context(|| format!("creating test bucket {name}"))?;
        }
        apply_bucket_rules(store, &LifecycleRules::default())
            .await
            .context("setting the test buckets' rules")?;
        Ok(())
    }

    /// Aborts unfinished multipart uploads, deletes every object, then the buckets.
    /// A Garage cluster counts a bucket's objects on every node and may still count
    /// one just deleted: a bucket it calls not empty is emptied again and deleted
    /// again, for up to ten seconds.
    pub async fn remove(&self, store: &Store) -> anyhow::Result<()> {
        for (_, name) in &self.names {
            let mut tries = 0;
            loop {
                Self::empty(store, name).await?;
                let deleted = store.client().delete_bucket().bucket(name).send().await;
                match deleted {
                    Ok(_) => break,
                    Err(e)
                        if tries < 40
                            && e.as_service_error().and_then(ProvideErrorMetadata::code)
                                == Some("BucketNotEmpty") =>
                    {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("deleting test bucket {name}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Aborts `name`'s unfinished multipart uploads and deletes every object in it.
    async fn empty(store: &Store, name: &str) -> anyhow::Result<()> {
        let client = store.client();
        {
            let uploads = client
                .list_multipart_uploads()
                .bucket(name)
                .send()
                .await
                .with_context(|| format!("listing uploads of {name}"))?;
            for u in uploads.uploads() {
                let _ = client
                    .abort_multipart_upload()
                    .bucket(name)
                    .key(u.key().unwrap_or_default())
                    .upload_id(u.upload_id().unwrap_or_default())
                    .send()
                    .await;
            }
            let mut token = None;
            loop {
                let page = client
                    .list_objects_v2()
                    .bucket(name)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .with_context(|| format!("listing {name}"))?;
                for object in page.contents() {
                    client
                        .delete_object()
                        .bucket(name)
                        .key(object.key().unwrap_or_default())
                        .send()
                        .await
                        .with_context(|| format!("emptying {name}"))?;
                }
                match page.next_continuation_token() {
                    Some(next) => token = Some(next.to_owned()),
                    None => break,
                }
            }
        }
        Ok(())
    }
}
