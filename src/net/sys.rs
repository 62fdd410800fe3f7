//! Thin, checked wrappers over the socket syscalls the rest of `net` uses, most of them through
//! `socket2` on the engine's fd.
//!
//! The fds stay plain `RawFd`s owned by the engine's `IoCore` (it closes them and swaps them with
//! dup3), so socket2 only ever borrows them, for one call (`sock`); a new socket leaves socket2's
//! hands as a raw fd at once. Every failure becomes the errno's SocketException.

use crate::error::{Error, Result};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{BorrowedFd, IntoRawFd, RawFd};
use std::time::Duration;

/// Turns a -1 return into the errno's SocketException.
pub fn cvt(r: libc::c_int) -> Result<libc::c_int> {
    if r < 0 {
        Err(Error::last_os())
    } else {
        Ok(r)
    }
}

/// An OS error from socket2 as the errno's SocketException.
fn os_error(e: io::Error) -> Error {
    Error::socket(e.raw_os_error().unwrap_or(0))
}

/// Runs `f` on socket2's view of `fd`, for the duration of the call only.
fn sock<R>(fd: RawFd, f: impl FnOnce(SockRef<'_>) -> io::Result<R>) -> Result<R> {
    if fd < 0 {
        // What the syscall would say; and borrow_raw must never see -1.
        return Err(Error::socket(libc::EBADF));
    }
    // SAFETY: callers pass the IoCore's fd from inside `IoCore::with_fd` or an operation's
    // attempt, where a side lock is held: close and replace_fd take both locks, so the fd stays
    // open (and the same socket) for the whole call, and the borrow does not outlive it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    f(SockRef::from(&fd)).map_err(os_error)
}

/// A new non-blocking, close-on-exec TCP socket. IPv6 sockets are IPv6-only, as .NET makes them.
pub fn tcp_socket(family: libc::c_int) -> Result<RawFd> {
    // new_raw: exactly socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP).
    let socket = Socket::new_raw(Domain::from(family), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))
        .map_err(os_error)?;
    if family == libc::AF_INET6 {
        // On failure the Socket is dropped, which closes the fd.
        socket.set_only_v6(true).map_err(os_error)?;
    }
    Ok(socket.into_raw_fd())
}

/// IPV6_V6ONLY cleared (DualMode) or set.
pub fn set_dual_mode(fd: RawFd, on: bool) -> Result<()> {
    sock(fd, |s| s.set_only_v6(!on))
}

pub fn dual_mode(fd: RawFd) -> Result<bool> {
    sock(fd, |s| s.only_v6().map(|v6| !v6))
}

/// TCP_NODELAY.
pub fn set_no_delay(fd: RawFd, no_delay: bool) -> Result<()> {
    sock(fd, |s| s.set_nodelay(no_delay))
}

pub fn no_delay(fd: RawFd) -> Result<bool> {
    sock(fd, |s| s.nodelay())
}

/// SO_SNDBUF.
pub fn set_send_buffer_size(fd: RawFd, size: usize) -> Result<()> {
    sock(fd, |s| s.set_send_buffer_size(size))
}

/// SO_SNDBUF as the kernel reports it. socket2 widens the kernel's int to usize; narrowing it back
/// gives that int exactly.
pub fn send_buffer_size(fd: RawFd) -> Result<i32> {
    sock(fd, |s| s.send_buffer_size()).map(|n| n as i32)
}

/// SO_RCVBUF.
pub fn set_receive_buffer_size(fd: RawFd, size: usize) -> Result<()> {
    sock(fd, |s| s.set_recv_buffer_size(size))
}

/// SO_RCVBUF as the kernel reports it (exactly its int, as `send_buffer_size`).
pub fn receive_buffer_size(fd: RawFd) -> Result<i32> {
    sock(fd, |s| s.recv_buffer_size()).map(|n| n as i32)
}

/// SO_ERROR: the pending error's errno (clearing it), 0 when there is none.
pub fn take_error(fd: RawFd) -> Result<i32> {
    sock(fd, |s| s.take_error()).map(|e| e.map_or(0, |e| e.raw_os_error().unwrap_or(0)))
}

/// SO_LINGER. Disabled, the kernel ignores the seconds (they are not passed on).
pub fn set_linger(fd: RawFd, enabled: bool, seconds: i32) -> Result<()> {
    let linger = enabled.then(|| Duration::from_secs(seconds as u64));
    sock(fd, |s| s.set_linger(linger))
}

/// SO_LINGER as the kernel reports it: whether it is on, and its time in seconds even when off
/// (what .NET's LingerState reports). socket2's `linger()` gives no time when off, hence the
/// syscall here.
pub fn get_linger(fd: RawFd) -> Result<(bool, i32)> {
    let mut l = libc::linger { l_onoff: 0, l_linger: 0 };
    let mut len = size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into the local linger struct.
    cvt(unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &mut l as *mut _ as *mut libc::c_void, &mut len)
    })?;
    Ok((l.l_onoff != 0, l.l_linger))
}

/// getsockname (local) or getpeername (remote).
pub fn endpoint(fd: RawFd, remote: bool) -> Result<SocketAddr> {
    let addr = sock(fd, |s| if remote { s.peer_addr() } else { s.local_addr() })?;
    addr.as_socket().ok_or_else(|| Error::socket(libc::EAFNOSUPPORT))
}

pub fn bind(fd: RawFd, addr: &SocketAddr) -> Result<()> {
    let addr = SockAddr::from(*addr);
    sock(fd, |s| s.bind(&addr))
}

/// Starts a non-blocking connect: Ok(true) connected, Ok(false) in progress.
pub fn connect(fd: RawFd, addr: &SocketAddr) -> Result<bool> {
    let addr = SockAddr::from(*addr);
    sock(fd, |s| loop {
        match s.connect(&addr) {
            Ok(()) => return Ok(true),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EINPROGRESS | libc::EALREADY) => return Ok(false),
                _ => return Err(e),
            },
        }
    })
}

/// Parses an IP literal ("127.0.0.1", "::1", "[::1]").
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    let t = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(t);
    t.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    #[test]
    fn options_and_endpoints_on_a_borrowed_fd() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = l.as_raw_fd();
        assert_eq!(endpoint(fd, false).unwrap(), l.local_addr().unwrap());
        assert_eq!(endpoint(fd, true).unwrap_err().errno, libc::ENOTCONN);
        set_no_delay(fd, true).unwrap();
        assert!(no_delay(fd).unwrap());
        set_receive_buffer_size(fd, 32768).unwrap();
        assert!(receive_buffer_size(fd).unwrap() >= 32768);
        assert_eq!(take_error(fd).unwrap(), 0);
        // Off, the kernel keeps (and reports) the last time, as .NET's LingerState shows it.
        set_linger(fd, true, 5).unwrap();
        assert_eq!(get_linger(fd).unwrap(), (true, 5));
        set_linger(fd, false, 0).unwrap();
        assert_eq!(get_linger(fd).unwrap(), (false, 5));
        // Bound already: the errno's SocketException.
        assert_eq!(bind(fd, &"127.0.0.1:0".parse().unwrap()).unwrap_err().errno, libc::EINVAL);
        // The fd is still the listener's: borrowing did not close it.
        assert_eq!(endpoint(fd, false).unwrap(), l.local_addr().unwrap());
    }

    #[test]
    fn a_closed_fd_is_ebadf() {
        assert_eq!(no_delay(-1).unwrap_err().errno, libc::EBADF);
    }
}
