//! The errors SslStream reports for failures below it: the inner stream's (as an IOException)
//! and OpenSSL's (its reason as the inner message; a received alert by .NET's name).

use crate::error::{code, Error};
use crate::tls::{msg, openssl_reason};

/// An inner stream's failure, as SslStream reports it (an IOException).
pub(super) fn io_failure(e: Error, writing: bool) -> Error {
    if e.status == code::IO || e.status == code::OBJECT_DISPOSED {
        return e;
    }
    let message = if writing { msg::WRITE_FAILED } else { msg::READ_FAILED };
    e.with(|fail| {
        fail.status = code::IO;
        fail.inner = Some(std::mem::replace(&mut fail.message, message.to_string()));
    })
}

pub(super) fn ssl_reason(e: &openssl::ssl::Error) -> String {
    match e.ssl_error() {
        Some(stack) => openssl_reason(stack, &e.to_string()),
        None => e.to_string(),
    }
}

/// "sslv3 alert handshake failure" -> "HandshakeFailure" (.NET's TlsAlertMessage name).
fn received_alert(reason: &str) -> Option<String> {
    let at = reason.find(" alert ")?;
    let words = reason[at + 7..].split([';', ':']).next()?.trim();
    Some(
        words
            .split_whitespace()
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
            })
            .collect(),
    )
}

/// OpenSSL's reasons (ERR_LIB_SSL, sslerr.h) for input that is not TLS records at all: text,
/// an HTTP request, an SSH banner, a record header with no TLS version or an impossible length.
/// .NET Framework's framing check refuses such input before TLS looks at it, with IOException
/// net_ssl_io_frame, on both sides of the handshake.
const ERR_LIB_SSL: i32 = 20;
const NOT_TLS_REASONS: [i32; 5] = [
    267, // SSL_R_WRONG_VERSION_NUMBER
    156, // SSL_R_HTTP_REQUEST
    155, // SSL_R_HTTPS_PROXY_REQUEST
    252, // SSL_R_UNKNOWN_PROTOCOL
    198, // SSL_R_PACKET_LENGTH_TOO_LONG
];

fn not_tls_input(e: &openssl::ssl::Error) -> bool {
    e.ssl_error().is_some_and(|stack| {
        stack.errors().iter().any(|x| x.library_code() == ERR_LIB_SSL && NOT_TLS_REASONS.contains(&x.reason_code()))
    })
}

pub(super) fn auth_error(e: &openssl::ssl::Error) -> Error {
    let reason = ssl_reason(e);
    if not_tls_input(e) {
        return Error::new(code::IO, msg::UNEXPECTED_PACKET).with_inner(reason);
    }
    let message = match received_alert(&reason) {
        Some(alert) => format!("Authentication failed because the remote party sent a TLS alert: '{alert}'."),
        None => msg::AUTH_FAILED.to_string(),
    };
    Error::new(code::AUTHENTICATION, message).with_inner(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_follow_dotnet() {
        assert_eq!(
            received_alert("error:0A000410:SSL routines::sslv3 alert handshake failure").as_deref(),
            Some("HandshakeFailure")
        );
        assert_eq!(
            received_alert("error:0A00045C:SSL routines::tlsv13 alert certificate required").as_deref(),
            Some("CertificateRequired")
        );
        assert_eq!(received_alert("error:0A000086:SSL routines::certificate verify failed"), None);
    }
}
