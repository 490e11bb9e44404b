//! Per-caller rate limits: a token bucket per authenticated device (by device id) and one per
//! client IP address for what comes without a device token (enrolment, the token refresh pair,
//! and requests whose token is missing, unknown or expired). A request beyond its bucket gets
//! `429 rate.limited` with `Retry-After` (whole seconds).
//!
//! Admin devices have their own rate (`--admin-rate`, default 0: not limited): the admin token is
//! the operator's credential, its holder can already do anything, and bulk registry imports are
//! many requests. IPv6 clients are counted per /64 (one host usually holds a whole /64).
//!
//! The buckets live in this process: several server processes over one PostgreSQL database each
//! limit on their own, so a device may reach N times its rate across N processes. Memory is
//! bounded: buckets that have refilled are forgotten once there are many, and when
//! [`MAX_KEYS`] callers are all mid-bucket a newcomer is limited until some refill.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use weldguard_model::protocol::Role;

use crate::http::{ApiError, AppState};

/// Default of `--device-rate`: requests per second a device may keep up.
pub const DEFAULT_DEVICE_RATE: f64 = 20.0;
/// Default of `--device-burst`: a first sync of a large registry (hundreds of pull pages and
/// snapshot chunks) fits in one burst.
pub const DEFAULT_DEVICE_BURST: u32 = 600;
/// Default of `--admin-rate` (0: admins are not limited).
pub const DEFAULT_ADMIN_RATE: f64 = 0.0;
/// Default of `--admin-burst`.
pub const DEFAULT_ADMIN_BURST: u32 = 2000;
/// Default of `--ip-rate`: requests per second per client IP without a device token.
pub const DEFAULT_IP_RATE: f64 = 5.0;
/// Default of `--ip-burst`: a site enrolling its phones at once from one address.
pub const DEFAULT_IP_BURST: u32 = 60;
/// Buckets kept before refilled ones are forgotten.
const PRUNE_AT: usize = 10_000;
/// Most callers tracked at once.
pub const MAX_KEYS: usize = 200_000;

/// The routes open without a device token that are limited per client IP (`/health` and
/// `/openapi.json` are not: they are cheap and monitoring must reach them).
pub const IP_LIMITED_ROUTES: [&str; 3] = ["/v1/enrol", "/v1/auth/challenge", "/v1/auth/refresh"];

/// The rate limits (`weldguard-server --help` shows them with their defaults).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct RateOptions {
    /// Requests per second each enrolled device may keep up (its bucket's refill rate);
    /// 0: devices are not limited.
    #[arg(long, value_name = "PER_SEC", default_value_t = DEFAULT_DEVICE_RATE, value_parser = rate)]
    pub device_rate: f64,
    /// Requests a device may make at once before its rate applies.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_DEVICE_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub device_burst: u32,
    /// Requests per second for admin devices; 0 (the default): admins are not limited.
    #[arg(long, value_name = "PER_SEC", default_value_t = DEFAULT_ADMIN_RATE, value_parser = rate)]
    pub admin_rate: f64,
    /// Burst of admin devices (when `--admin-rate` is set).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ADMIN_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub admin_burst: u32,
    /// Requests per second per client IP (IPv6: per /64) for enrolment, token refresh and
    /// requests without a valid device token; 0: not limited.
    #[arg(long, value_name = "PER_SEC", default_value_t = DEFAULT_IP_RATE, value_parser = rate)]
    pub ip_rate: f64,
    /// Burst per client IP.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_IP_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ip_burst: u32,
}

impl Default for RateOptions {
    fn default() -> Self {
        RateOptions {
            device_rate: DEFAULT_DEVICE_RATE,
            device_burst: DEFAULT_DEVICE_BURST,
            admin_rate: DEFAULT_ADMIN_RATE,
            admin_burst: DEFAULT_ADMIN_BURST,
            ip_rate: DEFAULT_IP_RATE,
            ip_burst: DEFAULT_IP_BURST,
        }
    }
}

fn rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && (0.0..=1_000_000.0).contains(r))
        .ok_or_else(|| format!("{text:?} is not a rate (0 to 1000000 per second)"))
}

/// One caller's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of one kind of caller.
#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, Bucket>,
}

impl<K> Default for Buckets<K> {
    fn default() -> Self {
        Buckets {
            map: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Buckets<K> {
    /// Take one token from `key`'s bucket at `now`; `Err(secs)`: retry after that many seconds.
    fn take(&mut self, key: &K, rate: f64, burst: u32, now: Instant) -> Result<(), u64> {
        if rate <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(burst.max(1));
        let refilled = |b: &Bucket| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            (b.tokens + elapsed * rate).min(burst)
        };
        if !self.map.contains_key(key) {
            if self.map.len() >= PRUNE_AT {
                self.map.retain(|_, b| refilled(b) < burst);
            }
            if self.map.len() >= MAX_KEYS {
                return Err(1);
            }
        }
        let bucket = self.map.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = refilled(bucket);
        bucket.at = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            bucket.tokens = tokens;
            let wait = ((1.0 - tokens) / rate).ceil();
            Err((wait as u64).max(1))
        }
    }
}

/// The buckets of this process.
#[derive(Debug, Default)]
pub struct Limiter {
    options: RateOptions,
    devices: Mutex<Buckets<String>>,
    ips: Mutex<Buckets<IpAddr>>,
}

/// A client address as the limits count it: IPv4 (also when mapped into IPv6), or the /64 of
/// an IPv6 address.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Limiter {
    pub fn new(options: RateOptions) -> Self {
        Limiter {
            options,
            ..Limiter::default()
        }
    }

    fn device_at(&self, device_id: &str, role: Role, now: Instant) -> Result<(), u64> {
        let (rate, burst) = if role == Role::Admin {
            (self.options.admin_rate, self.options.admin_burst)
        } else {
            (self.options.device_rate, self.options.device_burst)
        };
        self.devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(&device_id.to_owned(), rate, burst, now)
    }

    fn ip_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        self.ips
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(
                &ip_key(ip),
                self.options.ip_rate,
                self.options.ip_burst,
                now,
            )
    }

    /// Count one request of an authenticated device.
    pub fn device(&self, device_id: &str, role: Role) -> Result<(), ApiError> {
        self.device_at(device_id, role, Instant::now())
            .map_err(limited)
    }

    /// Count one request without a valid device token from the current request's client IP
    /// (known inside [`limit_by_ip`]; without it, nothing is counted).
    pub fn unauthenticated(&self) -> Result<(), ApiError> {
        match CLIENT_IP.try_with(|ip| *ip).ok().flatten() {
            Some(ip) => self.ip_at(ip, Instant::now()).map_err(limited),
            None => Ok(()),
        }
    }
}

fn limited(retry_after_secs: u64) -> ApiError {
    ApiError::rate_limited(retry_after_secs)
}

tokio::task_local! {
    static CLIENT_IP: Option<IpAddr>;
}

/// Middleware: counts the open routes of [`IP_LIMITED_ROUTES`] per client IP before their body
/// is read, and makes the client IP known to [`Limiter::unauthenticated`] for the rest of the
/// request.
pub async fn limit_by_ip(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let open = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| IP_LIMITED_ROUTES.contains(&p.as_str()));
    if open
        && let Some(ip) = ip
        && let Err(secs) = state.limiter().ip_at(ip, Instant::now())
    {
        return limited(secs).into_response();
    }
    CLIENT_IP.scope(ip, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn later(t: Instant, ms: u64) -> Instant {
        t + Duration::from_millis(ms)
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let mut b = Buckets::<u8>::default();
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.take(&1, 2.0, 3, t), Ok(()));
        }
        assert_eq!(b.take(&1, 2.0, 3, t), Err(1));
        // Half a second at 2/s: one more.
        assert_eq!(b.take(&1, 2.0, 3, later(t, 500)), Ok(()));
        assert_eq!(b.take(&1, 2.0, 3, later(t, 500)), Err(1));
        // Another caller is not affected.
        assert_eq!(b.take(&2, 2.0, 3, later(t, 500)), Ok(()));
        // Refills no further than the burst.
        let much_later = later(t, 3_600_000);
        for _ in 0..3 {
            assert_eq!(b.take(&1, 2.0, 3, much_later), Ok(()));
        }
        assert_eq!(b.take(&1, 2.0, 3, much_later), Err(1));
    }

    #[test]
    fn retry_after_is_whole_seconds_until_a_token() {
        let mut b = Buckets::<u8>::default();
        let t = Instant::now();
        assert_eq!(b.take(&1, 0.25, 1, t), Ok(()));
        assert_eq!(b.take(&1, 0.25, 1, t), Err(4));
        assert_eq!(b.take(&1, 0.25, 1, later(t, 1500)), Err(3));
    }

    #[test]
    fn rate_zero_is_no_limit() {
        let mut b = Buckets::<u8>::default();
        let t = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(b.take(&1, 0.0, 1, t), Ok(()));
        }
        assert!(b.map.is_empty());
    }

    #[test]
    fn refilled_buckets_are_forgotten_and_the_table_is_bounded() {
        let mut b = Buckets::<u32>::default();
        let t = Instant::now();
        for k in 0..PRUNE_AT as u32 {
            assert_eq!(b.take(&k, 1.0, 5, t), Ok(()));
        }
        assert_eq!(b.map.len(), PRUNE_AT);
        // A second later every bucket has refilled: a newcomer makes room by forgetting them.
        assert_eq!(b.take(&u32::MAX, 1.0, 5, later(t, 1000)), Ok(()));
        assert_eq!(b.map.len(), 1);
    }

    #[test]
    fn admins_have_their_own_rate_and_are_not_limited_by_default() {
        let limiter = Limiter::new(RateOptions {
            device_rate: 1.0,
            device_burst: 2,
            ..RateOptions::default()
        });
        let t = Instant::now();
        assert!(limiter.device_at("w", Role::Welder, t).is_ok());
        assert!(limiter.device_at("w", Role::Welder, t).is_ok());
        assert_eq!(limiter.device_at("w", Role::Welder, t), Err(1));
        assert!(limiter.device_at("i", Role::Inspector, t).is_ok());
        for _ in 0..5_000 {
            assert!(limiter.device_at("a", Role::Admin, t).is_ok());
        }
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn options_refuse_negative_or_odd_rates() {
        assert!(rate("-1").is_err());
        assert!(rate("NaN").is_err());
        assert!(rate("inf").is_err());
        assert_eq!(rate("2.5"), Ok(2.5));
        assert_eq!(rate("0"), Ok(0.0));
    }
}
