//! The request head on the wire, and the WebHeaderCollection rules of a request's headers.
//!
//! The bytes follow .NET Framework 4's HttpWebRequest: the request line with the path and
//! query of the URI, then the caller's headers in the order they were first set (the properties
//! ContentType, UserAgent, Accept, Referer, ... set headers of that collection too), then the
//! headers the request adds itself, in this order:
//!
//! ```text
//! POST /upload?x=1 HTTP/1.1\r\n
//! Content-Type: text/plain\r\n          (the caller's headers, in order)
//! Host: localhost:8080\r\n              (the port only when it is not the scheme's default)
//! Content-Length: 5\r\n                 (or Transfer-Encoding: chunked)
//! Accept-Encoding: gzip, deflate\r\n    (when AutomaticDecompression asks, unless set)
//! Expect: 100-continue\r\n              (Expect100Continue, with a body, HTTP/1.1)
//! Connection: Keep-Alive\r\n            (first request of a connection; Close without KeepAlive)
//! \r\n
//! ```
//!
//! Through an http proxy the request line carries the absolute URI (`GET http://host:8080/x
//! HTTP/1.1`) and `Proxy-Authorization` follows `Authorization`; `Connection` then speaks to the
//! proxy, as HTTP/1.1 has it (the Framework sent `Proxy-Connection: Keep-Alive` instead).
//! An https request through a proxy first opens a tunnel with `connect_head`, then goes in
//! origin form inside it.
//!
//! .NET 8's own HttpWebRequest, measured against the same server (bindings/dotnet/tests/HttpTests.cs,
//! TheRequestHeadBesideDotnet8s), sends the same lines in another order: `Host` and
//! `Connection: Keep-Alive` first, then the caller's headers, then `Content-Length`; it also sends
//! `Connection: Keep-Alive` on every request, where the Framework (and this) send it on a
//! connection's first. Servers treat both the same. `Expect: 100-continue` is off by default
//! here (the Framework's ServicePoint default is on; .NET 8 sends it only when asked).

use super::msg;
use crate::error::{Error, Result};
use url::Url;

/// The headers .NET's WebHeaderCollection refuses for a request (they have properties).
const RESTRICTED: &[&str] = &[
    "Accept",
    "Connection",
    "Content-Length",
    "Content-Type",
    "Date",
    "Expect",
    "Host",
    "If-Modified-Since",
    "Range",
    "Referer",
    "Transfer-Encoding",
    "User-Agent",
    "Proxy-Connection",
];

pub fn is_restricted(name: &str) -> bool {
    RESTRICTED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value with .NET's CheckBadChars: CR or LF only as a folded line break (followed by a
/// space or tab), no other control character; surrounding white space trimmed.
pub fn check_value(value: &str) -> Result<String> {
    let b = value.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let folded = |j: usize| b.get(j).is_some_and(|&n| n == b' ' || n == b'\t');
        match c {
            b'\r' if b.get(i + 1) == Some(&b'\n') && folded(i + 2) => {}
            b'\n' if i > 0 && b[i - 1] == b'\r' && folded(i + 1) => {}
            b'\r' | b'\n' => return Err(Error::argument(msg::BAD_HEADER_CRLF)),
            c if c < 0x20 && c != b'\t' || c == 0x7f => return Err(Error::argument(msg::BAD_HEADER_CHARS)),
            _ => {}
        }
    }
    Ok(value.trim_matches(|c| c == ' ' || c == '\t').to_string())
}

pub fn check_name(name: &str) -> Result<()> {
    if is_token(name) {
        Ok(())
    } else {
        Err(Error::argument(msg::BAD_HEADER_CHARS))
    }
}

/// A WebHeaderCollection: names case-insensitive, first-set order kept, several values of a
/// name joined with "," as .NET's Get does.
#[derive(Clone, Default, Debug)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn set(&mut self, name: &str, value: String) {
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
        let mut seen = false;
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name) || !std::mem::replace(&mut seen, true));
    }

    pub fn add(&mut self, name: &str, value: String) {
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(slot) if !value.is_empty() => {
                if slot.1.is_empty() {
                    slot.1 = value
                } else {
                    slot.1 = format!("{},{value}", slot.1)
                }
            }
            Some(_) => {}
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How the body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body and no Content-Length (GET, HEAD, ...).
    None,
    Length(u64),
    Chunked,
}

/// What the request adds to the caller's headers.
pub struct HeadParams<'a> {
    pub method: &'a str,
    pub uri: &'a Url,
    pub headers: &'a Headers,
    pub framing: Framing,
    pub http11: bool,
    pub keep_alive: bool,
    /// The first request on its connection (`Connection: Keep-Alive` is sent then).
    pub new_connection: bool,
    pub accept_encoding: Option<&'a str>,
    pub expect_continue: bool,
    pub authorization: Option<&'a str>,
    /// Through an http proxy: the absolute-form target and the proxy's credentials.
    pub absolute: bool,
    pub proxy_authorization: Option<&'a str>,
}

/// `host[:port]` as the Host header carries it (the port only when it is not the default).
pub fn host_header(uri: &Url) -> String {
    let host = uri.host_str().unwrap_or("");
    match uri.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// The request line and headers, ending with the empty line.
pub fn serialize(p: &HeadParams) -> Vec<u8> {
    let mut target = if p.absolute { format!("{}://{}", p.uri.scheme(), host_header(p.uri)) } else { String::new() };
    target.push_str(p.uri.path());
    if let Some(q) = p.uri.query() {
        target.push('?');
        target.push_str(q);
    }
    let version = if p.http11 { "1.1" } else { "1.0" };
    let mut out = format!("{} {} HTTP/{version}\r\n", p.method, target);
    for (n, v) in p.headers.iter() {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    let mine = |n: &str| p.headers.get(n).is_none();
    if mine("Host") {
        out.push_str(&format!("Host: {}\r\n", host_header(p.uri)));
    }
    match p.framing {
        Framing::None => {}
        Framing::Length(n) => out.push_str(&format!("Content-Length: {n}\r\n")),
        Framing::Chunked => out.push_str("Transfer-Encoding: chunked\r\n"),
    }
    if let Some(enc) = p.accept_encoding.filter(|_| mine("Accept-Encoding")) {
        out.push_str(&format!("Accept-Encoding: {enc}\r\n"));
    }
    if let Some(auth) = p.authorization.filter(|_| mine("Authorization")) {
        out.push_str(&format!("Authorization: {auth}\r\n"));
    }
    if let Some(auth) = p.proxy_authorization.filter(|_| mine("Proxy-Authorization")) {
        out.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    if p.expect_continue && p.http11 && p.framing != Framing::None && p.framing != Framing::Length(0) {
        out.push_str("Expect: 100-continue\r\n");
    }
    let user_connection = p.headers.get("Connection").is_some();
    if !p.keep_alive {
        if !user_connection {
            out.push_str("Connection: Close\r\n");
        }
    } else if (p.new_connection || !p.http11) && !user_connection {
        out.push_str("Connection: Keep-Alive\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The CONNECT request that opens a tunnel to `host:port` (`host` bracketed when IPv6), as the
/// Framework sends it: the authority as target and as Host.
pub fn connect_head(host: &str, port: u16, proxy_authorization: Option<&str>) -> Vec<u8> {
    let mut out = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    if let Some(auth) = proxy_authorization {
        out.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_written_as_the_framework_writes_them() {
        let uri = Url::parse("http://localhost:8080/upload?x=1").unwrap();
        let mut headers = Headers::default();
        headers.set("Content-Type", "text/plain".into());
        let p = HeadParams {
            method: "POST",
            uri: &uri,
            headers: &headers,
            framing: Framing::Length(5),
            http11: true,
            keep_alive: true,
            new_connection: true,
            accept_encoding: None,
            expect_continue: false,
            authorization: None,
            absolute: false,
            proxy_authorization: None,
        };
        assert_eq!(
            String::from_utf8(serialize(&p)).unwrap(),
            "POST /upload?x=1 HTTP/1.1\r\nContent-Type: text/plain\r\nHost: localhost:8080\r\n\
             Content-Length: 5\r\nConnection: Keep-Alive\r\n\r\n"
        );
        let uri = Url::parse("https://example.com/").unwrap();
        let p = HeadParams { method: "GET", uri: &uri, framing: Framing::None, new_connection: false, ..p };
        assert_eq!(String::from_utf8(serialize(&p)).unwrap(), "GET / HTTP/1.1\r\nContent-Type: text/plain\r\nHost: example.com\r\n\r\n");
        let uri = Url::parse("http://localhost:8080/a?b=1#frag").unwrap();
        let p = HeadParams { uri: &uri, absolute: true, proxy_authorization: Some("Basic eA=="), headers: &Headers::default(), ..p };
        assert_eq!(
            String::from_utf8(serialize(&p)).unwrap(),
            "GET http://localhost:8080/a?b=1 HTTP/1.1\r\nHost: localhost:8080\r\nProxy-Authorization: Basic eA==\r\n\r\n"
        );
        assert_eq!(
            String::from_utf8(connect_head("[::1]", 443, None)).unwrap(),
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"
        );
    }

    #[test]
    fn header_rules_follow_web_header_collection() {
        assert!(is_restricted("content-type") && is_restricted("Host") && !is_restricted("X-Mine"));
        assert!(check_name("Bad Name").is_err() && check_name("X-Ok").is_ok());
        assert_eq!(check_value("a\r\nb").unwrap_err().message, msg::BAD_HEADER_CRLF);
        assert_eq!(check_value(" a\r\n b ").unwrap(), "a\r\n b");
        let mut h = Headers::default();
        h.add("X-A", "1".into());
        h.add("x-a", "2".into());
        assert_eq!(h.get("X-a"), Some("1,2"));
        h.set("X-A", "3".into());
        assert_eq!((h.get("x-A"), h.len()), (Some("3"), 1));
    }
}
