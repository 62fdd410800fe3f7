//! Kerberos through the system's MIT GSSAPI (`libgssapi_krb5.so.2`), loaded at run time with
//! libloading, as .NET's shim does: the library loads and NTLM works where Kerberos is absent.
//! Only the krb5 mechanism is asked of GSSAPI (SPNEGO is ours); ccaches, keytabs and krb5.conf
//! behave as they do for any program on the host.
//!
//! * Initiator: the password credential through gss_acquire_cred_with_password (`user@REALM`),
//!   or the ticket cache; the target "SERVICE/host" is imported as the host-based name
//!   `SERVICE@host` (.NET's rewrite).
//! * Acceptor: the default acceptor credential, i.e. any key of the keytab (KRB5_KTNAME).
//! * Channel bindings: the application data of the ChannelBinding in gss_channel_bindings_struct.
//!
//! Every GSSAPI call of a step may block (the KDC), so `blocking` is always true: NegotiateStream
//! runs the steps on the blocking pool. `APMNET_GSSAPI_LIBRARY` names another library to load
//! ("none": behave as if there were none).

use super::credential::Credential;
use super::mech::{Failure, MechError, MechResult, Mechanism, StepOut};
use libloading::Library;
use std::ffi::c_void;
use std::sync::OnceLock;

type Om = u32;
type Name = *mut c_void;
type Ctx = *mut c_void;
type Cred = *mut c_void;

#[repr(C)]
struct Buffer {
    length: usize,
    value: *mut c_void,
}

impl Buffer {
    const EMPTY: Buffer = Buffer { length: 0, value: std::ptr::null_mut() };

    fn of(b: &[u8]) -> Buffer {
        Buffer { length: b.len(), value: b.as_ptr() as *mut c_void }
    }
}

#[repr(C)]
struct Oid {
    length: u32,
    elements: *mut c_void,
}

#[repr(C)]
struct OidSet {
    count: usize,
    elements: *mut Oid,
}

#[repr(C)]
struct ChannelBindings {
    initiator_addrtype: Om,
    initiator_address: Buffer,
    acceptor_addrtype: Om,
    acceptor_address: Buffer,
    application_data: Buffer,
}

const KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
const NT_HOSTBASED_SERVICE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04];
const NT_USER_NAME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x01];

fn oid(b: &'static [u8]) -> Oid {
    Oid { length: b.len() as u32, elements: b.as_ptr() as *mut c_void }
}

const COMPLETE: Om = 0;
const CONTINUE_NEEDED: Om = 1;
const INDEFINITE: Om = 0xffff_ffff;
const INITIATE: i32 = 1;
const GSS_C_GSS_CODE: i32 = 1;
const GSS_C_MECH_CODE: i32 = 2;

fn routine(major: Om) -> Om {
    (major >> 16) & 0xff
}

macro_rules! gss_functions {
    ($($field:ident: $sym:literal => fn($($arg:ty),*);)*) => {
        /// The GSSAPI functions we call, resolved once.
        struct Gss {
            _lib: Library,
            $($field: unsafe extern "C" fn($($arg),*) -> Om,)*
        }

        impl Gss {
            fn load(path: &str) -> Option<Gss> {
                // SAFETY: loading the system GSSAPI runs its initialisers, as any program linking
                // it does; the symbols are declared with their C prototypes (gssapi.h).
                unsafe {
                    let lib = Library::new(path).ok()?;
                    $(let $field = *lib.get::<unsafe extern "C" fn($($arg),*) -> Om>($sym).ok()?;)*
                    Some(Gss { _lib: lib, $($field,)* })
                }
            }
        }
    };
}

gss_functions! {
    import_name: b"gss_import_name\0" => fn(*mut Om, *const Buffer, *const Oid, *mut Name);
    release_name: b"gss_release_name\0" => fn(*mut Om, *mut Name);
    display_name: b"gss_display_name\0" => fn(*mut Om, Name, *mut Buffer, *mut *mut Oid);
    release_buffer: b"gss_release_buffer\0" => fn(*mut Om, *mut Buffer);
    acquire_cred_with_password: b"gss_acquire_cred_with_password\0" =>
        fn(*mut Om, Name, *const Buffer, Om, *const OidSet, i32, *mut Cred, *mut *mut OidSet, *mut Om);
    release_cred: b"gss_release_cred\0" => fn(*mut Om, *mut Cred);
    init_sec_context: b"gss_init_sec_context\0" => fn(
        *mut Om, Cred, *mut Ctx, Name, *const Oid, Om, Om, *const ChannelBindings, *const Buffer, *mut *mut Oid,
        *mut Buffer, *mut Om, *mut Om);
    accept_sec_context: b"gss_accept_sec_context\0" => fn(
        *mut Om, *mut Ctx, Cred, *const Buffer, *const ChannelBindings, *mut Name, *mut *mut Oid, *mut Buffer,
        *mut Om, *mut Om, *mut Cred);
    delete_sec_context: b"gss_delete_sec_context\0" => fn(*mut Om, *mut Ctx, *mut Buffer);
    wrap: b"gss_wrap\0" => fn(*mut Om, Ctx, i32, Om, *const Buffer, *mut i32, *mut Buffer);
    unwrap: b"gss_unwrap\0" => fn(*mut Om, Ctx, *const Buffer, *mut Buffer, *mut i32, *mut Om);
    get_mic: b"gss_get_mic\0" => fn(*mut Om, Ctx, Om, *const Buffer, *mut Buffer);
    verify_mic: b"gss_verify_mic\0" => fn(*mut Om, Ctx, *const Buffer, *const Buffer, *mut Om);
    display_status: b"gss_display_status\0" => fn(*mut Om, Om, i32, *const Oid, *mut Om, *mut Buffer);
}

fn library() -> Option<&'static Gss> {
    // The unit tests drive NegotiateStream inline over in-memory pipes, without a KDC; Kerberos
    // is tested through the C harness against a loopback realm.
    if cfg!(test) {
        return None;
    }
    static GSS: OnceLock<Option<Gss>> = OnceLock::new();
    GSS.get_or_init(|| {
        let path = std::env::var("APMNET_GSSAPI_LIBRARY").unwrap_or_else(|_| "libgssapi_krb5.so.2".into());
        if path.is_empty() || path == "none" {
            return None;
        }
        Gss::load(&path)
    })
    .as_ref()
}

/// Whether the system's GSSAPI could be loaded.
pub fn available() -> bool {
    library().is_some()
}

impl Gss {
    /// A buffer GSSAPI allocated, copied out and released.
    fn take(&self, b: &mut Buffer) -> Vec<u8> {
        let v = if b.value.is_null() || b.length == 0 {
            Vec::new()
        } else {
            // SAFETY: GSSAPI filled the buffer with `length` bytes at `value`.
            unsafe { std::slice::from_raw_parts(b.value as *const u8, b.length) }.to_vec()
        };
        let mut minor = 0;
        // SAFETY: releasing a buffer GSSAPI allocated (an empty one is a no-op).
        unsafe { (self.release_buffer)(&mut minor, b) };
        v
    }

    /// GSSAPI's texts for a status: the major code's, then the mechanism's.
    fn describe(&self, major: Om, minor: Om) -> String {
        let krb5 = oid(KRB5);
        let mut parts = Vec::new();
        for (code, kind) in [(major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)] {
            if code == 0 {
                continue;
            }
            let mut ctx = 0;
            loop {
                let (mut m, mut out) = (0, Buffer::EMPTY);
                // SAFETY: display_status writes a buffer we release with `take`.
                let r = unsafe { (self.display_status)(&mut m, code, kind, &krb5, &mut ctx, &mut out) };
                if r != COMPLETE {
                    break;
                }
                let text = String::from_utf8_lossy(&self.take(&mut out)).into_owned();
                if !text.is_empty() {
                    parts.push(text);
                }
                if ctx == 0 {
                    break;
                }
            }
        }
        format!("Kerberos: {}", parts.join(": "))
    }

    fn error(&self, major: Om, minor: Om, acquiring: bool) -> MechError {
        // RFC 2744's routine error numbers; a replayed, old or reordered token is only a
        // supplementary bit (DUPLICATE, OLD, UNSEQ, GAP).
        let failure = match routine(major) {
            4 => Failure::BadBinding,
            6 => Failure::MessageAltered,
            9 | 10 => Failure::InvalidToken,
            7 | 11 => Failure::NoCredentials,
            2 | 3 => Failure::TargetUnknown,
            0 if major & 0x1e != 0 => Failure::OutOfSequence,
            _ if acquiring => Failure::LogonDenied,
            _ => Failure::Internal,
        };
        MechError::new(failure, self.describe(major, minor))
    }

    fn import(&self, text: &str, kind: &'static [u8]) -> MechResult<Name> {
        let t = oid(kind);
        let (mut minor, mut name) = (0, std::ptr::null_mut());
        // SAFETY: the buffer points at `text` for the call; GSSAPI copies it.
        let major = unsafe { (self.import_name)(&mut minor, &Buffer::of(text.as_bytes()), &t, &mut name) };
        if major != COMPLETE {
            return Err(self.error(major, minor, false));
        }
        Ok(name)
    }

    fn display(&self, name: Name) -> Option<String> {
        let (mut minor, mut out) = (0, Buffer::EMPTY);
        // SAFETY: `name` is a live name; the buffer is released by `take`.
        let major = unsafe { (self.display_name)(&mut minor, name, &mut out, std::ptr::null_mut()) };
        (major == COMPLETE).then(|| String::from_utf8_lossy(&self.take(&mut out)).into_owned())
    }
}

/// A ChannelBinding's application data as gss_channel_bindings_struct.
fn bindings(app: &Option<Vec<u8>>) -> Option<ChannelBindings> {
    app.as_ref().map(|a| ChannelBindings {
        initiator_addrtype: 0,
        initiator_address: Buffer::EMPTY,
        acceptor_addrtype: 0,
        acceptor_address: Buffer::EMPTY,
        application_data: Buffer::of(a),
    })
}

fn cb_ptr(cb: &Option<ChannelBindings>) -> *const ChannelBindings {
    cb.as_ref().map_or(std::ptr::null(), |c| c as *const ChannelBindings)
}

/// The established context: wrap, unwrap and MICs, shared by both sides.
struct Context {
    gss: &'static Gss,
    ctx: Ctx,
    flags: Om,
    complete: bool,
}

impl Context {
    fn wrap(&mut self, data: &[u8], encrypt: bool, out: &mut Vec<u8>) -> MechResult<()> {
        let (mut minor, mut conf, mut token) = (0, 0, Buffer::EMPTY);
        // SAFETY: a live context; the input buffer points at `data` for the call.
        let major =
            unsafe { (self.gss.wrap)(&mut minor, self.ctx, encrypt as i32, 0, &Buffer::of(data), &mut conf, &mut token) };
        let wrapped = self.gss.take(&mut token);
        if major != COMPLETE {
            return Err(self.gss.error(major, minor, false));
        }
        out.extend_from_slice(&wrapped);
        Ok(())
    }

    fn unwrap(&mut self, token: &[u8], out: &mut Vec<u8>) -> MechResult<bool> {
        let (mut minor, mut conf, mut qop, mut plain) = (0, 0, 0, Buffer::EMPTY);
        // SAFETY: a live context; the input buffer points at `token` for the call.
        let major =
            unsafe { (self.gss.unwrap)(&mut minor, self.ctx, &Buffer::of(token), &mut plain, &mut conf, &mut qop) };
        // Released whatever the status: a replayed token (a supplementary status) still comes with
        // its plaintext.
        let data = self.gss.take(&mut plain);
        if major != COMPLETE {
            return Err(self.gss.error(major, minor, false));
        }
        out.extend_from_slice(&data);
        Ok(conf != 0)
    }

    fn get_mic(&mut self, data: &[u8]) -> MechResult<Vec<u8>> {
        let (mut minor, mut mic) = (0, Buffer::EMPTY);
        // SAFETY: a live context; the buffer points at `data` for the call.
        let major = unsafe { (self.gss.get_mic)(&mut minor, self.ctx, 0, &Buffer::of(data), &mut mic) };
        let mic = self.gss.take(&mut mic);
        if major != COMPLETE {
            return Err(self.gss.error(major, minor, false));
        }
        Ok(mic)
    }

    fn verify_mic(&mut self, data: &[u8], mic: &[u8]) -> MechResult<()> {
        let (mut minor, mut qop) = (0, 0);
        // SAFETY: a live context; the buffers point at `data` and `mic` for the call.
        let major =
            unsafe { (self.gss.verify_mic)(&mut minor, self.ctx, &Buffer::of(data), &Buffer::of(mic), &mut qop) };
        if major != COMPLETE {
            return Err(self.gss.error(major, minor, false));
        }
        Ok(())
    }

    /// What a context step returned.
    fn stepped(&mut self, major: Om, minor: Om, mut out: Buffer, flags: Om) -> MechResult<StepOut> {
        let token = self.gss.take(&mut out);
        match major {
            COMPLETE => {
                self.complete = true;
                self.flags = flags;
                Ok(StepOut { token, complete: true })
            }
            CONTINUE_NEEDED => Ok(StepOut { token, complete: false }),
            _ => Err(self.gss.error(major, minor, false)),
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            let mut minor = 0;
            // SAFETY: deleting the live context once.
            unsafe { (self.gss.delete_sec_context)(&mut minor, &mut self.ctx, std::ptr::null_mut()) };
        }
    }
}

macro_rules! context_methods {
    () => {
        fn blocking(&self, _input: Option<&[u8]>) -> bool {
            true
        }

        fn wrap(&mut self, data: &[u8], encrypt: bool, out: &mut Vec<u8>) -> MechResult<()> {
            self.context.wrap(data, encrypt, out)
        }

        fn unwrap(&mut self, token: &[u8], out: &mut Vec<u8>) -> MechResult<bool> {
            self.context.unwrap(token, out)
        }

        fn get_mic(&mut self, data: &[u8]) -> MechResult<Vec<u8>> {
            self.context.get_mic(data)
        }

        fn verify_mic(&mut self, data: &[u8], mic: &[u8]) -> MechResult<()> {
            self.context.verify_mic(data, mic)
        }

        fn flags(&self) -> u32 {
            if self.context.complete {
                self.context.flags
            } else {
                0
            }
        }

        fn package(&self) -> &'static str {
            "Kerberos"
        }
    };
}

// ------------------------------------------------------------------------------------------
// Initiator

pub struct KerberosClient {
    context: Context,
    credential: Credential,
    /// `SERVICE@host`.
    target: String,
    req_flags: Om,
    binding: Option<Vec<u8>>,
    cred: Cred,
    target_name: Name,
}

// SAFETY: the GSSAPI handles are used by one owner at a time (the channel's lock or the
// blocking-pool task that holds the mechanism); MIT's contexts may move between threads.
unsafe impl Send for KerberosClient {}

/// .NET's rewrite of an SPN: "SERVICE/host" becomes the host-based name "SERVICE@host".
pub fn host_based(spn: &str) -> String {
    match spn.split_once('/') {
        Some((service, host)) => format!("{service}@{}", host.split(':').next().unwrap_or(host)),
        None => spn.to_string(),
    }
}

/// A Kerberos initiator for `target` ("SERVICE/host"), or None where GSSAPI is absent or there
/// is no target. Nothing is asked of GSSAPI until the first step.
pub fn client(cred: &Credential, target: &str, flags: u32, binding: Option<&[u8]>) -> Option<Box<dyn Mechanism>> {
    let gss = library()?;
    if target.is_empty() {
        return None;
    }
    Some(Box::new(KerberosClient {
        context: Context { gss, ctx: std::ptr::null_mut(), flags: 0, complete: false },
        credential: cred.clone(),
        target: host_based(target),
        req_flags: flags,
        binding: binding.map(<[u8]>::to_vec),
        cred: std::ptr::null_mut(),
        target_name: std::ptr::null_mut(),
    }))
}

impl KerberosClient {
    fn prepare(&mut self) -> MechResult<()> {
        let gss = self.context.gss;
        self.target_name = gss.import(&self.target, NT_HOSTBASED_SERVICE)?;
        if self.credential.default {
            return Ok(());
        }
        let user = gss.import(&self.credential.principal(), NT_USER_NAME)?;
        let mut krb5 = oid(KRB5);
        let mechs = OidSet { count: 1, elements: &mut krb5 };
        let mut minor = 0;
        let password = self.credential.password.as_bytes();
        // SAFETY: a live name, a buffer over the password for the call, our one-OID set.
        let major = unsafe {
            (gss.acquire_cred_with_password)(
                &mut minor,
                user,
                &Buffer::of(password),
                INDEFINITE,
                &mechs,
                INITIATE,
                &mut self.cred,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let mut m = 0;
        let mut user = user;
        // SAFETY: releasing the name we imported.
        unsafe { (gss.release_name)(&mut m, &mut user) };
        if major != COMPLETE {
            return Err(gss.error(major, minor, true));
        }
        Ok(())
    }
}

impl Drop for KerberosClient {
    fn drop(&mut self) {
        let gss = self.context.gss;
        let mut minor = 0;
        // SAFETY: releasing the handles we own (null ones are skipped).
        unsafe {
            if !self.cred.is_null() {
                (gss.release_cred)(&mut minor, &mut self.cred);
            }
            if !self.target_name.is_null() {
                (gss.release_name)(&mut minor, &mut self.target_name);
            }
        }
    }
}

impl Mechanism for KerberosClient {
    fn step(&mut self, input: Option<&[u8]>) -> MechResult<StepOut> {
        if self.target_name.is_null() {
            self.prepare()?;
        }
        let gss = self.context.gss;
        let krb5 = oid(KRB5);
        let cb = bindings(&self.binding);
        let input_buf = input.map(Buffer::of);
        let (mut minor, mut out, mut ret_flags) = (0, Buffer::EMPTY, 0);
        // SAFETY: live handles; every input buffer points at memory that outlives the call.
        let major = unsafe {
            (gss.init_sec_context)(
                &mut minor,
                self.cred,
                &mut self.context.ctx,
                self.target_name,
                &krb5,
                self.req_flags,
                0,
                cb_ptr(&cb),
                input_buf.as_ref().map_or(std::ptr::null(), |b| b as *const Buffer),
                std::ptr::null_mut(),
                &mut out,
                &mut ret_flags,
                std::ptr::null_mut(),
            )
        };
        self.context.stepped(major, minor, out, ret_flags)
    }

    fn peer_name(&self) -> Option<String> {
        None
    }

    context_methods!();
}

// ------------------------------------------------------------------------------------------
// Acceptor

pub struct KerberosServer {
    context: Context,
    binding: Option<Vec<u8>>,
    peer: Option<String>,
}

// SAFETY: as for KerberosClient.
unsafe impl Send for KerberosServer {}

/// A Kerberos acceptor on the keytab, or None where GSSAPI is absent.
pub fn server(binding: Option<&[u8]>) -> Option<Box<dyn Mechanism>> {
    let gss = library()?;
    Some(Box::new(KerberosServer {
        context: Context { gss, ctx: std::ptr::null_mut(), flags: 0, complete: false },
        binding: binding.map(<[u8]>::to_vec),
        peer: None,
    }))
}

impl Mechanism for KerberosServer {
    fn step(&mut self, input: Option<&[u8]>) -> MechResult<StepOut> {
        let input = input.ok_or_else(|| MechError::token("Kerberos: the client sent no token"))?;
        let gss = self.context.gss;
        let cb = bindings(&self.binding);
        let (mut minor, mut out, mut ret_flags) = (0, Buffer::EMPTY, 0);
        let mut src: Name = std::ptr::null_mut();
        // SAFETY: a live (or null) context, the default acceptor credential, buffers over memory
        // that outlives the call; the source name is released below.
        let major = unsafe {
            (gss.accept_sec_context)(
                &mut minor,
                &mut self.context.ctx,
                std::ptr::null_mut(),
                &Buffer::of(input),
                cb_ptr(&cb),
                &mut src,
                std::ptr::null_mut(),
                &mut out,
                &mut ret_flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if !src.is_null() {
            if major == COMPLETE {
                self.peer = gss.display(src);
            }
            let mut m = 0;
            // SAFETY: releasing the name accept_sec_context handed out.
            unsafe { (gss.release_name)(&mut m, &mut src) };
        }
        // GSS_C_CHANNEL_BOUND_FLAG in the flags tells NegotiateStream's policy check whether the
        // client bound to our channel (MIT refuses a binding that does not match by itself).
        self.context.stepped(major, minor, out, ret_flags)
    }

    fn peer_name(&self) -> Option<String> {
        self.peer.clone()
    }

    context_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::negotiate::mech::flags as gss;

    #[test]
    fn spns_become_host_based_names() {
        assert_eq!(host_based("host/localhost"), "host@localhost");
        assert_eq!(host_based("HTTP/web.example:8080"), "HTTP@web.example");
        assert_eq!(host_based("svc@host"), "svc@host");
    }

    #[test]
    fn without_a_target_there_is_no_kerberos() {
        assert!(client(&Credential::new("a", "b", "R"), "", gss::MUTUAL, None).is_none());
    }
}
