//! NegotiateStream ([MS-NNS]) and the mechanisms under it, each behind `mech::Mechanism`:
//!
//! * `nns`: the framing, sans-I/O (pure parsers).
//! * `ntlm`: NTLMv2, native, client and server ([MS-NLMP]).
//! * `spnego`: SPNEGO, native (RFC 4178, [MS-SPNG]): Kerberos preferred, NTLM as fallback.
//! * `kerberos`: Kerberos through the system's MIT GSSAPI, loaded at run time; where it is
//!   absent the library still loads and Negotiate offers NTLM alone.
//! * `authentication`: NegotiateAuthentication, one exchange of blobs the caller carries; what
//!   NegotiateStream drives.
//! * `credential`: NetworkCredential, and where a server looks its users up.
//! * `stream`: NegotiateStream itself, the layered driver over `nns::Nns`.
//!
//! The parsers of untrusted input (`nns`, `ntlm`'s messages, `spnego`'s DER) are pure and `pub`
//! for the fuzz targets (fuzz/targets/nns.rs, ntlm.rs, spnego.rs).

pub mod authentication;
#[cfg(test)]
mod captures;
pub mod credential;
pub mod kerberos;
pub mod mech;
pub mod nns;
pub mod ntlm;
pub mod spnego;
pub mod stream;

pub use credential::Credential;
pub use stream::NegotiateStream;

/// ProtectionLevel.
pub mod protection_level {
    pub(crate) const NONE: i32 = 0;
    pub(crate) const SIGN: i32 = 1;
    pub(crate) const ENCRYPT_AND_SIGN: i32 = 2;

    pub fn name(v: i32) -> &'static str {
        match v {
            NONE => "None",
            SIGN => "Sign",
            _ => "EncryptAndSign",
        }
    }
}

/// TokenImpersonationLevel.
pub mod impersonation_level {
    pub(crate) const NONE: i32 = 0;
    pub(crate) const ANONYMOUS: i32 = 1;
    pub(crate) const IDENTIFICATION: i32 = 2;
    pub(crate) const IMPERSONATION: i32 = 3;
    pub(crate) const DELEGATION: i32 = 4;

    pub fn name(v: i32) -> &'static str {
        match v {
            NONE => "None",
            ANONYMOUS => "Anonymous",
            IDENTIFICATION => "Identification",
            IMPERSONATION => "Impersonation",
            _ => "Delegation",
        }
    }
}

/// PolicyEnforcement (ExtendedProtectionPolicy).
pub mod policy_enforcement {
    pub(crate) const NEVER: i32 = 0;
    pub(crate) const WHEN_SUPPORTED: i32 = 1;
    pub(crate) const ALWAYS: i32 = 2;
}

/// The .NET message texts of NegotiateStream (those it shares with every authenticated stream
/// are in `crate::layered::msg`).
pub mod msg {
    pub(crate) use crate::layered::msg::{AUTH_EOF, AUTH_FAILED as AUTH_SSPI, ENCRYPT, IO_EOF, READ_FAILED, WRITE_FAILED};
    pub(crate) const AUTH_ALERT: &str =
        "Authentication failed on the remote side (the stream might still be available for additional authentication attempts).";
    pub(crate) const BAD_CLIENT_CREDS: &str = "The server has rejected the client credentials.";
    pub(crate) const BAD_CREDS_OR_TARGET: &str =
        "Either the target name is incorrect or the server has rejected the client credentials.";
    pub(crate) const REMOTE_EXPECTATION: &str = "A remote side security requirement was not fulfilled during authentication. Try increasing the ProtectionLevel and/or ImpersonationLevel.";
    pub(crate) const SUPPORTED_IMPERSONATION_LEVELS: &str =
        "The supported values are Identification, Impersonation or Delegation.";
    pub(crate) const CLIENT_SERVER: &str = "Once authentication is attempted as the client or server, additional authentication attempts must use the same client or server role.";
    pub(crate) const POLICY_SCHEME: &str =
        "An extended protection policy must specify either a custom channel binding or a custom service name collection.";
    pub(crate) const NTLM_DEFAULT_CREDENTIALS: &str =
        "NTLM authentication is not possible with default credentials on this platform.";
    pub(crate) const CONNECTION_CLOSED: &str = "Unable to read data from the transport connection: The connection was closed.";

    /// net_auth_context_expectation.
    pub fn expectation(required: &str, negotiated: &str) -> String {
        format!("A security requirement was not fulfilled during authentication. Required: {required}, negotiated: {negotiated}.")
    }

    /// net_io_header_id.
    pub fn wrong_header(got: u8, expected: u8) -> String {
        format!("Found a wrong header field MessageId read : {got}, expected : {expected}.")
    }
}
