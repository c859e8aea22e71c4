//! What every job needs: the database, the store, the media tools, an HTTP client
//! for webhooks, and the worker's configuration.

use std::time::Duration;

use upload_config::WorkerConfig;
use upload_db::DbPool;
use upload_storage::Store;

use crate::media;

/// What every job needs.
pub struct JobContext {
    /// Database pool.
    pub pool: DbPool,
    /// Object store.
    pub store: Store,
    /// ffmpeg and ffprobe, with their limits.
    pub media: media::Media,
    /// Webhook client.
    pub http: reqwest::Client,
    /// Attempts, delays, scanner, policy.
    pub config: WorkerConfig,
    /// What the `/metrics` listener shows.
    pub metrics: std::sync::Arc<crate::metrics::WorkerMetrics>,
}

impl JobContext {
    /// Connects to the database and builds the clients `config` names.
    pub async fn connect(config: WorkerConfig) -> anyhow::Result<Self> {
        let pool = upload_db::connect_pool(&config.database.url, config.database.pool_size).await?;
        let metrics = crate::metrics::WorkerMetrics::new();
        Ok(Self {
            pool,
            store: Store::new(&config.store).observed_by(metrics.calls.clone()),
            media: media::Media::new(config.media.clone()),
            // The webhook's client: no redirect is followed (a receiver that moved
            // is configured anew, never chased to wherever it points).
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            config,
            metrics,
        })
    }

    /// clamd, as the configuration names it, its calls counted.
    pub fn clamd(&self) -> crate::clamd::Clamd {
        crate::clamd::Clamd::new(
            self.config.clamd.clone(),
            self.config.clamd_timeout,
            self.metrics.calls.clone(),
        )
    }

    /// True when notifications are delivered to a webhook.
    pub fn delivers_webhooks(&self) -> bool {
        self.config.webhook.is_some()
    }
}
