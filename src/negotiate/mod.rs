//! NegotiateStream ([MS-NNS]) and the mechanisms under it: NTLM (native), SPNEGO (native) and
//! Kerberos (the system's MIT GSSAPI, loaded at run time).

pub mod credential;
pub mod mech;
pub mod nns;
pub mod ntlm;
pub mod spnego;
