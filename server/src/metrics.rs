//! The server's Prometheus metrics, kept by hand (a few counters and one latency histogram per
//! route) and written out in the Prometheus text exposition format (version 0.0.4) by
//! `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the latency histogram's buckets; `+Inf` follows.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// What one push entry came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Applied,
    Duplicate,
    Rejected,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Count per bucket (not cumulative; made cumulative when written).
    buckets: [u64; LATENCY_BUCKETS.len()],
    sum_seconds: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b)
            && let Some(slot) = self.buckets.get_mut(i)
        {
            *slot += 1;
        }
        self.sum_seconds += seconds;
        self.count += 1;
    }
}

/// The metrics of one server process.
#[derive(Debug)]
pub struct Metrics {
    start_time_seconds: f64,
    /// (route, method, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route → latency histogram.
    latency: Mutex<BTreeMap<String, Histogram>>,
    push_applied: AtomicU64,
    push_duplicate: AtomicU64,
    push_rejected: AtomicU64,
    pull_pages: AtomicU64,
    pull_changes: AtomicU64,
    database_errors: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(SystemTime::now())
    }
}

impl Metrics {
    /// Metrics of a process started at `started`.
    pub fn new(started: SystemTime) -> Self {
        Metrics {
            start_time_seconds: started
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            requests: Mutex::default(),
            latency: Mutex::default(),
            push_applied: AtomicU64::new(0),
            push_duplicate: AtomicU64::new(0),
            push_rejected: AtomicU64::new(0),
            pull_pages: AtomicU64::new(0),
            pull_changes: AtomicU64::new(0),
            database_errors: AtomicU64::new(0),
        }
    }

    /// One answered request. `route` is the matched route template (never the raw path, which
    /// may carry personal data such as certificate numbers).
    pub fn request(&self, route: &str, method: &str, status: u16, latency: Duration) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((route.to_owned(), method.to_owned(), status))
                .or_insert(0) += 1;
        }
        if let Ok(mut map) = self.latency.lock() {
            map.entry(route.to_owned())
                .or_default()
                .observe(latency.as_secs_f64());
        }
    }

    pub fn push_outcome(&self, outcome: PushOutcome, n: u64) {
        let counter = match outcome {
            PushOutcome::Applied => &self.push_applied,
            PushOutcome::Duplicate => &self.push_duplicate,
            PushOutcome::Rejected => &self.push_rejected,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// One pull page served with `changes` changes.
    pub fn pull_page(&self, changes: u64) {
        self.pull_pages.fetch_add(1, Ordering::Relaxed);
        self.pull_changes.fetch_add(changes, Ordering::Relaxed);
    }

    pub fn database_error(&self) {
        self.database_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "weldguard_http_requests_total",
            "counter",
            "HTTP requests answered, by matched route, method and status.",
        );
        if let Ok(map) = self.requests.lock() {
            for ((route, method, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "weldguard_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
        }
        header(
            &mut out,
            "weldguard_http_request_duration_seconds",
            "histogram",
            "Time from request to response headers, by matched route.",
        );
        if let Ok(map) = self.latency.lock() {
            for (route, h) in map.iter() {
                let route = escape(route);
                let mut cumulative = 0u64;
                for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets.iter()) {
                    cumulative += n;
                    let _ = writeln!(
                        out,
                        "weldguard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "weldguard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "weldguard_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum_seconds
                );
                let _ = writeln!(
                    out,
                    "weldguard_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        header(
            &mut out,
            "weldguard_push_entries_total",
            "counter",
            "Pushed outbox entries, by outcome.",
        );
        for (outcome, counter) in [
            ("applied", &self.push_applied),
            ("duplicate", &self.push_duplicate),
            ("rejected", &self.push_rejected),
        ] {
            let _ = writeln!(
                out,
                "weldguard_push_entries_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        simple(
            &mut out,
            "weldguard_pull_pages_total",
            "counter",
            "Registry pull pages served.",
            self.pull_pages.load(Ordering::Relaxed),
        );
        simple(
            &mut out,
            "weldguard_pull_changes_total",
            "counter",
            "Registry changes served in pull pages.",
            self.pull_changes.load(Ordering::Relaxed),
        );
        simple(
            &mut out,
            "weldguard_database_errors_total",
            "counter",
            "Requests that failed on a database error.",
            self.database_errors.load(Ordering::Relaxed),
        );
        header(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
        );
        let _ = writeln!(
            out,
            "process_start_time_seconds {}",
            self.start_time_seconds
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Append one gauge read elsewhere (the database) to the exposition text.
pub fn append_gauge(out: &mut String, name: &str, help: &str, value: i64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn simple(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A parsed sample: name, labels, value.
    type Sample = (String, Vec<(String, String)>, f64);

    /// One sample line: (name, labels, value). Fails on anything the text format does not allow.
    pub(crate) fn parse_sample(line: &str) -> Result<Sample, String> {
        let (head, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("no value: {line}"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| format!("bad value: {line}"))?,
        };
        let (name, labels) = match head.split_once('{') {
            None => (head, ""),
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}')
                    .ok_or_else(|| format!("unclosed labels: {line}"))?,
            ),
        };
        let name_ok = name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        });
        if name.is_empty() || !name_ok {
            return Err(format!("bad name: {line}"));
        }
        let mut pairs = Vec::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (key, after) = rest
                .split_once("=\"")
                .ok_or_else(|| format!("bad label: {line}"))?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("bad escape: {line}")),
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(|| format!("unclosed label value: {line}"))?;
            pairs.push((key.to_owned(), value));
            rest = after.get(end + 1..).unwrap_or("");
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        Ok((name.to_owned(), pairs, value))
    }

    /// Every line is a HELP, a TYPE or a sample of a declared family; returns the samples.
    pub(crate) fn parse(text: &str) -> Vec<Sample> {
        let mut typed: Vec<(String, String)> = Vec::new();
        let mut helped: Vec<String> = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split(' ').next().unwrap().to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                typed.push((name.to_owned(), kind.to_owned()));
            } else {
                let sample = parse_sample(line).unwrap();
                let family = typed
                    .iter()
                    .rev()
                    .find(|(n, _)| {
                        sample.0 == *n
                            || sample
                                .0
                                .strip_prefix(n.as_str())
                                .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))
                    })
                    .unwrap_or_else(|| panic!("sample of an undeclared family: {line}"));
                assert!(helped.contains(&family.0), "no HELP for {}", family.0);
                samples.push(sample);
            }
        }
        samples
    }

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
        samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| *v)
            .sum()
    }

    #[test]
    fn the_exposition_parses_and_counts_what_happened() {
        let m = Metrics::new(UNIX_EPOCH + Duration::from_secs(1_764_374_400));
        let before = parse(&m.render());
        assert_eq!(value(&before, "weldguard_pull_pages_total", &[]), 0.0);
        assert_eq!(
            value(&before, "process_start_time_seconds", &[]),
            1_764_374_400.0
        );
        m.request("/v1/pull", "GET", 200, Duration::from_millis(3));
        m.request("/v1/pull", "GET", 200, Duration::from_millis(700));
        m.request("/v1/push", "POST", 403, Duration::from_micros(200));
        m.request("odd\"route\\\n", "GET", 404, Duration::from_secs(60));
        m.push_outcome(PushOutcome::Applied, 3);
        m.push_outcome(PushOutcome::Rejected, 1);
        m.pull_page(5000);
        m.database_error();
        let after = parse(&m.render());
        let r = |route, status| {
            value(
                &after,
                "weldguard_http_requests_total",
                &[("route", route), ("status", status)],
            )
        };
        assert_eq!(r("/v1/pull", "200"), 2.0);
        assert_eq!(r("/v1/push", "403"), 1.0);
        assert_eq!(r("odd\"route\\\n", "404"), 1.0, "labels are escaped");
        let bucket = |le| {
            value(
                &after,
                "weldguard_http_request_duration_seconds_bucket",
                &[("route", "/v1/pull"), ("le", le)],
            )
        };
        assert_eq!(bucket("0.001"), 0.0);
        assert_eq!(bucket("0.005"), 1.0);
        assert_eq!(bucket("1"), 2.0, "buckets are cumulative");
        assert_eq!(bucket("+Inf"), 2.0);
        assert_eq!(
            value(
                &after,
                "weldguard_http_request_duration_seconds_bucket",
                &[("route", "odd\"route\\\n"), ("le", "10")]
            ),
            0.0,
            "a minute is past the last bound"
        );
        let sum = value(
            &after,
            "weldguard_http_request_duration_seconds_sum",
            &[("route", "/v1/pull")],
        );
        assert!((sum - 0.703).abs() < 1e-9, "{sum}");
        let push = |o| value(&after, "weldguard_push_entries_total", &[("outcome", o)]);
        assert_eq!(
            (push("applied"), push("duplicate"), push("rejected")),
            (3.0, 0.0, 1.0)
        );
        assert_eq!(value(&after, "weldguard_pull_changes_total", &[]), 5000.0);
        assert_eq!(value(&after, "weldguard_database_errors_total", &[]), 1.0);
    }

    #[test]
    fn the_parser_refuses_malformed_lines() {
        assert!(parse_sample("a_b{x=\"1\"} 2").is_ok());
        assert!(parse_sample("a_b{x=\"1\" 2").is_err());
        assert!(parse_sample("1ab 2").is_err());
        assert!(parse_sample("ab two").is_err());
        assert!(parse_sample("ab{x=1} 2").is_err());
    }
}
