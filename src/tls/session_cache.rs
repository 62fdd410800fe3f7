//! The client's TLS session cache (SslClientAuthenticationOptions.AllowTlsResume, default true).
//!
//! .NET 8 on Linux keeps client sessions per SSL_CTX (one per protocol set) keyed by target host.
//! Here one shared client SSL_CTX serves every connection, so the key carries what selects
//! .NET's SSL_CTX and more: the target host, the protocol range, the client certificate, and the
//! validation settings (trusted CA set, revocation check, whether a validation callback is set),
//! so that no session crosses target hosts or validation settings.
//!
//! OpenSSL hands over sessions through the client SSL_CTX's new-session callback: for TLS 1.2 at
//! the end of the handshake (a session ID or ticket), for TLS 1.3 with each NewSessionTicket, which
//! arrives after the handshake, while the stream reads. The connection's `Slot` (in the SSL's
//! ex_data) holds them back until the handshake has completed with the peer's certificate
//! accepted; from then on the newest one per key is kept. A connection whose validation failed
//! stores nothing.
//!
//! OpenSSL uses a TLS 1.3 session once: when a handshake resumed it ends, the session is no longer
//! resumable, and the connection's new ticket takes its place in the cache as soon as the stream
//! reads it. Connections started in between (on other threads) find no session: a full
//! handshake, as with .NET, which keeps one session per target host the same way.

use super::certificate::Certificate;
use super::{ssl_protocols, sys};
use foreign_types::ForeignTypeRef;
use openssl::hash::MessageDigest;
use openssl::ssl::{Ssl, SslRef, SslSession, SslSessionRef};
use openssl::x509::X509;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};

/// Keys kept at most; beyond it the entry stored longest ago goes.
const CAPACITY: usize = 1024;

/// What a session may be resumed for.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Key {
    host: String,
    /// The lowest and highest SslProtocols flag enabled.
    protocols: (i32, i32),
    /// SHA-256 of the client certificate offered.
    client_certificate: Option<[u8; 32]>,
    /// None: the system trust store; else the SHA-256 of each trusted CA, sorted.
    trusted: Option<Vec<[u8; 32]>>,
    check_revocation: bool,
    validation_callback: bool,
}

fn sha256(x509: &X509) -> Option<[u8; 32]> {
    x509.digest(MessageDigest::sha256()).ok()?.as_ref().try_into().ok()
}

/// The settings of one client authentication.
pub struct ClientSettings<'a> {
    pub target_host: &'a str,
    pub protocols: i32,
    pub certificate: Option<&'a Certificate>,
    pub trusted: Option<&'a [X509]>,
    pub check_revocation: bool,
    pub validation_callback: bool,
    pub selection_callback: bool,
}

impl Key {
    /// The key of a client authentication, or None when its sessions are not cached: no target
    /// host (it is the key), or a selection callback (what it would choose is not known; .NET
    /// does not resume then either).
    pub fn client(s: &ClientSettings) -> Option<Key> {
        if s.target_host.is_empty() || s.selection_callback {
            return None;
        }
        let flags =
            if s.protocols == ssl_protocols::NONE { ssl_protocols::TLS12 | ssl_protocols::TLS13 } else { s.protocols };
        let protocols = (flags & flags.wrapping_neg(), 1 << (31 - flags.leading_zeros()));
        let client_certificate = match s.certificate {
            Some(c) => Some(sha256(&c.x509)?),
            None => None,
        };
        let trusted = match s.trusted {
            Some(cas) => {
                let mut digests = cas.iter().map(sha256).collect::<Option<Vec<_>>>()?;
                digests.sort_unstable();
                digests.dedup();
                Some(digests)
            }
            None => None,
        };
        Some(Key {
            host: s.target_host.to_string(),
            protocols,
            client_certificate,
            trusted,
            check_revocation: s.check_revocation,
            validation_callback: s.validation_callback,
        })
    }
}

/// A session to offer, and the client certificate presented in the connection that made it
/// (a resumed session authenticates the client as that one did).
#[derive(Clone)]
pub struct Cached {
    pub session: SslSession,
    pub local: Option<Arc<Certificate>>,
}

struct Entry {
    cached: Cached,
    stamp: u64,
}

#[derive(Default)]
struct Cache {
    map: HashMap<Key, Entry>,
    next: u64,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

fn resumable(session: &SslSessionRef) -> bool {
    // SAFETY: reads a flag of a live session.
    if unsafe { sys::SSL_SESSION_is_resumable(session.as_ptr()) } == 0 {
        return false;
    }
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    session.time().saturating_add(session.timeout()) > now
}

/// The newest session kept for `key`, if it can still be resumed.
pub fn lookup(key: &Key) -> Option<Cached> {
    let mut cache = CACHE.lock();
    let entry = cache.map.get(key)?;
    if resumable(&entry.cached.session) {
        return Some(entry.cached.clone());
    }
    cache.map.remove(key);
    None
}

fn store(key: &Key, cached: Cached) {
    let mut cache = CACHE.lock();
    let stamp = cache.next;
    cache.next += 1;
    cache.map.insert(key.clone(), Entry { cached, stamp });
    if cache.map.len() > CAPACITY {
        let oldest = cache.map.iter().min_by_key(|(_, e)| e.stamp).map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            cache.map.remove(&k);
        }
    }
}

/// Drops the session kept for `key` if it is still `session` (a handshake that offered it failed).
pub fn forget(key: &Key, session: &SslSessionRef) {
    let mut cache = CACHE.lock();
    if cache.map.get(key).is_some_and(|e| e.cached.session.as_ptr() == session.as_ptr()) {
        cache.map.remove(key);
    }
}

/// Sessions of one connection, held back until its handshake completed with the peer accepted.
pub struct Slot {
    pub key: Key,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    ready: bool,
    local: Option<Arc<Certificate>>,
    pending: Option<SslSession>,
}

impl Slot {
    pub fn new(key: Key) -> Arc<Slot> {
        Arc::new(Slot { key, state: Mutex::new(SlotState::default()) })
    }

    /// OpenSSL's new-session callback.
    fn offered(&self, session: SslSession) {
        let mut st = self.state.lock();
        if st.ready {
            let local = st.local.clone();
            drop(st);
            store(&self.key, Cached { session, local });
        } else {
            st.pending = Some(session);
        }
    }

    /// The handshake completed and the peer's certificate was accepted: this connection's
    /// sessions are kept from now on. `local`: the client certificate presented.
    pub fn accepted(&self, local: Option<Arc<Certificate>>) {
        let pending = {
            let mut st = self.state.lock();
            st.ready = true;
            st.local = local.clone();
            st.pending.take()
        };
        if let Some(session) = pending {
            store(&self.key, Cached { session, local });
        }
    }
}

fn slot_index() -> openssl::ex_data::Index<Ssl, Arc<Slot>> {
    static INDEX: OnceLock<openssl::ex_data::Index<Ssl, Arc<Slot>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("an SSL ex_data index"))
}

/// Attaches the connection's slot to its SSL, for the new-session callback.
pub fn attach(ssl: &mut SslRef, slot: Arc<Slot>) {
    ssl.set_ex_data(slot_index(), slot);
}

/// The client SSL_CTX's new-session callback (OpenSSL took a reference for us).
pub fn on_new_session(ssl: &mut SslRef, session: SslSession) {
    let run = || {
        if let Some(slot) = ssl.ex_data(slot_index()) {
            slot.offered(session);
        }
    };
    // A panic must not cross OpenSSL's frames; the session is then simply not kept.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: &str) -> ClientSettings<'_> {
        ClientSettings {
            target_host: host,
            protocols: 0,
            certificate: None,
            trusted: None,
            check_revocation: false,
            validation_callback: false,
            selection_callback: false,
        }
    }

    #[test]
    fn the_key_tells_hosts_protocols_and_validation_settings_apart() {
        let base = Key::client(&settings("a.example")).unwrap();
        assert_eq!(base, Key::client(&settings("a.example")).unwrap());
        assert_ne!(base, Key::client(&settings("b.example")).unwrap());
        let default_range =
            ClientSettings { protocols: ssl_protocols::TLS12 | ssl_protocols::TLS13, ..settings("a.example") };
        assert_eq!(base, Key::client(&default_range).unwrap());
        let tls12 = ClientSettings { protocols: ssl_protocols::TLS12, ..settings("a.example") };
        assert_ne!(base, Key::client(&tls12).unwrap());
        let revocation = ClientSettings { check_revocation: true, ..settings("a.example") };
        assert_ne!(base, Key::client(&revocation).unwrap());
        let callback = ClientSettings { validation_callback: true, ..settings("a.example") };
        assert_ne!(base, Key::client(&callback).unwrap());
        let trusted = ClientSettings { trusted: Some(&[]), ..settings("a.example") };
        assert_ne!(base, Key::client(&trusted).unwrap());
        assert!(Key::client(&settings("")).is_none());
        assert!(Key::client(&ClientSettings { selection_callback: true, ..settings("a.example") }).is_none());
    }
}
