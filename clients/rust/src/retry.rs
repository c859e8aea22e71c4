//! Exponential backoff with jitter.

use std::time::Duration;

/// Delays between attempts: `base × 2^(failures − 1)`, capped at `max`, of which a
/// random half is kept ("equal jitter"), so clients that failed together do not all
/// come back at the same instant, and none comes back sooner than half the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first step.
    pub base: Duration,
    /// The largest step.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            max: Duration::from_secs(20),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures (1 for the first); `random` is any `u64`.
    pub fn delay(&self, failures: u32, random: u64) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let step = self
            .base
            .saturating_mul(1u32 << exp)
            .min(self.max)
            .as_millis();
        let step = u64::try_from(step).unwrap_or(u64::MAX);
        let half = step / 2;
        let jitter = if step - half == 0 {
            0
        } else {
            random % (step - half + 1)
        };
        Duration::from_millis(half + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        for (failures, step) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let low = b.delay(failures, 0);
            let high = b.delay(failures, u64::MAX - 1);
            assert_eq!(low, Duration::from_millis(step / 2), "failures {failures}");
            assert!(high <= Duration::from_millis(step), "failures {failures}");
            assert!(high >= low);
        }
        let spread: std::collections::HashSet<_> = (0..50u64).map(|r| b.delay(3, r * 7)).collect();
        assert!(spread.len() > 10, "jitter spreads the delays: {spread:?}");
    }
}
