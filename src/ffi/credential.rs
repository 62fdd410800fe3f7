//! Credentials, as C sees them: NetworkCredential (user, password, domain; `DOMAIN\user` and
//! `user@REALM` forms), the default credential (the Kerberos ticket cache, or on a server the
//! keytab), and a server's users: a `DOMAIN:USER:PASSWORD` file or a lookup callback.

use super::handles::CredentialClass;
use super::*;
use crate::negotiate::credential::{file_source, Credential, Credentials, Secret};
use std::ffi::CString;

/// A credential (System.Net.NetworkCredential, the default credential, or a server's users).
/// Opaque; the caller owns it and releases it with `apm_credential_close`. A stream that
/// authenticates with it keeps what it needs, so it may be closed right after the call.
pub struct apm_credential {
    _private: [u8; 0],
}

/// `apm_credential_lookup_callback` found no such user.
pub const APM_CREDENTIAL_UNKNOWN: i32 = 0;
/// `apm_credential_lookup_callback` wrote the user's password.
pub const APM_CREDENTIAL_PASSWORD: i32 = 1;
/// `apm_credential_lookup_callback` wrote the user's NT hash (MD4 of the UTF-16LE password).
pub const APM_CREDENTIAL_NT_HASH: i32 = 2;

/// A server's user lookup: `user` and `domain` (UTF-8, as the client sent them; the domain may be
/// "") name the user. Write the password, NUL-terminated, into `password` (`password_size` bytes,
/// 1024) and return APM_CREDENTIAL_PASSWORD; or write the 16-byte NT hash into `nt_hash` and return
/// APM_CREDENTIAL_NT_HASH; or return APM_CREDENTIAL_UNKNOWN. It runs during the handshake, on the
/// thread driving it, with no library lock held; the pointers are valid during the call only.
pub type apm_credential_lookup_callback = Option<
    unsafe extern "C" fn(
        user: *const c_char,
        domain: *const c_char,
        password: *mut c_char,
        password_size: usize,
        nt_hash: *mut u8,
        state: *mut c_void,
    ) -> i32,
>;

const PASSWORD_SIZE: usize = 1024;

fn hand_out(c: Credentials, out: *mut *mut apm_credential) -> Result<()> {
    need_out(out, "credential")?;
    let p: *mut apm_credential = register(Kind::Credential, Object::Credential(Arc::new(c)), std::ptr::null())?;
    write_out(out, "credential", p)
}

fn opt_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        Ok("")
    } else {
        str_arg(p, name)
    }
}

/// `new NetworkCredential(user_name, password, domain)`; NULL stands for "". With an empty
/// domain, `DOMAIN\user` and `user@REALM` are split into user and domain (Kerberos then uses
/// `user@REALM`; NTLM the user and domain). The strings are copied. A server given this credential
/// accepts exactly this user through NTLM.
/// Errors: APM_E_ARGUMENT_NULL (credential), APM_E_ARGUMENT (a string not UTF-8),
/// APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_credential_create(
    user_name: *const c_char,
    password: *const c_char,
    domain: *const c_char,
    credential: *mut *mut apm_credential,
) -> apm_status {
    boundary!({
        need_out(credential, "credential")?;
        let c = Credential::new(opt_str(user_name, "userName")?, opt_str(password, "password")?, opt_str(domain, "domain")?);
        hand_out(Credentials::Network(c), credential)
    })
}

/// CredentialCache.DefaultCredentials: a client uses the Kerberos ticket cache (KRB5CCNAME; NTLM
/// is not possible with it), a server its keytab (KRB5_KTNAME) and accepts no NTLM user.
/// Errors: APM_E_ARGUMENT_NULL (credential), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_credential_create_default(credential: *mut *mut apm_credential) -> apm_status {
    boundary!({ hand_out(Credentials::Default, credential) })
}

/// A server's NTLM users from a file of `DOMAIN:USER:PASSWORD` lines (the format gss-ntlmssp's
/// NTLM_USER_FILE and pyspnego read; an empty DOMAIN matches any domain; '#' starts a comment),
/// read during the call. A client cannot authenticate with it.
/// Errors: APM_E_ARGUMENT_NULL (path, credential), APM_E_ARGUMENT (path not UTF-8; a malformed
/// line: "Line N of the user file is not DOMAIN:USER:PASSWORD."), APM_E_FILE_NOT_FOUND,
/// APM_E_UNAUTHORIZED_ACCESS, APM_E_IO (another read failure), APM_E_OUT_OF_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn apm_credential_create_from_file(
    path: *const c_char,
    credential: *mut *mut apm_credential,
) -> apm_status {
    boundary!({
        need_out(credential, "credential")?;
        let source = file_source(str_arg(path, "path")?)?;
        hand_out(Credentials::Users(source), credential)
    })
}

/// A server's NTLM users through `callback` (see `apm_credential_lookup_callback`); `state` is
/// passed to it as is and stays the caller's: keep it valid while a stream may authenticate with
/// this credential.
/// Errors: APM_E_ARGUMENT_NULL (callback, credential), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_credential_create_lookup(
    callback: apm_credential_lookup_callback,
    state: *mut c_void,
    credential: *mut *mut apm_credential,
) -> apm_status {
    boundary!({
        need_out(credential, "credential")?;
        let f = callback.ok_or_else(|| Error::argument_null("callback"))?;
        let state = state as usize;
        let source = Arc::new(move |user: &str, domain: &str| -> Option<Secret> {
            let user = CString::new(user.replace('\0', "")).ok()?;
            let domain = CString::new(domain.replace('\0', "")).ok()?;
            let mut password = vec![0u8; PASSWORD_SIZE];
            let mut hash = [0u8; 16];
            // SAFETY: the caller's callback; every pointer is valid for the call, the password
            // buffer holds PASSWORD_SIZE bytes and the hash 16.
            let r = unsafe {
                f(
                    user.as_ptr(),
                    domain.as_ptr(),
                    password.as_mut_ptr() as *mut c_char,
                    PASSWORD_SIZE,
                    hash.as_mut_ptr(),
                    state as *mut c_void,
                )
            };
            match r {
                APM_CREDENTIAL_PASSWORD => {
                    let end = password.iter().position(|&b| b == 0).unwrap_or(PASSWORD_SIZE);
                    Some(Secret::Password(String::from_utf8_lossy(&password[..end]).into_owned()))
                }
                APM_CREDENTIAL_NT_HASH => Some(Secret::NtHash(hash)),
                _ => None,
            }
        });
        hand_out(Credentials::Users(source), credential)
    })
}

/// NetworkCredential.UserName (after the `DOMAIN\user` / `user@REALM` split; "" for the default
/// credential and user lists), copied as `apm_last_error_message` copies.
/// Errors: APM_E_ARGUMENT_NULL (credential; buffer NULL with a nonzero buffer_len), APM_E_ARGUMENT
/// (not a credential handle), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_credential_get_user_name(
    credential: *mut apm_credential,
    buffer: *mut c_char,
    buffer_len: usize,
    name_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(lookup::<CredentialClass>(credential)?.user_name(), buffer, buffer_len, name_len) })
}

/// NetworkCredential.Domain, copied as `apm_credential_get_user_name`.
/// Errors: as apm_credential_get_user_name.
#[no_mangle]
pub unsafe extern "C" fn apm_credential_get_domain(
    credential: *mut apm_credential,
    buffer: *mut c_char,
    buffer_len: usize,
    domain_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(lookup::<CredentialClass>(credential)?.domain(), buffer, buffer_len, domain_len) })
}

/// Releases a credential handle; closing a closed one is a no-op.
/// Errors: APM_E_ARGUMENT_NULL (credential), APM_E_ARGUMENT (not a credential handle).
#[no_mangle]
pub unsafe extern "C" fn apm_credential_close(credential: *mut apm_credential) -> apm_status {
    boundary!({ close::<CredentialClass>(credential) })
}
