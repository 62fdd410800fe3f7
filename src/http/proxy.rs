//! HttpWebRequest.Proxy: an explicit http proxy, none, or the default one, which is the
//! environment's as .NET 8's HttpClient.DefaultProxy reads it on Linux (dotnet/runtime
//! SocketsHttpHandler/HttpEnvironmentProxy.cs and HttpEnvironmentProxy.Unix.cs):
//!
//! * `http_proxy` for http URIs (`HTTP_PROXY` too, unless `GATEWAY_INTERFACE` says this is a CGI
//!   program, where a request's `Proxy:` header would arrive as HTTP_PROXY: "httpoxy"),
//!   `https_proxy` / `HTTPS_PROXY` for https, `all_proxy` / `ALL_PROXY` for whichever of the two
//!   is unset; lower case first.
//! * A value is `[http://][user[:password]@]host[:port]` (80 by default; what follows the port's
//!   digits is ignored; the user information is percent-decoded when it decodes). A value that
//!   does not parse, or names another scheme, counts as unset (.NET's GetUriFromString gives null).
//! * `no_proxy` / `NO_PROXY`: a comma list (entries trimmed, empty ones dropped), common to http
//!   and https. `.example.com` bypasses example.com and every name under it; any other entry
//!   bypasses the host equal to it (case-insensitive). As in .NET 8, nothing else is special: `*`
//!   and `host:port` entries match no host (dotnet/runtime#61840 settled this as documented
//!   behaviour), and loopback names and addresses go through the proxy unless listed.
//! * The environment is read once per process, at the first request that needs it, as .NET reads
//!   DefaultProxy once.
//!
//! Credentials for the proxy (Basic) come from the proxy URI's user information or from the
//! request's proxy credentials (WebProxy.Credentials), the latter first.

use super::msg;
use crate::error::{Error, Result};
use std::sync::LazyLock;
use url::Url;

/// A proxy to go through: an http proxy's host and port, and its Basic credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
}

impl Proxy {
    /// `http://host:port/`, the proxy's address as WebProxy.Address shows it (no credentials).
    pub fn address(&self) -> String {
        format!("http://{}:{}/", self.host, self.port)
    }
}

/// HttpWebRequest.Proxy.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Setting {
    /// WebRequest.DefaultWebProxy: the environment's.
    #[default]
    Default,
    /// `Proxy = null`: straight to the server.
    None,
    /// `Proxy = new WebProxy(uri)`, used for every URI (see `for_uri`).
    Explicit(Proxy),
}

/// Percent-decoding where it decodes (.NET's opportunistic Uri.UnescapeDataString): a `%` not
/// followed by two hex digits stays, and so does the whole text when the bytes are not UTF-8.
fn percent_decode(s: &str) -> String {
    let (b, mut out, mut i) = (s.as_bytes(), Vec::with_capacity(s.len()), 0);
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(v) if b[i] == b'%' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// An explicit proxy URI: absolute `http://[user[:password]@]host[:port][/]`. Any other scheme, a
/// path, query or fragment is refused (ARGUMENT), as is a URI that does not parse.
pub fn parse_explicit(text: &str) -> Result<Proxy> {
    let uri = Url::parse(text)
        .map_err(|e| Error::argument(format!("Invalid URI: The format of the URI could not be determined. ({e})")))?;
    if uri.scheme() != "http" {
        return Err(Error::not_supported(msg::PROXY_SCHEME));
    }
    let host = uri
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::argument("Invalid URI: The hostname could not be parsed."))?;
    if uri.path() != "/" || uri.query().is_some() || uri.fragment().is_some() {
        return Err(Error::argument("A proxy URI is a scheme, a host and a port: it has no path, query or fragment."));
    }
    let credentials = (!uri.username().is_empty() || uri.password().is_some())
        .then(|| (percent_decode(uri.username()), uri.password().map(percent_decode).unwrap_or_default()));
    Ok(Proxy { host: host.to_string(), port: uri.port_or_known_default().unwrap_or(80), credentials })
}

/// An environment value, as .NET's HttpEnvironmentProxy.GetUriFromString reads it; None when it
/// is unset or does not parse.
pub fn parse_environment(value: Option<&str>) -> Option<Proxy> {
    let mut value = value.filter(|v| !v.is_empty())?;
    if value.len() >= 7 && value[..7].eq_ignore_ascii_case("http://") {
        value = &value[7..];
    }
    let mut credentials = None;
    if let Some(at) = value.rfind('@') {
        let auth = percent_decode(&value[..at]);
        value = &value[at + 1..];
        credentials = Some(match auth.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (auth, String::new()),
        });
    }
    let bracket = value.find(']');
    let (host, port) = match value.rfind(':') {
        Some(colon) if bracket.map_or(true, |b| colon > b) => {
            let digits: String = value[colon + 1..].chars().take_while(char::is_ascii_digit).collect();
            (&value[..colon], digits.parse::<u16>().ok()?)
        }
        _ => (value, 80),
    };
    // Only a host may remain (.NET's UriBuilder refuses anything else: "https://x" for instance).
    let uri = Url::parse(&format!("http://{host}:{port}/")).ok()?;
    if host.is_empty() || uri.path() != "/" || uri.username() != "" || uri.host_str().is_none() {
        return None;
    }
    let credentials = credentials.filter(|(u, p)| !(u.trim().is_empty() && p.is_empty()));
    Some(Proxy { host: uri.host_str()?.to_string(), port, credentials })
}

/// The environment's proxies and bypass list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    pub http: Option<Proxy>,
    pub https: Option<Proxy>,
    pub bypass: Vec<String>,
}

impl Environment {
    /// Reads the variables through `get` (HttpEnvironmentProxy.TryCreate's order).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Environment {
        let var = |n: &str| parse_environment(get(n).as_deref());
        let mut http = var("http_proxy");
        if http.is_none() && get("GATEWAY_INTERFACE").is_none() {
            http = var("HTTP_PROXY");
        }
        let mut https = var("https_proxy").or_else(|| var("HTTPS_PROXY"));
        if http.is_none() || https.is_none() {
            let all = var("all_proxy").or_else(|| var("ALL_PROXY"));
            http = http.or_else(|| all.clone());
            https = https.or(all);
        }
        let bypass = get("no_proxy")
            .or_else(|| get("NO_PROXY"))
            .map(|l| l.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        Environment { http, https, bypass }
    }

    /// IsMatchInBypassList: `.domain` matches the domain and the names under it, anything else
    /// only the host equal to it.
    pub fn bypasses(&self, host: &str) -> bool {
        self.bypass.iter().any(|entry| match entry.strip_prefix('.') {
            Some(domain) => {
                host.eq_ignore_ascii_case(domain)
                    || (host.len() > entry.len() && host[host.len() - entry.len()..].eq_ignore_ascii_case(entry))
            }
            None => host.eq_ignore_ascii_case(entry),
        })
    }

    /// GetProxy unless IsBypassed.
    pub fn for_uri(&self, uri: &Url) -> Option<&Proxy> {
        let proxy = if uri.scheme() == "https" { self.https.as_ref() } else { self.http.as_ref() }?;
        (!self.bypasses(uri.host_str().unwrap_or(""))).then_some(proxy)
    }
}

static ENVIRONMENT: LazyLock<Environment> = LazyLock::new(|| Environment::read(|n| std::env::var(n).ok()));

impl Setting {
    /// The proxy a request to `uri` goes through, with `credentials` (the request's proxy
    /// credentials) in place of the proxy URI's when set. An explicit proxy serves every URI,
    /// loopback included (as .NET 8's WebProxy; the Framework's bypassed loopback).
    pub fn for_uri(&self, uri: &Url, credentials: Option<&(String, String)>) -> Option<Proxy> {
        let proxy = match self {
            Setting::None => None,
            Setting::Explicit(p) => Some(p.clone()),
            Setting::Default => ENVIRONMENT.for_uri(uri).cloned(),
        }?;
        match credentials {
            Some(c) => Some(Proxy { credentials: Some(c.clone()), ..proxy }),
            None => Some(proxy),
        }
    }
}

/// `Basic base64(user:password)`, the Proxy-Authorization (and Authorization) value.
pub fn basic(credentials: &(String, String)) -> String {
    format!("Basic {}", openssl::base64::encode_block(format!("{}:{}", credentials.0, credentials.1).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Environment {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Environment::read(|n| m.get(n).cloned())
    }

    fn p(host: &str, port: u16) -> Option<Proxy> {
        Some(Proxy { host: host.into(), port, credentials: None })
    }

    #[test]
    fn environment_values_parse_as_dotnet_parses_them() {
        assert_eq!(parse_environment(Some("proxy.example:3128")), p("proxy.example", 3128));
        assert_eq!(parse_environment(Some("HTTP://proxy.example:3128/")), p("proxy.example", 3128));
        assert_eq!(parse_environment(Some("proxy.example")), p("proxy.example", 80));
        assert_eq!(parse_environment(Some("[::1]:8080")), p("[::1]", 8080));
        assert_eq!(parse_environment(Some("[::1]")), p("[::1]", 80));
        let with = parse_environment(Some("http://us%40er:p%3Ass@proxy:1")).unwrap();
        assert_eq!(with.credentials, Some(("us@er".into(), "p:ss".into())));
        let raw = parse_environment(Some("u+1:a&b=c%zz@proxy:1")).unwrap();
        assert_eq!(raw.credentials, Some(("u+1".into(), "a&b=c%zz".into())));
        assert_eq!(parse_environment(Some("u@proxy:1")).unwrap().credentials, Some(("u".into(), String::new())));
        assert_eq!(parse_environment(Some("proxy:99999")), None);
        assert_eq!(parse_environment(Some("https://proxy:443")), None);
        assert_eq!(parse_environment(Some("")), None);
        assert_eq!(parse_environment(None), None);
    }

    #[test]
    fn variables_are_read_in_dotnets_order() {
        let e = env(&[("http_proxy", "a:1"), ("HTTP_PROXY", "b:2"), ("HTTPS_PROXY", "c:3"), ("ALL_PROXY", "d:4")]);
        assert_eq!((e.http, e.https), (p("a", 1), p("c", 3)));
        let e = env(&[("HTTP_PROXY", "b:2"), ("all_proxy", "d:4")]);
        assert_eq!((e.http, e.https), (p("b", 2), p("d", 4)));
        // CGI: HTTP_PROXY may be a request header.
        let e = env(&[("HTTP_PROXY", "b:2"), ("GATEWAY_INTERFACE", "CGI/1.1")]);
        assert_eq!(e.http, None);
        assert_eq!(env(&[("no_proxy", "x"), ("NO_PROXY", "y")]).bypass, ["x"]);
    }

    #[test]
    fn no_proxy_matches_as_dotnet_8_does() {
        let e = env(&[
            ("http_proxy", "proxy:1"),
            ("https_proxy", "proxy:2"),
            ("no_proxy", " .example.com, Host.One ,,*,h2:80"),
        ]);
        let uri = |s: &str| Url::parse(s).unwrap();
        assert!(e.for_uri(&uri("http://example.com/")).is_none());
        assert!(e.for_uri(&uri("https://a.b.EXAMPLE.com/")).is_none());
        assert!(e.for_uri(&uri("http://host.one:8080/")).is_none());
        assert!(e.for_uri(&uri("http://notexample.com/")).is_some());
        assert!(e.for_uri(&uri("http://host.one.two/")).is_some());
        // "*" and host:port entries match nothing; loopback is proxied.
        assert!(e.for_uri(&uri("http://h2/")).is_some());
        assert_eq!(e.for_uri(&uri("http://127.0.0.1:5/")).map(|p| p.port), Some(1));
        assert_eq!(e.for_uri(&uri("https://localhost/")).map(|p| p.port), Some(2));
        assert!(env(&[("https_proxy", "proxy:2")]).for_uri(&uri("http://x/")).is_none());
    }

    #[test]
    fn explicit_proxies_are_http_uris() {
        assert_eq!(parse_explicit("http://proxy:3128").unwrap(), p("proxy", 3128).unwrap());
        assert_eq!(parse_explicit("http://proxy/").unwrap().port, 80);
        assert_eq!(parse_explicit("http://u:p%21@proxy:1/").unwrap().credentials, Some(("u".into(), "p!".into())));
        assert_eq!(parse_explicit("https://proxy:1").unwrap_err().message, msg::PROXY_SCHEME);
        assert!(parse_explicit("http://proxy:1/path").is_err());
        assert!(parse_explicit("proxy:1").is_err());
        assert_eq!(basic(&("user".into(), "pass".into())), "Basic dXNlcjpwYXNz");
    }
}
