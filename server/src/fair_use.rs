//! Fair use per caller (the seller or buyer a call acts for): CreateUpload calls a
//! minute (a token bucket that refills continuously) and watch streams open at
//! once. Both are kept in this process: N servers behind a balancer allow a caller
//! up to N times as much. Unfinished uploads are counted in the database by
//! CreateUpload itself. The maps forget callers whose buckets are full again and
//! who hold no stream, so they stay as small as the callers active now.

use prometheus_client::metrics::gauge::Gauge;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use tokio::time::Instant;
use upload_config::FairUseConfig;
use upload_domain::SellerId;

use crate::error::ApiError;

/// How long a caller refused a watch is told to wait.
const WATCH_RETRY: Duration = Duration::from_secs(5);
/// Callers tracked before full buckets are forgotten.
const TRACKED: usize = 10_000;

/// One caller's CreateUpload allowance.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The limits and what each caller has used of them.
#[derive(Debug)]
pub struct FairUse {
    config: FairUseConfig,
    creates: Mutex<HashMap<SellerId, Bucket>>,
    watches: Arc<Mutex<HashMap<SellerId, usize>>>,
    open_watches: Gauge,
}

impl FairUse {
    /// Limits as configured, nothing used yet.
    pub fn new(config: FairUseConfig) -> Self {
        Self {
            config,
            creates: Mutex::new(HashMap::new()),
            watches: Arc::new(Mutex::new(HashMap::new())),
            open_watches: Gauge::default(),
        }
    }

    /// The unfinished uploads a caller may have.
    pub fn max_open_uploads(&self) -> u64 {
        self.config.max_open_uploads
    }

    /// Takes one CreateUpload from `who`'s allowance, or says when the next one
    /// will be there.
    pub fn take_create(&self, who: &SellerId) -> Result<(), ApiError> {
        let per_minute = self.config.creates_per_minute;
        let capacity = f64::from(per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let refilled = |b: &Bucket| {
            (b.tokens + now.duration_since(b.at).as_secs_f64() * per_second).min(capacity)
        };
        let mut buckets = self.creates.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= TRACKED {
            buckets.retain(|_, b| refilled(b) < capacity);
        }
        let bucket = buckets.entry(who.clone()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = refilled(bucket);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / per_second);
        Err(ApiError::CreateRateExceeded {
            per_minute,
            retry_after: wait.max(Duration::from_secs(1)),
        })
    }

    /// Counts open watch streams in `gauge` too.
    pub fn counting_watches(mut self, gauge: Gauge) -> Self {
        self.open_watches = gauge;
        self
    }

    /// A watch stream for `who`, counted until the returned slot is dropped.
    pub fn open_watch(&self, who: &SellerId) -> Result<WatchSlot, ApiError> {
        let mut open = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(who.clone()).or_insert(0);
        if *count >= self.config.max_watches {
            return Err(ApiError::TooManyWatches {
                max: self.config.max_watches,
                retry_after: WATCH_RETRY,
            });
        }
        *count += 1;
        self.open_watches.inc();
        Ok(WatchSlot {
            watches: Arc::clone(&self.watches),
            who: who.clone(),
            gauge: self.open_watches.clone(),
        })
    }
}

/// One open watch stream of a caller; dropping it frees the slot.
#[derive(Debug)]
pub struct WatchSlot {
    watches: Arc<Mutex<HashMap<SellerId, usize>>>,
    who: SellerId,
    gauge: Gauge,
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        self.gauge.dec();
        let mut open = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.who) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.who);
            }
        }
    }
}

/// `stream`, holding `slot` for as long as it lives.
pub fn holding<T: Send + 'static>(
    stream: Pin<Box<dyn Stream<Item = T> + Send>>,
    slot: WatchSlot,
) -> Pin<Box<dyn Stream<Item = T> + Send>> {
    use futures::StreamExt;
    Box::pin(stream.map(move |item| {
        let _held = &slot;
        item
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(creates_per_minute: u32, max_watches: usize) -> FairUse {
        FairUse::new(FairUseConfig {
            creates_per_minute,
            max_open_uploads: 5,
            max_watches,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn creates_are_a_bucket_per_caller_that_refills_over_the_minute() {
        let fair = limits(3, 1);
        let (a, b): (SellerId, SellerId) = ("a".parse().unwrap(), "b".parse().unwrap());
        for _ in 0..3 {
            fair.take_create(&a).unwrap();
        }
        let Err(ApiError::CreateRateExceeded { retry_after, .. }) = fair.take_create(&a) else {
            panic!("the fourth create in a minute is refused");
        };
        // Three a minute: one more every 20 s.
        assert!(
            (Duration::from_secs(19)..=Duration::from_secs(20)).contains(&retry_after),
            "{retry_after:?}"
        );
        fair.take_create(&b)
            .expect("another caller has an allowance of its own");
        tokio::time::advance(Duration::from_secs(20)).await;
        fair.take_create(&a).expect("refilled");
        assert!(fair.take_create(&a).is_err());
    }

    #[test]
    fn watch_slots_are_counted_until_dropped() {
        let fair = limits(1, 2);
        let a: SellerId = "a".parse().unwrap();
        let first = fair.open_watch(&a).unwrap();
        let _second = fair.open_watch(&a).unwrap();
        assert!(matches!(
            fair.open_watch(&a),
            Err(ApiError::TooManyWatches { max: 2, .. })
        ));
        drop(first);
        let _third = fair.open_watch(&a).expect("a slot was freed");
    }
}
