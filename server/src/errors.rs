//! One error shape for every answer: the API's JSON error (`{"code": …, "message": …}`, see
//! [`crate::http::ApiError`]) also for an unknown route (`404 route.not_found`), a method the
//! route does not serve (`405 route.method_not_allowed`), a body over the size limit
//! (`413 request.too_large`), a body that did not arrive in time (`408 request.body_timeout`), a
//! path parameter that is not UTF-8 or not what the route expects (`400 request.bad_path`), a
//! query string that cannot be read (`400 request.bad_query`), and any other answer the
//! framework makes in plain text. And content types: a request carrying a body must say
//! `Content-Type: application/json` (a `charset` parameter, if any, must be `utf-8`), else
//! `415 request.unsupported_media_type`; requests without a body need no content type. A body
//! announced over the size limit is refused (`413`) before any of it is read.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::ApiError;
use crate::serve::BodyTimedOut;

/// Most bytes of a plain-text error answer kept as the JSON error's message.
const MESSAGE_BYTES: usize = 1024;

/// The router's fallback: no such route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route.not_found",
        format!("no route {}", uri.path()),
    )
}

/// The router's fallback for a known path asked with a method it does not serve.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "route.method_not_allowed",
        format!("{method} is not served on {}", uri.path()),
    )
}

/// Whether a `Content-Type` value is JSON in UTF-8.
fn is_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let essence = parts.next().unwrap_or_default();
    essence.eq_ignore_ascii_case("application/json")
        && parts.all(|p| match p.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            }
            _ => true,
        })
}

/// Whether a request carries a body (a positive `Content-Length`, or any `Transfer-Encoding`).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Middleware: a request with a body must be JSON, and one that announces a body over the size
/// limit is refused before any of it is read.
pub async fn check_body(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > crate::http::MAX_BODY_BYTES as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
            format!(
                "a request body may have at most {} bytes",
                crate::http::MAX_BODY_BYTES
            ),
        )
        .into_response();
    }
    if has_body(headers) {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(is_json) {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request.unsupported_media_type",
                format!(
                    "a request body must be JSON (Content-Type: application/json), not {:?}",
                    content_type.unwrap_or("nothing")
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// The stable code of a plain-text error answer the framework made.
fn code_for(status: StatusCode, text: &str) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "route.not_found",
        StatusCode::METHOD_NOT_ALLOWED => "route.method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "request.too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "request.unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "request.timeout",
        StatusCode::TOO_MANY_REQUESTS => "rate.limited",
        // axum's path and query rejections; other bad requests are told apart by nothing.
        StatusCode::BAD_REQUEST if text.starts_with("Invalid URL") => "request.bad_path",
        StatusCode::BAD_REQUEST if text.starts_with("Failed to deserialize query") => {
            "request.bad_query"
        }
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "request.invalid",
        s if s.is_server_error() => "server.internal",
        _ => "request.refused",
    }
}

/// Whether an answer already is JSON.
fn answer_is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json)
}

/// Middleware: turns every error answer that is not JSON yet into the API's JSON error (same
/// status, same other headers), and a request whose body timed out into `408`.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let timed_out = request.extensions().get::<BodyTimedOut>().cloned();
    let response = next.run(request).await;
    if timed_out.is_some_and(|t| t.is_set()) {
        let mut answer = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request.body_timeout",
            "the request body did not arrive in time",
        )
        .into_response();
        answer.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return answer;
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || answer_is_json(response.headers())
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MESSAGE_BYTES)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let text = text.trim();
    let code = code_for(status, text);
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text.to_owned()
    };
    let mut answer = ApiError::new(status, code, message).into_response();
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    answer.headers_mut().extend(parts.headers);
    answer
}

/// A plain-text answer (for tests of the mapping).
#[cfg(test)]
fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(axum::body::Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=UTF-8"));
        assert!(is_json("application/json;charset=\"utf-8\""));
        assert!(!is_json("application/json; charset=latin1"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonx"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json(""));
    }

    #[test]
    fn a_body_is_a_positive_length_or_any_transfer_encoding() {
        let mut h = HeaderMap::new();
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, "0".parse().unwrap());
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, "12".parse().unwrap());
        assert!(has_body(&h));
        let mut h = HeaderMap::new();
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        assert!(has_body(&h));
    }

    #[test]
    fn framework_rejections_get_stable_codes() {
        let bad = StatusCode::BAD_REQUEST;
        assert_eq!(
            code_for(bad, "Invalid URL: Cannot parse `%FF`"),
            "request.bad_path"
        );
        assert_eq!(
            code_for(bad, "Failed to deserialize query string: x"),
            "request.bad_query"
        );
        assert_eq!(code_for(bad, "something"), "request.invalid");
        assert_eq!(
            code_for(StatusCode::PAYLOAD_TOO_LARGE, ""),
            "request.too_large"
        );
        assert_eq!(code_for(StatusCode::BAD_GATEWAY, ""), "server.internal");
    }

    #[tokio::test]
    async fn plain_text_errors_become_json_and_keep_their_headers() {
        use axum::routing::get;
        let app = axum::Router::new()
            .route(
                "/plain",
                get(|| async {
                    let mut r = plain(StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded");
                    r.headers_mut()
                        .insert("x-kept", header::HeaderValue::from_static("yes"));
                    r
                }),
            )
            .route("/ok", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(json_errors));
        let call = |path: &'static str| {
            let app = app.clone();
            async move {
                let request = Request::builder().uri(path).body(Body::empty()).unwrap();
                tower_service::Service::call(&mut app.into_service(), request)
                    .await
                    .unwrap()
            }
        };
        let r = call("/plain").await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.headers()["x-kept"], "yes");
        assert!(answer_is_json(r.headers()));
        let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "request.too_large");
        assert_eq!(json["message"], "length limit exceeded");
        let r = call("/ok").await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        assert_eq!(&body[..], b"fine");
    }
}
