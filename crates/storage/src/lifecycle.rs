use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, CorsConfiguration, CorsRule,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};

use crate::{Bucket, Store, StoreError};

/// The buckets' housekeeping rules.
#[derive(Debug, Clone)]
pub struct LifecycleRules {
    /// Incomplete multipart uploads in temp are aborted after this many days.
    pub temp_abort_incomplete_days: i32,
    /// Objects left in temp (never submitted) expire after this many days.
    pub temp_expire_days: i32,
    /// Quarantined objects expire after this many days.
    pub quarantine_expire_days: i32,
    /// Browser origins allowed to PUT parts straight to the temp bucket.
    pub cors_origins: Vec<String>,
}

impl Default for LifecycleRules {
    fn default() -> Self {
        Self {
            temp_abort_incomplete_days: 1,
            temp_expire_days: 7,
            quarantine_expire_days: upload_domain::QUARANTINE_DAYS,
            cors_origins: vec!["*".into()],
        }
    }
}

fn rule(id: &str) -> Result<aws_sdk_s3::types::builders::LifecycleRuleBuilder, StoreError> {
    Ok(LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build()))
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Applies the lifecycle and CORS rules to the temp and quarantine buckets.
/// Idempotent: it replaces whatever rules were there.
pub async fn apply_bucket_rules(store: &Store, rules: &LifecycleRules) -> Result<(), StoreError> {
    let temp_rules = vec![
        built(
            rule("abort-incomplete-uploads")?
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(rules.temp_abort_incomplete_days)
                        .build(),
                )
                .build(),
        )?,
        built(
            rule("expire-unsubmitted")?
                .expiration(
                    LifecycleExpiration::builder()
                        .days(rules.temp_expire_days)
                        .build(),
                )
                .build(),
        )?,
    ];
    let quarantine_rules = vec![built(
        rule("expire-quarantined")?
            .expiration(
                LifecycleExpiration::builder()
                    .days(rules.quarantine_expire_days)
                    .build(),
            )
            .build(),
    )?];
    for (bucket, rules) in [
        (Bucket::Temp, temp_rules),
        (Bucket::Quarantine, quarantine_rules),
    ] {
        store
            .client()
            .put_bucket_lifecycle_configuration()
            .bucket(store.bucket_name(bucket))
            .lifecycle_configuration(built(
                BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules))
                    .build(),
            )?)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutBucketLifecycleConfiguration", e))?;
    }
    let cors = built(
        CorsRule::builder()
            .set_allowed_origins(Some(rules.cors_origins.clone()))
            .allowed_methods("PUT")
            .allowed_methods("GET")
            .allowed_methods("HEAD")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(3600)
            .build(),
    )?;
    store
        .client()
        .put_bucket_cors()
        .bucket(store.bucket_name(Bucket::Temp))
        .cors_configuration(built(
            CorsConfiguration::builder().cors_rules(cors).build(),
        )?)
        .send()
        .await
        .map_err(|e| StoreError::from_sdk("PutBucketCors", e))?;
    Ok(())
}
