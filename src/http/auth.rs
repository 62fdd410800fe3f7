//! HttpWebRequest's authentication (RFC 9110 section 11): the challenges of `WWW-Authenticate`
//! and `Proxy-Authenticate`, the scheme .NET picks among them, one request's connection-bound
//! exchange (Negotiate, NTLM) and the PreAuthenticate cache of Basic credentials.
//!
//! What .NET 8 does underneath HttpWebRequest (SocketsHttpHandler's AuthenticationHelper), and so
//! what this does:
//! * Schemes are tried in the order Negotiate, NTLM, Basic (no Digest here); the default
//!   credential (UseDefaultCredentials: the Kerberos ticket cache) is used for Negotiate only,
//!   never for Basic, and not for NTLM (there is no NTLM secret in a ticket cache).
//! * The SPN is `HTTP/<host>` with the request URI's host as written (.NET looks a name up in DNS
//!   for its canonical name first; here IP literals and names alike are used as given), without
//!   the port (.NET 8's default: UsePortInSpn is off).
//! * Over https the context is bound to the connection's tls-server-end-point (.NET passes the
//!   TransportContext's ChannelBindingKind.Endpoint binding).
//! * Every leg goes on the connection the first token went on, which never returns to the pool in
//!   between (NTLM authenticates the connection, not the request).

use crate::negotiate::authentication::{self as negauth, ClientOptions, NegotiateAuthentication};
use crate::negotiate::credential::Credential;
use parking_lot::Mutex;
use std::sync::LazyLock;
use url::Url;

/// Legs (requests sent with a token) one connection-bound exchange may take. NTLM needs two
/// (negotiate, authenticate), raw Kerberos one, SPNEGO three at most (its NTLM fallback after an
/// optimistic Kerberos token): five leaves room for a mechanism list exchange and still stops a
/// server that answers every token with another challenge.
pub const MAX_LEGS: u32 = 5;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scheme {
    Negotiate,
    Ntlm,
    Basic,
}

impl Scheme {
    /// The scheme's name as it goes on the wire (and the package of NegotiateAuthentication).
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Negotiate => negauth::package::NEGOTIATE,
            Scheme::Ntlm => negauth::package::NTLM,
            Scheme::Basic => "Basic",
        }
    }
}

/// One challenge: its scheme and what follows it (a token68 or auth-params), if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub data: Option<String>,
}

/// Splits `s` at the commas outside quoted strings.
fn split_items(s: &str) -> Vec<&str> {
    let (mut items, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&s[start..]);
    items
}

/// The challenges of the header values `values` (several headers, several challenges each):
/// an item that starts with a token not followed by `=` begins a challenge; an `x=y` item is one
/// more auth-param of the challenge before it.
pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    for value in values {
        for item in split_items(value).into_iter().map(str::trim).filter(|i| !i.is_empty()) {
            let end = item.find(|c: char| c.is_ascii_whitespace() || c == '=').unwrap_or(item.len());
            let (token, rest) = item.split_at(end);
            if rest.trim_start().starts_with('=') || token.is_empty() {
                if let Some(last) = out.last_mut() {
                    last.data = Some(match last.data.take() {
                        Some(d) => format!("{d}, {item}"),
                        None => item.to_string(),
                    });
                }
                continue;
            }
            let rest = rest.trim();
            out.push(Challenge { scheme: token.to_string(), data: (!rest.is_empty()).then(|| rest.to_string()) });
        }
    }
    out
}

/// The challenge of `scheme` among `challenges`, if offered.
pub fn find(challenges: &[Challenge], scheme: Scheme) -> Option<&Challenge> {
    challenges.iter().find(|c| c.scheme.eq_ignore_ascii_case(scheme.name()))
}

/// The scheme .NET answers with `credential`: Negotiate, then NTLM, then Basic, of those offered.
pub fn pick(challenges: &[Challenge], credential: &Credential) -> Option<Scheme> {
    [Scheme::Negotiate, Scheme::Ntlm, Scheme::Basic]
        .into_iter()
        .filter(|s| !credential.default || *s == Scheme::Negotiate)
        .find(|s| find(challenges, *s).is_some())
}

/// The server's token in a challenge of `scheme` (None: none, or not base64).
pub fn token_of(challenges: &[Challenge], scheme: Scheme) -> Option<Vec<u8>> {
    let data = find(challenges, scheme)?.data.as_deref()?;
    openssl::base64::decode_block(data.trim()).ok().filter(|t| !t.is_empty())
}

/// `Basic base64(user:password)`, with `domain\user` when the credential has a domain (.NET's).
pub fn basic(credential: &Credential) -> String {
    let user = if credential.domain.is_empty() {
        credential.user.clone()
    } else {
        format!("{}\\{}", credential.domain, credential.user)
    };
    format!("Basic {}", openssl::base64::encode_block(format!("{user}:{}", credential.password).as_bytes()))
}

/// One request's Negotiate or NTLM exchange with a server (or a proxy).
pub struct Session {
    pub scheme: Scheme,
    ctx: NegotiateAuthentication,
    /// Tokens sent so far.
    pub legs: u32,
}

/// What a step gave: the header value to send, or nothing more to send (complete).
pub enum Step {
    Send(String),
    Complete,
}

impl Session {
    /// A client context for `scheme` with `credential`, SPN `HTTP/<host>`, bound to `binding`
    /// (a SEC_CHANNEL_BINDINGS as TransportContext hands it out) when there is one.
    pub fn new(scheme: Scheme, credential: &Credential, host: &str, binding: Option<Vec<u8>>) -> Session {
        let mut o = ClientOptions::new(scheme.name());
        // A credential set as a plain user and password (the Basic API) may still name its
        // domain as `DOMAIN\user` or `user@REALM`.
        o.credential = if credential.default {
            Credential::default_credentials()
        } else {
            Credential::new(&credential.user, &credential.password, &credential.domain)
        };
        o.target_name = format!("HTTP/{}", host.trim_start_matches('[').trim_end_matches(']'));
        o.binding = binding;
        Session { scheme, ctx: NegotiateAuthentication::client(&o), legs: 0 }
    }

    /// Whether the next step calls GSSAPI (and so must not run on an engine thread).
    pub fn blocking(&self, input: Option<&[u8]>) -> bool {
        self.ctx.blocking(input)
    }

    pub fn is_complete(&self) -> bool {
        self.ctx.is_authenticated()
    }

    /// One step with the server's token (None: the first). Err: the context refused, with why.
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Step, String> {
        let out = self.ctx.step(input).map_err(|r| r.reason)?;
        if out.token.is_empty() {
            return Ok(Step::Complete);
        }
        self.legs += 1;
        Ok(Step::Send(format!("{} {}", self.scheme.name(), openssl::base64::encode_block(&out.token))))
    }
}

/// PreAuthenticate's cache: Basic headers that a server accepted, by the URI prefix they were
/// accepted for (the URI up to its last `/`, as the Framework's CredentialCache keys them).
static PRE_AUTH: LazyLock<Mutex<Vec<(String, String)>>> = LazyLock::new(Mutex::default);

fn prefix_of(uri: &Url) -> String {
    let mut u = uri.clone();
    u.set_query(None);
    u.set_fragment(None);
    let s = u.to_string();
    match s.rfind('/') {
        Some(i) => s[..=i].to_string(),
        None => s,
    }
}

/// Records that `header` was accepted for `uri`.
pub fn remember(uri: &Url, header: &str) {
    let prefix = prefix_of(uri);
    let mut cache = PRE_AUTH.lock();
    if !cache.iter().any(|(p, h)| *p == prefix && h == header) {
        cache.push((prefix, header.to_string()));
    }
}

/// Whether `header` was accepted for a prefix of `uri` (it then goes with the first request).
pub fn remembered(uri: &Url, header: &str) -> bool {
    let target = uri.to_string();
    PRE_AUTH.lock().iter().any(|(p, h)| h == header && target.starts_with(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: &str, data: Option<&str>) -> Challenge {
        Challenge { scheme: scheme.into(), data: data.map(str::to_string) }
    }

    #[test]
    fn several_challenges_in_one_header_and_in_several() {
        let got = parse(["Basic realm=\"a, b\", charset=\"UTF-8\", NTLM", "Negotiate YII==", "  ,"]);
        assert_eq!(
            got,
            vec![
                ch("Basic", Some("realm=\"a, b\", charset=\"UTF-8\"")),
                ch("NTLM", None),
                ch("Negotiate", Some("YII=="))
            ]
        );
        assert_eq!(parse(["Bearer realm = \"x\""]), vec![ch("Bearer", Some("realm = \"x\""))]);
        assert!(parse(["=oops"]).is_empty());
    }

    #[test]
    fn negotiate_then_ntlm_then_basic_as_dotnet_picks() {
        let user = Credential::new("u", "p", "");
        let all = parse(["Basic realm=x, NTLM, Negotiate"]);
        assert_eq!(pick(&all, &user), Some(Scheme::Negotiate));
        assert_eq!(pick(&parse(["basic realm=x", "ntlm"]), &user), Some(Scheme::Ntlm));
        assert_eq!(pick(&parse(["Basic realm=x"]), &user), Some(Scheme::Basic));
        assert_eq!(pick(&parse(["Digest realm=x"]), &user), None);
        // The default credential: Negotiate (Kerberos) only.
        let default = Credential::default_credentials();
        assert_eq!(pick(&all, &default), Some(Scheme::Negotiate));
        assert_eq!(pick(&parse(["NTLM, Basic realm=x"]), &default), None);
    }

    #[test]
    fn tokens_are_base64_or_nothing() {
        let c = parse(["NTLM TlRMTVNTUAAC", "Negotiate !!"]);
        assert_eq!(token_of(&c, Scheme::Ntlm).unwrap(), b"NTLMSSP\0\x02");
        assert_eq!(token_of(&c, Scheme::Negotiate), None);
        assert_eq!(token_of(&c, Scheme::Basic), None);
    }

    #[test]
    fn basic_names_the_domain_as_dotnet() {
        assert_eq!(basic(&Credential { user: "u".into(), password: "p".into(), ..Default::default() }), "Basic dTpw");
        assert_eq!(
            basic(&Credential::new("u", "p", "D")),
            format!("Basic {}", openssl::base64::encode_block(b"D\\u:p"))
        );
    }

    #[test]
    fn pre_authentication_covers_the_prefix_only() {
        let at = Url::parse("http://pre.example:81/dir/page?q=1").unwrap();
        remember(&at, "Basic x");
        assert!(remembered(&Url::parse("http://pre.example:81/dir/other").unwrap(), "Basic x"));
        assert!(remembered(&Url::parse("http://pre.example:81/dir/sub/deeper").unwrap(), "Basic x"));
        assert!(!remembered(&Url::parse("http://pre.example:81/elsewhere").unwrap(), "Basic x"));
        assert!(!remembered(&Url::parse("http://pre.example:81/dir/other").unwrap(), "Basic y"));
    }
}
