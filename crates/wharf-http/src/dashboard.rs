//! The web dashboard: three static files compiled into the binary and served
//! under `/dashboard/`. The page holds no secret and gets no privilege from
//! the server: it asks for an API token and calls the same v4 API as every
//! other client, with that token, from the browser.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One file of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Page,
    Script,
    Style,
}

impl Asset {
    /// The asset a path under `/dashboard` names, if any.
    pub fn at(path: &str) -> Option<Asset> {
        match path {
            "/dashboard" | "/dashboard/" | "/dashboard/index.html" => Some(Asset::Page),
            "/dashboard/app.js" => Some(Asset::Script),
            "/dashboard/app.css" => Some(Asset::Style),
            _ => None,
        }
    }

    fn content(self) -> (&'static str, &'static str) {
        match self {
            Asset::Page => ("text/html; charset=utf-8", include_str!("../dashboard/index.html")),
            Asset::Script => ("text/javascript; charset=utf-8", include_str!("../dashboard/app.js")),
            Asset::Style => ("text/css; charset=utf-8", include_str!("../dashboard/app.css")),
        }
    }
}

/// Scripts and styles only from this server, no inline code, no framing:
/// message bodies shown on the page cannot run as code even if a rendering
/// bug let markup through.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn respond(asset: Asset) -> Response {
    let (content_type, body) = asset.content();
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        // Small files that change with the binary: revalidate every time.
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (HeaderName::from_static("content-security-policy"), HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer")),
    ];
    (StatusCode::OK, headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type_and_the_policy() {
        for (path, content_type) in [
            ("/dashboard", "text/html; charset=utf-8"),
            ("/dashboard/", "text/html; charset=utf-8"),
            ("/dashboard/app.js", "text/javascript; charset=utf-8"),
            ("/dashboard/app.css", "text/css; charset=utf-8"),
        ] {
            let asset = Asset::at(path).unwrap_or_else(|| panic!("{path} is an asset"));
            let response = respond(asset);
            assert_eq!(response.headers()[CONTENT_TYPE], content_type, "{path}");
            assert!(response.headers()["content-security-policy"].to_str().is_ok_and(|p| p.contains("'self'")));
        }
        assert_eq!(Asset::at("/dashboard/../etc/passwd"), None);
        assert_eq!(Asset::at("/dashboard/app.js.map"), None);
    }
}
