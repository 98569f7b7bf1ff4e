//! CSRF defence for cookie-authenticated changes: the browser's `Origin` must be this server
//! itself (scheme://host:port of the request's Host header). SameSite=Strict on the cookie is
//! the first line; this check also covers old browsers and sibling subdomains.

use axum::http::{header, HeaderMap};

/// Whether `Origin` names the host the request was sent to (http or https, same host:port).
pub fn origin_matches(headers: &HeaderMap) -> bool {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let (Some(origin), Some(host)) = (get(header::ORIGIN), get(header::HOST)) else {
        return false;
    };
    if host.is_empty() || origin == "null" {
        return false;
    }
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest == host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn same_origin_only() {
        assert!(origin_matches(&headers(
            Some("http://192.168.1.1:8080"),
            "192.168.1.1:8080"
        )));
        assert!(origin_matches(&headers(
            Some("https://Router.lan"),
            "router.lan"
        )));
        assert!(!origin_matches(&headers(None, "192.168.1.1:8080")));
        assert!(!origin_matches(&headers(
            Some("http://evil.example"),
            "192.168.1.1:8080"
        )));
        assert!(!origin_matches(&headers(
            Some("http://192.168.1.1:8081"),
            "192.168.1.1:8080"
        )));
        assert!(!origin_matches(&headers(Some("null"), "router.lan")));
    }
}
