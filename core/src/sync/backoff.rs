//! Retry policy: how often and how long to wait before retrying a request that failed on the
//! network or with a server error. Pure: the jitter is passed in.

use std::time::Duration;

/// When and how often to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the first retry (before jitter).
    pub base_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Time limit of one HTTP request.
    pub request_timeout: Duration,
    /// Time limit for establishing a connection.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry): `base · 2^retry`, capped at
    /// `max_delay`, then scaled into its upper half by `jitter` in `[0, 1]` ("equal jitter"), so
    /// devices that failed together do not retry together.
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let factor = 2u32.checked_pow(retry.min(30)).unwrap_or(u32::MAX);
        let full = self
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        full / 2 + full.mul_f64(jitter / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_stays_in_the_upper_half() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(0, 1.0), Duration::from_millis(100));
        assert_eq!(p.delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(p.delay(1, 1.0), Duration::from_millis(200));
        assert_eq!(p.delay(3, 1.0), Duration::from_millis(800));
        assert_eq!(p.delay(4, 1.0), Duration::from_secs(1), "capped");
        assert_eq!(p.delay(40, 1.0), Duration::from_secs(1), "no overflow");
        assert_eq!(p.delay(2, f64::NAN), Duration::from_millis(200));
        assert_eq!(p.delay(2, 7.0), Duration::from_millis(400));
        let d = p.delay(2, 0.5);
        assert!(d > Duration::from_millis(200) && d < Duration::from_millis(400));
    }
}
