//! Request extractors whose rejections are [`ApiError`]s: JSON bodies and query strings that
//! name the offending field (`minutes`, `wans[0].weight`), and the client's address.

use super::error::{ApiError, FieldError};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A JSON body; a bad one answers 400 with the field's path and what is wrong with it.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest {
                    message: r.body_text(),
                    fields: vec![],
                }
            }
        })?;
        parse_json(&body).map(ApiJson)
    }
}

/// Deserialize JSON bytes, locating any error by its path in the document.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest {
                message: format!("body is not valid JSON: {inner}"),
                fields: vec![],
            };
        }
        let field = located(&e.path().to_string(), &inner.to_string());
        ApiError::BadRequest {
            message: format!("{}: {}", field.path, field.reason),
            fields: vec![field],
        }
    })?;
    de.end().map_err(|e| ApiError::BadRequest {
        message: format!("body is not valid JSON: {e}"),
        fields: vec![],
    })?;
    Ok(value)
}

/// A query string; a bad one answers 400 naming the parameter.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let field = located(&e.path().to_string(), &e.inner().to_string());
                ApiError::BadRequest {
                    message: format!("query {}: {}", field.path, field.reason),
                    fields: vec![field],
                }
            })
    }
}

/// The path of an error: serde_path_to_error's path, completed with the field that a
/// "missing field `x`" / "unknown field `x`" message names, and the reason without the
/// "at line 1 column 12" suffix.
pub fn located(path: &str, message: &str) -> FieldError {
    let mut path = if path == "." {
        String::new()
    } else {
        path.to_string()
    };
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some(name) = rest.split('`').next() {
                if !path.ends_with(name) {
                    path = if path.is_empty() {
                        name.to_string()
                    } else {
                        format!("{path}.{name}")
                    };
                }
            }
        }
    }
    let reason = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    FieldError::new(path, reason)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The peer's address (IPv4-mapped IPv6 shown as IPv4). Headers such as X-Forwarded-For are
/// ignored: there is no proxy in front of this server. Without connection info (in-process
/// tests that insert none) the address is 0.0.0.0, which counts as not on the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(ClientIp(client_ip(parts)))
    }
}

pub fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Loopback, RFC 1918, link-local, CGNAT (100.64/10) or IPv6 unique-local/link-local: the
/// addresses a LAN client can have. The firewall drops 8080/8081 from the WANs anyway; this
/// is the second line for the default password.
pub fn is_lan_address(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            v6.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_and_typed_fields() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            username: String,
            minutes: u32,
        }
        let e = parse_json::<Body>(br#"{"minutes": 3}"#).unwrap_err();
        let ApiError::BadRequest { fields, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(fields[0].path, "username");
        let e = parse_json::<Body>(br#"{"username": "a", "minutes": "x"}"#).unwrap_err();
        let ApiError::BadRequest { fields, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(fields[0].path, "minutes");
        assert!(!fields[0].reason.contains("line"), "{}", fields[0].reason);
    }

    #[test]
    fn lan_addresses() {
        for ip in [
            "127.0.0.1",
            "192.168.1.20",
            "10.1.2.3",
            "172.16.0.9",
            "fd00::1",
            "::1",
        ] {
            assert!(is_lan_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["203.0.113.7", "8.8.8.8", "2001:db8::1", "0.0.0.0"] {
            assert!(!is_lan_address(ip.parse().unwrap()), "{ip}");
        }
    }
}
