//! Per-request observation: a request id (taken from a sane `X-Request-Id` or made fresh, and
//! always returned in that header), one structured log event per request, and the request
//! metrics. Handlers add facts only they know (the authenticated device, push outcomes, pull
//! page sizes, the error code) through the `note_*` functions, which write into a task-local slot
//! the middleware set up; outside a request they do nothing.
//!
//! Never logged: tokens, enrolment codes, request or response bodies, raw paths (route templates
//! only, since paths carry certificate numbers).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use weldguard_model::protocol::{PushResult, PushStatus};

use crate::metrics::{Metrics, PushOutcome};

/// The header carrying the request id both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// What the handler learnt about the request.
#[derive(Debug, Default)]
struct Facts {
    device_id: Option<String>,
    role: Option<&'static str>,
    error_code: Option<&'static str>,
    push: [u64; 3],
    pull_changes: Option<u64>,
}

tokio::task_local! {
    static FACTS: RefCell<Facts>;
}

fn with_facts(f: impl FnOnce(&mut Facts)) {
    let _ = FACTS.try_with(|cell| {
        if let Ok(mut facts) = cell.try_borrow_mut() {
            f(&mut facts);
        }
    });
}

/// The caller was authenticated as this device.
pub fn note_caller(device_id: &str, role: &'static str) {
    with_facts(|f| {
        f.device_id = Some(device_id.to_owned());
        f.role = Some(role);
    });
}

/// The request ends in an error answer with this stable code.
pub fn note_error(code: &'static str) {
    with_facts(|f| f.error_code = Some(code));
}

/// A push was answered with these results.
pub fn note_push(results: &[PushResult]) {
    with_facts(|f| {
        for r in results {
            let i = match r.status {
                PushStatus::Applied => 0,
                PushStatus::Duplicate => 1,
                PushStatus::Rejected => 2,
            };
            if let Some(slot) = f.push.get_mut(i) {
                *slot += 1;
            }
        }
    });
}

/// A pull page with `changes` changes was served.
pub fn note_pull(changes: usize) {
    with_facts(|f| f.pull_changes = Some(changes as u64));
}

/// A request id the client sent, when it is short and plain enough to echo and log.
fn sane_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| text.to_owned())
}

/// The middleware (install with `axum::middleware::from_fn_with_state(metrics, observe)`).
pub async fn observe(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = sane_request_id(request.headers().get(REQUEST_ID))
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let (mut response, facts) = FACTS
        .scope(RefCell::new(Facts::default()), async move {
            let response = next.run(request).await;
            let facts = FACTS.with(|cell| cell.take());
            (response, facts)
        })
        .await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }

    metrics.request(&route, &method, status, latency);
    for (outcome, n) in [
        PushOutcome::Applied,
        PushOutcome::Duplicate,
        PushOutcome::Rejected,
    ]
    .into_iter()
    .zip(facts.push)
    {
        if n > 0 {
            metrics.push_outcome(outcome, n);
        }
    }
    if let Some(changes) = facts.pull_changes {
        metrics.pull_page(changes);
    }
    if facts.error_code == Some("server.database") {
        metrics.database_error();
    }

    // Microsecond precision is plenty; absent facts (no caller, no error) are left out.
    let latency_ms = (latency.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let device_id = facts.device_id.as_deref();
    let role = facts.role;
    let error = facts.error_code;
    if status >= 500 {
        tracing::error!(
            request_id = %request_id, method = %method, route = %route, status, latency_ms,
            device_id, role, error, "request"
        );
    } else {
        tracing::info!(
            request_id = %request_id, method = %method, route = %route, status, latency_ms,
            device_id, role, error, "request"
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_request_ids_are_echoed() {
        let v = |s: &str| HeaderValue::from_str(s).ok();
        assert_eq!(
            sane_request_id(v("abc-123_X.y").as_ref()),
            Some("abc-123_X.y".into())
        );
        assert_eq!(sane_request_id(v("has space").as_ref()), None);
        assert_eq!(sane_request_id(v(&"a".repeat(65)).as_ref()), None);
        assert_eq!(sane_request_id(v("").as_ref()), None);
        assert_eq!(sane_request_id(None), None);
    }

    #[test]
    fn notes_outside_a_request_do_nothing() {
        note_error("server.database");
        note_caller("d", "admin");
    }
}
