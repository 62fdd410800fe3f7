//! Credentials: what a client authenticates with (.NET's NetworkCredential, or the default
//! credential: the Kerberos ticket cache), and where a server looks its users up (a callback
//! `(user, domain) -> password or NT hash`, or a `DOMAIN:USER:PASSWORD` file as gss-ntlmssp and
//! pyspnego read it).

use super::ntlm::nt_hash;
use crate::error::{code, Error, Result};
use std::sync::Arc;

/// NetworkCredential: user, password and domain; `DOMAIN\user` and `user@REALM` are split.
/// `default` is CredentialCache.DefaultCredentials (the ticket cache; no NTLM).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credential {
    pub user: String,
    pub password: String,
    pub domain: String,
    pub default: bool,
}

impl Credential {
    /// The default credential (the Kerberos ticket cache).
    pub fn default_credentials() -> Credential {
        Credential { default: true, ..Credential::default() }
    }

    /// `new NetworkCredential(user, password, domain)`; an empty domain takes the one written in
    /// the user name (`DOMAIN\user` or `user@REALM`).
    pub fn new(user: &str, password: &str, domain: &str) -> Credential {
        let (user, written) = split_user(user);
        let domain = if domain.is_empty() { written } else { domain.to_string() };
        Credential { user, password: password.to_string(), domain, default: false }
    }

    /// The Kerberos principal: `user@DOMAIN` (the user as given when it has a realm).
    pub fn principal(&self) -> String {
        if self.domain.is_empty() || self.user.contains('@') {
            self.user.clone()
        } else {
            format!("{}@{}", self.user, self.domain)
        }
    }
}

/// Splits `DOMAIN\user` and `user@REALM` into (user, domain); a plain name has no domain.
pub fn split_user(name: &str) -> (String, String) {
    if let Some((d, u)) = name.split_once('\\') {
        return (u.to_string(), d.to_string());
    }
    if let Some((u, d)) = name.rsplit_once('@') {
        return (u.to_string(), d.to_string());
    }
    (name.to_string(), String::new())
}

/// What a credential source knows of a user.
#[derive(Clone)]
pub enum Secret {
    Password(String),
    NtHash([u8; 16]),
}

impl Secret {
    pub fn nt_hash(&self) -> [u8; 16] {
        match self {
            Secret::Password(p) => nt_hash(p),
            Secret::NtHash(h) => *h,
        }
    }
}

/// A server's users: `(user, domain)` as the client sent them -> the secret, or None for an
/// unknown user.
pub type CredentialSource = Arc<dyn Fn(&str, &str) -> Option<Secret> + Send + Sync>;

/// One line of a user file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEntry {
    pub domain: String,
    pub user: String,
    pub password: String,
}

/// Parses `DOMAIN:USER:PASSWORD` lines (the password may contain ':'; blank lines and lines
/// starting with '#' are skipped). Err names the first malformed line.
pub fn parse_user_file(text: &str) -> Result<Vec<UserEntry>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(d), Some(u), Some(p)) if !u.is_empty() => {
                out.push(UserEntry { domain: d.to_string(), user: u.to_string(), password: p.to_string() })
            }
            _ => {
                return Err(Error::argument(format!(
                    "Line {} of the user file is not DOMAIN:USER:PASSWORD.",
                    n + 1
                )))
            }
        }
    }
    Ok(out)
}

/// Finds `(user, domain)` among `entries`: the user name ignoring case; the domain ignoring case,
/// where an empty domain on either side matches any.
pub fn find_user<'a>(entries: &'a [UserEntry], user: &str, domain: &str) -> Option<&'a UserEntry> {
    entries.iter().find(|e| {
        e.user.eq_ignore_ascii_case(user)
            && (e.domain.is_empty() || domain.is_empty() || e.domain.eq_ignore_ascii_case(domain))
    })
}

/// A credential source over a user file, read now.
pub fn file_source(path: &str) -> Result<CredentialSource> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let status = match e.kind() {
            std::io::ErrorKind::NotFound => code::FILE_NOT_FOUND,
            std::io::ErrorKind::PermissionDenied => code::UNAUTHORIZED_ACCESS,
            _ => code::IO,
        };
        Error::new(status, format!("Could not read the user file '{path}': {e}."))
    })?;
    let entries = parse_user_file(&text)?;
    Ok(Arc::new(move |user: &str, domain: &str| {
        find_user(&entries, user, domain).map(|e| Secret::Password(e.password.clone()))
    }))
}

/// What a credential handle holds: a client's identity, or a server's users.
#[derive(Clone)]
pub enum Credentials {
    /// NetworkCredential (a server takes it as its one user).
    Network(Credential),
    /// CredentialCache.DefaultCredentials: the ticket cache (client), the keytab (server).
    Default,
    /// A server's users (a file or a callback); a client cannot use it.
    Users(CredentialSource),
}

impl Credentials {
    /// The credential a client authenticates with; None for a user list.
    pub fn for_client(&self) -> Option<Credential> {
        match self {
            Credentials::Network(c) => Some(c.clone()),
            Credentials::Default => Some(Credential::default_credentials()),
            Credentials::Users(_) => None,
        }
    }

    /// The users a server accepts through NTLM (none for the default credential).
    pub fn for_server(&self) -> Option<CredentialSource> {
        match self {
            Credentials::Network(c) => {
                let c = c.clone();
                Some(Arc::new(move |user: &str, domain: &str| {
                    let one = [UserEntry { domain: c.domain.clone(), user: c.user.clone(), password: c.password.clone() }];
                    find_user(&one, user, domain).map(|e| Secret::Password(e.password.clone()))
                }))
            }
            Credentials::Default => None,
            Credentials::Users(s) => Some(s.clone()),
        }
    }

    pub fn user_name(&self) -> &str {
        match self {
            Credentials::Network(c) => &c.user,
            _ => "",
        }
    }

    pub fn domain(&self) -> &str {
        match self {
            Credentials::Network(c) => &c.domain,
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_split_like_dotnet() {
        assert_eq!(Credential::new("TESTDOM\\alice", "p", ""), Credential::new("alice", "p", "TESTDOM"));
        let k = Credential::new("alice@APMNET.TEST", "p", "");
        assert_eq!((k.user.as_str(), k.domain.as_str()), ("alice", "APMNET.TEST"));
        assert_eq!(k.principal(), "alice@APMNET.TEST");
        assert_eq!(Credential::new("bob", "p", "").principal(), "bob");
        // An explicit domain wins over the written one.
        assert_eq!(Credential::new("D1\\bob", "p", "D2").domain, "D2");
    }

    #[test]
    fn the_user_file_is_domain_user_password() {
        let e = parse_user_file("# users\nTESTDOM:alice:Passw0rd!\n\n:bob:a:b:c\r\n").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1], UserEntry { domain: String::new(), user: "bob".into(), password: "a:b:c".into() });
        assert_eq!(find_user(&e, "ALICE", "testdom").map(|e| e.password.as_str()), Some("Passw0rd!"));
        assert!(find_user(&e, "alice", "OTHER").is_none());
        assert!(find_user(&e, "alice", "").is_some());
        assert!(find_user(&e, "bob", "ANY").is_some());
        assert!(find_user(&e, "carol", "").is_none());
        assert_eq!(parse_user_file("nocolons\n").unwrap_err().message, "Line 1 of the user file is not DOMAIN:USER:PASSWORD.");
    }
}
