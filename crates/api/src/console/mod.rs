//! The web console: a page at `/` and its ES modules and stylesheet, embedded in the binary.
//!
//! The page names its assets under `/console/{version}/`, where the version is a digest of every
//! embedded file; assets are therefore cached for a year as immutable, and the page itself is
//! revalidated on every load. Everything is sent with a Content-Security-Policy that allows only
//! this origin's scripts, styles and connections (no inline code, no framing).

mod assets;

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;
use assets::{Asset, ASSETS, INDEX};

/// The policy of the console's page and assets: same-origin code and connections only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
manifest-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Assets are addressed by version, so a cached copy never goes stale.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page is checked with the server on every load, so a new binary's assets are picked up.
const REVALIDATE: &str = "no-cache";
/// Where the page's `{{version}}` placeholder is.
const VERSION_PLACEHOLDER: &str = "{{version}}";

/// The digest of every embedded file (12 hex digits).
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut digest = Sha256::new();
    for asset in std::iter::once(&INDEX).chain(ASSETS) {
        digest.update(asset.path.as_bytes());
        digest.update([0]);
        digest.update(asset.body);
    }
    hex::encode(digest.finalize())[..12].to_owned()
});

/// Where the page's `{{modulepreload}}` placeholder is.
const PRELOAD_PLACEHOLDER: &str = "{{modulepreload}}";

/// The page with its asset version filled in and every module announced up front, so the
/// browser fetches them in parallel instead of import by import.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    let preload: String = ASSETS
        .iter()
        .filter(|a| a.path.ends_with(".js"))
        .map(|a| {
            format!(
                "<link rel=\"modulepreload\" href=\"/console/{VERSION_PLACEHOLDER}/{}\">\n",
                a.path
            )
        })
        .collect();
    String::from_utf8_lossy(INDEX.body)
        .replace(PRELOAD_PLACEHOLDER, &preload)
        .replace(VERSION_PLACEHOLDER, &VERSION)
});

/// The version under which the assets of this binary are served.
pub fn version() -> &'static str {
    &VERSION
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/console/{version}/{*path}", get(asset))
}

fn respond(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

async fn page() -> Response {
    respond(PAGE.as_bytes().to_vec(), INDEX.content_type, REVALIDATE)
}

async fn asset(Path((version, path)): Path<(String, String)>) -> Response {
    let found = (version == *VERSION)
        .then(|| ASSETS.iter().find(|a: &&Asset| a.path == path))
        .flatten();
    match found {
        Some(a) => respond(a.body.to_vec(), a.content_type, IMMUTABLE),
        None => ApiError::not_found_route().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relative module paths a script imports (`from './x.js'`), resolved against its own.
    fn imports(asset: &Asset) -> Vec<String> {
        let text = String::from_utf8_lossy(asset.body);
        let mut dir: Vec<&str> = asset.path.split('/').collect();
        dir.pop();
        text.split("from '")
            .skip(1)
            .filter_map(|rest| rest.split('\'').next())
            .filter(|spec| spec.starts_with('.'))
            .map(|spec| {
                let mut parts = dir.clone();
                for segment in spec.split('/') {
                    match segment {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                parts.join("/")
            })
            .collect()
    }

    #[test]
    fn every_imported_module_is_embedded() {
        let mut checked = 0;
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for import in imports(asset) {
                assert!(
                    ASSETS.iter().any(|a| a.path == import),
                    "{} imports {import}, which is not embedded",
                    asset.path
                );
                checked += 1;
            }
        }
        assert!(checked > 10, "only {checked} imports found");
    }

    #[test]
    fn the_page_names_only_embedded_assets_of_this_version() {
        assert!(!PAGE.contains("{{"), "a placeholder is left");
        let named: Vec<&str> = PAGE
            .split('"')
            .filter_map(|part| part.strip_prefix("/console/"))
            .collect();
        assert_eq!(named.len(), ASSETS.len() + 1, "{}", *PAGE);
        for path in named {
            let (v, file) = path.split_once('/').unwrap_or_default();
            assert_eq!(v, version());
            assert!(
                ASSETS.iter().any(|a| a.path == file),
                "{file} is not embedded"
            );
        }
    }

    #[test]
    fn the_version_is_a_digest_of_the_files() {
        assert_eq!(version().len(), 12);
        assert!(version().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
