//! Thin, checked wrappers over the socket syscalls the rest of `net` uses.

use crate::error::{errno, Error, Result};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Turns a -1 return into the errno's SocketException.
pub fn cvt(r: libc::c_int) -> Result<libc::c_int> {
    if r < 0 {
        Err(Error::last_os())
    } else {
        Ok(r)
    }
}

/// A new non-blocking, close-on-exec TCP socket. IPv6 sockets are IPv6-only, as .NET makes them.
pub fn tcp_socket(family: libc::c_int) -> Result<RawFd> {
    // SAFETY: plain syscall.
    let fd = cvt(unsafe {
        libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, libc::IPPROTO_TCP)
    })?;
    if family == libc::AF_INET6 {
        if let Err(e) = set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1) {
            // SAFETY: our fd.
            unsafe { libc::close(fd) };
            return Err(e);
        }
    }
    Ok(fd)
}

pub fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> Result<()> {
    // SAFETY: passes a pointer to a local int of the stated size.
    cvt(unsafe {
        libc::setsockopt(fd, level, name, &value as *const _ as *const libc::c_void, size_of::<libc::c_int>() as u32)
    })
    .map(drop)
}

pub fn get_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into the local.
    cvt(unsafe { libc::getsockopt(fd, level, name, &mut value as *mut _ as *mut libc::c_void, &mut len) })?;
    Ok(value)
}

pub fn set_linger(fd: RawFd, enabled: bool, seconds: i32) -> Result<()> {
    let l = libc::linger { l_onoff: enabled as i32, l_linger: seconds };
    // SAFETY: pointer to a local linger struct of the stated size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            size_of::<libc::linger>() as u32,
        )
    })
    .map(drop)
}

pub fn get_linger(fd: RawFd) -> Result<(bool, i32)> {
    // SAFETY: zeroed plain struct, filled by the kernel.
    let mut l: libc::linger = unsafe { zeroed() };
    let mut len = size_of::<libc::linger>() as libc::socklen_t;
    cvt(unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &mut l as *mut _ as *mut libc::c_void, &mut len)
    })?;
    Ok((l.l_onoff != 0, l.l_linger))
}

/// A socket address in the kernel's layout.
pub fn to_raw(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data large enough for both families.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_raw(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this is a sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// getsockname (local) or getpeername (remote).
pub fn endpoint(fd: RawFd, remote: bool) -> Result<SocketAddr> {
    // SAFETY: the kernel fills at most `len` bytes of the storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = &mut storage as *mut _ as *mut libc::sockaddr;
    cvt(unsafe {
        if remote {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    })?;
    from_raw(&storage).ok_or_else(|| Error::socket(libc::EAFNOSUPPORT))
}

pub fn bind(fd: RawFd, addr: &SocketAddr) -> Result<()> {
    let (storage, len) = to_raw(addr);
    // SAFETY: a valid address of `len` bytes.
    cvt(unsafe { libc::bind(fd, &storage as *const _ as *const libc::sockaddr, len) }).map(drop)
}

/// Starts a non-blocking connect: Ok(true) connected, Ok(false) in progress.
pub fn connect(fd: RawFd, addr: &SocketAddr) -> Result<bool> {
    let (storage, len) = to_raw(addr);
    loop {
        // SAFETY: a valid address of `len` bytes.
        let r = unsafe { libc::connect(fd, &storage as *const _ as *const libc::sockaddr, len) };
        if r == 0 {
            return Ok(true);
        }
        match errno() {
            libc::EINTR => continue,
            libc::EINPROGRESS | libc::EALREADY => return Ok(false),
            e => return Err(Error::socket(e)),
        }
    }
}

/// Parses an IP literal ("127.0.0.1", "::1", "[::1]").
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    let t = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(t);
    t.parse().ok()
}
