//! The web dashboard a district supervisor keeps open all day (#19 step 4;
//! docs/adr/0019-web-dashboard.md): plain HTML, CSS and JavaScript modules from
//! `server/dashboard/`, compiled into the binary and served under `/dashboard/` (`/` redirects
//! there). Nothing is fetched from outside at run time (government intranets have no internet):
//! the page talks to this server's `/v1` API only, and to the deployment's map tile server when
//! one is configured (`--dashboard-tiles`).
//!
//! Every answer carries a strict Content-Security-Policy (`default-src 'self'`, no inline script
//! or style, images from here, `data:` and the tile server's origin only, `frame-ancestors
//! 'none'`), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and
//! `Referrer-Policy: no-referrer`. Assets are revalidated on every load (`Cache-Control:
//! no-cache`) against a strong ETag (the SHA-256 of their bytes), so a new server version is
//! picked up at once and an unchanged asset costs a `304`.
//!
//! These routes are not part of the API ([`crate::http::route_table`], `openapi.json`): they
//! need no token (the page signs in itself, with a monitor's enrolment code and a WebCrypto key).

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::http::{ApiError, AppState};

/// One embedded file: its name under `/dashboard/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the dashboard serves (the tests folder is not served).
const ASSETS: [Asset; 11] = [
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../dashboard/index.html"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../dashboard/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        bytes: include_bytes!("../dashboard/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        bytes: include_bytes!("../dashboard/api.js"),
    },
    Asset {
        name: "auth.js",
        content_type: JS,
        bytes: include_bytes!("../dashboard/auth.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: JS,
        bytes: include_bytes!("../dashboard/i18n.js"),
    },
    Asset {
        name: "dom.js",
        content_type: JS,
        bytes: include_bytes!("../dashboard/dom.js"),
    },
    Asset {
        name: "map.js",
        content_type: JS,
        bytes: include_bytes!("../dashboard/map.js"),
    },
    Asset {
        name: "charts.js",
        content_type: JS,
        bytes: include_bytes!("../dashboard/charts.js"),
    },
    Asset {
        name: "views.js",
        content_type: JS,
        bytes: include_bytes!("../dashboard/views.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../dashboard/favicon.svg"),
    },
];

/// The strong ETag of each asset, in [`ASSETS`] order (computed once).
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// A map tile server (`--dashboard-tiles`): an `http(s)` URL template with `{z}`, `{x}` and `{y}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiles {
    template: String,
    origin: String,
}

/// Why a `--dashboard-tiles` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TilesError {
    #[error("dashboard.tiles_scheme: the tile URL must start with http:// or https://")]
    Scheme,
    #[error(
        "dashboard.tiles_host: the tile URL needs a host of letters, digits, '.', '-' and an optional :port"
    )]
    Host,
    #[error("dashboard.tiles_placeholders: the tile URL must hold {{z}}, {{x}} and {{y}}")]
    Placeholders,
    #[error(
        "dashboard.tiles_characters: the tile URL holds a space, quote, ';' or control character"
    )]
    Characters,
}

impl Tiles {
    /// Check a URL template and find its origin (for the page's CSP `img-src`).
    pub fn parse(template: &str) -> Result<Tiles, TilesError> {
        if template
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | ';' | ','))
        {
            return Err(TilesError::Characters);
        }
        let (scheme, rest) = template
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or(TilesError::Scheme)?;
        let host = rest.split('/').next().unwrap_or("");
        let host_ok = !host.is_empty()
            && host.len() <= 255
            && !host.starts_with(['.', '-', ':'])
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if !host_ok {
            return Err(TilesError::Host);
        }
        if !["{z}", "{x}", "{y}"].iter().all(|p| rest.contains(p)) {
            return Err(TilesError::Placeholders);
        }
        Ok(Tiles {
            template: template.to_owned(),
            origin: format!("{scheme}://{host}"),
        })
    }

    /// The URL template as given.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// The Content-Security-Policy of every dashboard answer.
pub fn content_security_policy(tiles: Option<&Tiles>) -> String {
    let img = match tiles {
        Some(t) => format!("img-src 'self' data: {}", t.origin()),
        None => "img-src 'self' data:".to_owned(),
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; {img}; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

fn secure(headers: &mut HeaderMap, tiles: Option<&Tiles>) {
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(tiles)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The dashboard's routes (merged into [`crate::http::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(to_dashboard))
        .route("/dashboard", get(to_dashboard))
        .route("/dashboard/", get(index))
        .route("/dashboard/config.json", get(config))
        .route("/dashboard/{file}", get(asset))
}

async fn to_dashboard() -> Redirect {
    Redirect::to("/dashboard/")
}

async fn index(state: State<AppState>, headers: HeaderMap) -> Response {
    asset(state, headers, Path("index.html".to_owned())).await
}

/// `GET /dashboard/{file}`: an embedded asset, `304` when the client's copy is current.
async fn asset(
    State(state): State<AppState>,
    request: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    let tiles = state.dashboard_tiles();
    let Some(i) = ASSETS.iter().position(|a| a.name == file) else {
        let mut answer = ApiError::new(
            StatusCode::NOT_FOUND,
            "route.not_found",
            format!("no dashboard file {file:?}"),
        )
        .into_response();
        secure(answer.headers_mut(), tiles);
        return answer;
    };
    let (item, etag) = (&ASSETS[i], &etags()[i]);
    let current = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut answer = if current {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(item.content_type),
            )],
            item.bytes,
        )
            .into_response()
    };
    let headers = answer.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(headers, tiles);
    answer
}

/// `GET /dashboard/config.json`'s answer.
#[derive(Debug, Serialize)]
struct Config<'a> {
    /// The tile server's URL template, or `null`: the map is drawn without tiles.
    tiles: Option<&'a str>,
    /// The server's version.
    version: &'static str,
}

/// `GET /dashboard/config.json`: what the page needs to know about this deployment.
async fn config(State(state): State<AppState>) -> Response {
    let tiles = state.dashboard_tiles();
    let body = Config {
        tiles: tiles.map(Tiles::template),
        version: env!("CARGO_PKG_VERSION"),
    };
    let mut answer = axum::Json(body).into_response();
    let headers = answer.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(headers, tiles);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_template_needs_a_scheme_a_host_and_the_three_placeholders() {
        let t = Tiles::parse("https://tiles.gov.example:8443/osm/{z}/{x}/{y}.png").unwrap();
        assert_eq!(t.origin(), "https://tiles.gov.example:8443");
        assert_eq!(Tiles::parse("ftp://a/{z}/{x}/{y}"), Err(TilesError::Scheme));
        assert_eq!(Tiles::parse("https:///{z}/{x}/{y}"), Err(TilesError::Host));
        assert_eq!(
            Tiles::parse("https://a_b/{z}/{x}/{y}"),
            Err(TilesError::Host)
        );
        assert_eq!(
            Tiles::parse("https://a/{z}/{x}.png"),
            Err(TilesError::Placeholders)
        );
        // Nothing that could end the CSP directive or add a source.
        assert_eq!(
            Tiles::parse("https://a/{z}/{x}/{y}; script-src *"),
            Err(TilesError::Characters)
        );
        assert_eq!(
            Tiles::parse("https://a/{z}/{x}/{y}'"),
            Err(TilesError::Characters)
        );
    }

    #[test]
    fn the_policy_allows_the_tile_origin_for_images_only() {
        let t = Tiles::parse("http://10.1.2.3:8080/{z}/{x}/{y}.png").unwrap();
        let csp = content_security_policy(Some(&t));
        assert!(
            csp.contains("img-src 'self' data: http://10.1.2.3:8080;"),
            "{csp}"
        );
        assert!(csp.contains("default-src 'self';"));
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe"));
        let plain = content_security_policy(None);
        assert!(plain.contains("img-src 'self' data:;"), "{plain}");
    }

    #[test]
    fn every_asset_is_embedded_with_a_distinct_name_and_tag() {
        let names: std::collections::BTreeSet<_> = ASSETS.iter().map(|a| a.name).collect();
        assert_eq!(names.len(), ASSETS.len());
        assert!(ASSETS.iter().all(|a| !a.bytes.is_empty()));
        let tags: std::collections::BTreeSet<_> = etags().iter().collect();
        assert_eq!(tags.len(), ASSETS.len());
        // The page loads its code as a module from this folder, nothing inline.
        let index = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        assert!(index.contains("<script type=\"module\" src=\"app.js\">"));
        assert!(!index.contains("style="));
        assert!(!index.contains("<style"));
    }
}
