//! The UI's static files, embedded in the binary from `router/web-ui/` (release builds carry
//! them; debug builds read the folder at run time). Served on the UI port only: `/` is
//! `index.html`, unknown paths without a file extension also get `index.html` (client-side
//! routes), anything else unknown is a 404. ETags let browsers revalidate cheaply.

use super::error::ApiError;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "web-ui/"]
#[exclude = ".*"]
#[exclude = "*/.*"]
struct Assets;

/// Whether the UI has an index page (false while `web-ui/` is empty).
pub fn has_index() -> bool {
    Assets::get("index.html").is_some()
}

pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "metrics" {
        return ApiError::NotFound(format!("no route {}", uri.path())).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::MethodNotAllowed.into_response();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    let file = match Assets::get(path) {
        Some(f) => Some((path, f)),
        None if !path.rsplit('/').next().unwrap_or("").contains('.') => {
            Assets::get("index.html").map(|f| ("index.html", f))
        }
        None => None,
    };
    let Some((name, file)) = file else {
        return ApiError::NotFound(format!("no file /{path}")).into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        file.data.into_owned().into_response()
    };
    let headers = response.headers_mut();
    let mime = file.metadata.mimetype();
    let mime = if mime.starts_with("text/") || mime.ends_with("json") || mime.ends_with("+xml") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    if let Ok(v) = HeaderValue::from_str(&mime) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    // Names carry no content hash: always revalidate (cheap with the ETag).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    tracing::trace!("ui file {name}");
    response
}
