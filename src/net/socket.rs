//! `Socket`: a TCP socket with .NET's state rules (bound, listening, the cached Connected flag)
//! over an engine `IoCore`.

use super::{address_family, protocol_type, socket_shutdown, socket_type, sync_op, sys};
use crate::op::{Completion, Outcome, Value};
use crate::engine::{self, Direction, IoCore, OpId, Poll};
use crate::error::{errno, msg, socket_error, Error, Result};
use crate::stream::{ConstBuf, MutBuf};
use parking_lot::Mutex;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

pub const CLASS_NAME: &str = "System.Net.Sockets.Socket";

#[derive(Default)]
struct State {
    bound: bool,
    listening: bool,
    /// .NET's Connected: as of the last operation, cleared by most errors and by shutdown.
    connected: bool,
    ever_connected: bool,
    /// Set by the Disconnect send-file option and by shutdown.
    disconnected: bool,
    connecting: bool,
}

/// One receive attempt (`IoCore::submit_receive`).
fn receive(core: &IoCore, fd: RawFd, ptr: *mut u8, len: usize) -> Poll {
    crate::fault::point("receive");
    loop {
        // SAFETY: the caller keeps the buffer valid until completion (the Begin contract).
        let r = unsafe { libc::recv(fd, ptr as *mut libc::c_void, len, 0) };
        if r >= 0 {
            return Poll::Ready(Ok(Value::Bytes(r as usize)));
        }
        match errno() {
            libc::EINTR => continue,
            libc::EAGAIN => return Poll::Pending,
            e => return Poll::Ready(Err(Socket::of_core(core).noted(Error::socket(e)))),
        }
    }
}

/// One allocation with its engine core, which comes first (`engine::Owner`).
/// Its fields are ordered and sized so that the whole `Arc` fits a 160-byte malloc chunk (the
/// idle connection's cost, issue 14).
#[repr(C)]
pub struct Socket {
    pub(crate) core: IoCore,
    state: Mutex<State>,
    v6: bool,
    /// SendTimeout and ReceiveTimeout in ms (0: none); read by every blocking transfer.
    send_timeout_ms: AtomicI32,
    receive_timeout_ms: AtomicI32,
}

// With the Arc's two counts, 152 bytes: a 160-byte malloc chunk. Growing it costs every socket.
const _: () = assert!(std::mem::size_of::<Socket>() == 136);

impl engine::Owner for Socket {
    fn core(&self) -> &IoCore {
        &self.core
    }
}

impl Socket {
    /// `new Socket(addressFamily, socketType, protocolType)` for the stream/TCP kinds.
    pub fn create(address_family: i32, kind: i32, protocol: i32) -> Result<Arc<Socket>> {
        let family = match address_family {
            address_family::INTER_NETWORK => libc::AF_INET,
            address_family::INTER_NETWORK_V6 => libc::AF_INET6,
            _ => return Err(Error::socket(libc::EAFNOSUPPORT)),
        };
        match kind {
            socket_type::STREAM => {}
            socket_type::DGRAM => {
                return Err(Error::not_supported("Only stream sockets (SocketType.Stream) are supported."))
            }
            _ => return Err(Error::socket(libc::ESOCKTNOSUPPORT)),
        }
        if protocol != protocol_type::TCP && protocol != protocol_type::UNSPECIFIED {
            return Err(Error::socket(libc::EPROTONOSUPPORT));
        }
        let fd = sys::tcp_socket(family)?;
        Socket::from_fd(fd, family, State::default())
    }

    fn from_fd(fd: RawFd, family: libc::c_int, state: State) -> Result<Arc<Socket>> {
        let lp = engine::assign_loop().inspect_err(|_| {
            // SAFETY: the fd is ours and was never shared; without a loop nothing will own it.
            unsafe { libc::close(fd) };
        })?;
        let socket = Arc::new(Socket {
            core: IoCore::new(fd, lp),
            state: Mutex::new(state),
            v6: family == libc::AF_INET6,
            send_timeout_ms: AtomicI32::new(0),
            receive_timeout_ms: AtomicI32::new(0),
        });
        IoCore::register(&socket);
        Ok(socket)
    }

    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::disposed(CLASS_NAME))
        } else {
            Ok(())
        }
    }

    /// Runs a control syscall on the open fd.
    fn with_fd<R>(&self, f: impl FnOnce(RawFd) -> Result<R>) -> Result<R> {
        self.core.with_fd(f).unwrap_or_else(|| Err(Error::disposed(CLASS_NAME)))
    }

    pub fn connected(&self) -> bool {
        !self.is_closed() && self.state.lock().connected
    }

    /// .NET's UpdateStatusAfterSocketError: most errors make Connected false.
    pub(crate) fn note_error(&self, e: &Error) {
        let transient = [
            socket_error::WOULD_BLOCK,
            socket_error::IO_PENDING,
            socket_error::NO_BUFFER_SPACE_AVAILABLE,
            socket_error::TIMED_OUT,
        ];
        if e.socket_error != 0 && !transient.contains(&e.socket_error) {
            self.state.lock().connected = false;
        }
    }

    pub fn bind(&self, address: &str, port: i32) -> Result<()> {
        self.check_open()?;
        let port = u16::try_from(port).map_err(|_| Error::out_of_range("port"))?;
        let ip = sys::parse_ip(address).ok_or_else(|| Error::argument("An invalid IP address was specified."))?;
        self.with_fd(|fd| sys::bind(fd, &SocketAddr::new(ip, port)))?;
        self.state.lock().bound = true;
        Ok(())
    }

    pub fn listen(&self, backlog: i32) -> Result<()> {
        self.check_open()?;
        let backlog = if backlog < 0 { libc::SOMAXCONN } else { backlog };
        // SAFETY: plain syscall on our fd.
        self.with_fd(|fd| sys::cvt(unsafe { libc::listen(fd, backlog) }))?;
        let mut st = self.state.lock();
        st.listening = true;
        st.bound = true; // listen(2) binds an unbound socket to an ephemeral port
        Ok(())
    }

    pub fn begin_accept(&self, done: Completion) -> Result<Option<OpId>> {
        self.check_open()?;
        {
            let st = self.state.lock();
            if !st.bound {
                return Err(Error::invalid_operation(msg::MUST_BIND));
            }
            if !st.listening {
                return Err(Error::invalid_operation(msg::MUST_LISTEN));
            }
        }
        let family = self.family();
        let attempt = move |fd: RawFd| -> Poll {
            loop {
                // SAFETY: accept4 with no address output.
                let r = unsafe {
                    libc::accept4(
                        fd,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    )
                };
                if r >= 0 {
                    let state = State { bound: true, connected: true, ever_connected: true, ..State::default() };
                    return Poll::Ready(Socket::from_fd(r, family, state).map(|s| Value::Object(s)));
                }
                match errno() {
                    libc::EINTR | libc::ECONNABORTED => continue,
                    libc::EAGAIN => return Poll::Pending,
                    e => return Poll::Ready(Err(Error::socket(e))),
                }
            }
        };
        Ok(self.core.submit(Direction::Read, attempt, done))
    }

    pub fn accept(&self) -> Result<Arc<Socket>> {
        sync_op::run(&self.core, Direction::Read, 0, |done| self.begin_accept(done))?.object::<Socket>()
    }

    /// Checks that a connect may start; marks the socket as connecting. A socket disconnected by
    /// a send file may connect again, but only asynchronously (.NET's rule).
    fn start_connect(&self, blocking: bool) -> Result<()> {
        self.check_open()?;
        let mut st = self.state.lock();
        if st.listening {
            return Err(Error::invalid_operation(msg::MUST_NOT_LISTEN));
        }
        if st.connected {
            return Err(Error::socket(libc::EISCONN));
        }
        if st.disconnected && blocking {
            return Err(Error::invalid_operation(msg::DISCONNECTED_RECONNECT));
        }
        if st.connecting {
            return Err(Error::socket(libc::EALREADY));
        }
        st.connecting = true;
        Ok(())
    }

    /// The addresses of `host` (an IP literal or a name) in the socket's family. Blocks for names.
    fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        if let Some(ip) = sys::parse_ip(host) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let family = self.family();
        // A DualMode socket reaches IPv4 addresses too, as IPv4-mapped IPv6 ones (.NET maps them
        // the same way); the resolver's order is kept.
        let dual = family == libc::AF_INET6 && self.dual_mode().unwrap_or(false);
        let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
            Ok(all) => all
                .filter_map(|a| match a {
                    SocketAddr::V4(v4) if dual => Some(SocketAddr::new(v4.ip().to_ipv6_mapped().into(), port)),
                    a if (a.is_ipv4() && family == libc::AF_INET) || (a.is_ipv6() && family == libc::AF_INET6) => Some(a),
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if addrs.is_empty() {
            return Err(Error::socket_code(socket_error::HOST_NOT_FOUND, "Name or service not known"));
        }
        Ok(addrs)
    }

    /// BeginConnect to `host` (an IP literal, or a name resolved on the blocking pool), trying
    /// each address of the socket's family in turn.
    pub fn begin_connect(self: &Arc<Self>, host: &str, port: i32, done: Completion) -> Result<()> {
        let port = u16::try_from(port).map_err(|_| Error::out_of_range("port"))?;
        self.start_connect(false)?;
        if let Some(ip) = sys::parse_ip(host) {
            self.connect_each(vec![SocketAddr::new(ip, port)], done);
            return Ok(());
        }
        let (this, host) = (self.clone(), host.to_string());
        let resolve = Box::new(move || {
            crate::fault::point("resolve");
            match this.resolve(&host, port) {
                Ok(addrs) => this.connect_each(addrs, done),
                Err(e) => this.finish_connect(Err(e), done),
            }
        });
        engine::spawn_blocking(resolve).inspect_err(|_| self.state.lock().connecting = false)
    }

    /// Connects to the first of `addrs` that accepts.
    fn connect_each(self: &Arc<Self>, mut addrs: Vec<SocketAddr>, done: Completion) {
        let addr = addrs.remove(0);
        let this = self.clone();
        self.begin_connect_one(
            addr,
            Completion::wrapping(done, move |outcome: Outcome, done| match outcome {
                // A cancelled connect tries no further address.
                Err(e) if e.errno != libc::ECANCELED && !addrs.is_empty() && !this.is_closed() => {
                    this.connect_each(addrs, done)
                }
                outcome => this.finish_connect(outcome, done),
            }),
        );
    }

    /// Records a connect's outcome in the socket's state, then completes it.
    fn finish_connect(&self, outcome: Outcome, done: Completion) {
        self.record_connect(&outcome);
        done.complete(outcome)
    }

    fn record_connect(&self, outcome: &Outcome) {
        let mut st = self.state.lock();
        st.connecting = false;
        if outcome.is_ok() {
            st.connected = true;
            st.ever_connected = true;
            st.bound = true;
            st.disconnected = false;
        }
    }

    /// One non-blocking connect attempt. After a failure the socket gets a fresh fd: Linux
    /// cannot connect a socket again after a failed attempt, and .NET hides that the same way.
    fn begin_connect_one(self: &Arc<Self>, addr: SocketAddr, done: Completion) -> Option<OpId> {
        let mut started = false;
        let attempt = move |fd: RawFd| -> Poll {
            if !started {
                started = true;
                return match sys::connect(fd, &addr) {
                    Ok(true) => Poll::Ready(Ok(Value::Unit)),
                    Ok(false) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                };
            }
            match sys::take_error(fd) {
                Ok(0) => match sys::endpoint(fd, true) {
                    Ok(_) => Poll::Ready(Ok(Value::Unit)),
                    Err(e) if e.errno == libc::ENOTCONN => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                },
                Ok(err) => Poll::Ready(Err(Error::socket(err))),
                Err(e) => Poll::Ready(Err(e)),
            }
        };
        let this = self.clone();
        let renew = Completion::wrapping(done, move |outcome: Outcome, done| {
            if outcome.is_err() && !this.is_closed() {
                let _ = sys::tcp_socket(this.family()).and_then(|fd| this.core.replace_fd(fd));
            }
            done.complete(outcome)
        });
        self.core.submit(Direction::Write, attempt, renew)
    }

    /// Connect, driven by the caller (names resolved on its thread), so it works from any
    /// thread, a callback included.
    pub fn connect(self: &Arc<Self>, host: &str, port: i32) -> Result<()> {
        let port = u16::try_from(port).map_err(|_| Error::out_of_range("port"))?;
        self.start_connect(true)?;
        let outcome = self.resolve(host, port).and_then(|addrs| {
            let mut last = Ok(Value::Unit);
            for addr in addrs {
                last = sync_op::run(&self.core, Direction::Write, 0, |done| Ok(self.begin_connect_one(addr, done)));
                if last.is_ok() || self.is_closed() {
                    break;
                }
            }
            last
        });
        self.record_connect(&outcome);
        outcome.map(drop)
    }

    /// Checks a send/receive may start on this socket.
    fn check_transfer(&self) -> Result<()> {
        self.check_open()
    }

    /// Sends what the kernel takes of `buf` at once, when no send is queued ahead: the bytes
    /// sent, 0 on EAGAIN or any failure (which a send the usual way then reports).
    pub fn try_send_now(&self, buf: &[u8]) -> usize {
        if self.check_transfer().is_err() {
            return 0;
        }
        let sent = self.core.try_now(Direction::Write, |fd| {
            // SAFETY: a plain non-blocking send from a live slice on our open fd.
            unsafe { libc::send(fd, buf.as_ptr() as *const libc::c_void, buf.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) }
        });
        sent.map_or(0, |r| r.max(0) as usize)
    }

    /// Sends all of `buf` (completes only when every byte is in the kernel, or on error).
    pub fn begin_send(self: &Arc<Self>, buf: ConstBuf, done: Completion) -> Result<Option<OpId>> {
        self.check_transfer()?;
        let this = self.clone();
        let mut sent = 0usize;
        let attempt = move |fd: RawFd| -> Poll {
            let buf = buf; // the whole view, not its fields (closures capture fields apart)
            while sent < buf.len {
                // SAFETY: the caller keeps the buffer valid until completion (the Begin contract).
                let r = unsafe {
                    libc::send(fd, buf.ptr.add(sent) as *const libc::c_void, buf.len - sent, libc::MSG_NOSIGNAL)
                };
                if r >= 0 {
                    sent += r as usize;
                    continue;
                }
                match errno() {
                    libc::EINTR => continue,
                    libc::EAGAIN => return Poll::Pending,
                    e => return Poll::Ready(Err(this.noted(Error::socket(e)))),
                }
            }
            Poll::Ready(Ok(Value::Bytes(sent)))
        };
        Ok(self.core.submit(Direction::Write, attempt, done))
    }

    /// Receives what is available, up to `buf.len` bytes; 0 at the end of the stream.
    pub fn begin_receive(self: &Arc<Self>, buf: MutBuf, done: Completion) -> Result<Option<OpId>> {
        self.check_transfer()?;
        Ok(self.core.submit_receive(receive, buf.ptr, buf.len, done))
    }

    /// The socket whose core this is: every `IoCore` is the first field of a `Socket`
    /// (`engine::Owner`, checked when it registers), and a core is only reached through it.
    fn of_core(core: &IoCore) -> &Socket {
        // SAFETY: as above; `Socket` is repr(C) with `core` first.
        unsafe { &*(core as *const IoCore as *const Socket) }
    }

    /// Updates the Connected flag for `e` and passes it on.
    fn noted(&self, e: Error) -> Error {
        self.note_error(&e);
        e
    }

    pub fn send(self: &Arc<Self>, buf: ConstBuf) -> Result<usize> {
        let timeout = self.timeout_of(true).load(Ordering::Relaxed);
        bytes(sync_op::run(&self.core, Direction::Write, timeout, |done| self.begin_send(buf, done)))
    }

    pub fn receive(self: &Arc<Self>, buf: MutBuf) -> Result<usize> {
        let timeout = self.timeout_of(false).load(Ordering::Relaxed);
        bytes(sync_op::run(&self.core, Direction::Read, timeout, |done| self.begin_receive(buf, done)))
    }

    pub fn shutdown(&self, how: i32) -> Result<()> {
        self.check_open()?;
        let how = match how {
            socket_shutdown::RECEIVE => libc::SHUT_RD,
            socket_shutdown::SEND => libc::SHUT_WR,
            socket_shutdown::BOTH => libc::SHUT_RDWR,
            _ => return Err(Error::socket(libc::EINVAL)),
        };
        let ever_connected = self.state.lock().ever_connected;
        // SAFETY: plain syscall on our fd.
        let r = self.with_fd(|fd| sys::cvt(unsafe { libc::shutdown(fd, how) }));
        self.state.lock().connected = false;
        match r {
            // Winsock compatibility, as .NET: not connected (any more) is fine once connected.
            Err(e) if e.errno == libc::ENOTCONN && ever_connected => Ok(()),
            r => r.map(drop),
        }
    }

    /// The send-file Disconnect/ReuseSocket options: shut the connection down and, for reuse,
    /// give the socket a fresh fd so it can connect again.
    pub(crate) fn disconnect(&self, reuse: bool) -> Result<()> {
        // SAFETY: plain syscall on our fd.
        let _ = self.with_fd(|fd| sys::cvt(unsafe { libc::shutdown(fd, libc::SHUT_RDWR) }));
        {
            let mut st = self.state.lock();
            st.connected = false;
            st.disconnected = true;
        }
        if reuse {
            self.core.replace_fd(sys::tcp_socket(self.family())?)?;
            let mut st = self.state.lock();
            // Still disconnected: .NET lets such a socket connect again only asynchronously.
            *st = State { disconnected: true, ..State::default() };
        }
        Ok(())
    }

    /// Cancels the pending operation whose completion carries `tag`: it completes with
    /// OperationAborted (see `IoCore::cancel_tagged`).
    pub fn cancel(&self, tag: usize) -> bool {
        self.core.cancel_tagged(tag)
    }

    /// Closes the socket: queued operations complete with OperationAborted.
    pub fn close(&self) {
        self.state.lock().connected = false;
        self.core.close();
    }

    pub fn endpoint(&self, remote: bool) -> Result<SocketAddr> {
        self.check_open()?;
        self.with_fd(|fd| sys::endpoint(fd, remote))
    }

    pub fn available(&self) -> Result<i32> {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        self.with_fd(|fd| sys::cvt(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) }))?;
        Ok(n)
    }

    /// DualMode: an IPv6 socket that also reaches IPv4 addresses (IPV6_V6ONLY off). .NET refuses
    /// it on an IPv4 socket with NotSupported.
    pub fn set_dual_mode(&self, on: bool) -> Result<()> {
        if !self.v6 {
            return Err(Error::not_supported("This protocol version is not supported."));
        }
        self.with_fd(|fd| sys::set_dual_mode(fd, on))
    }

    pub fn dual_mode(&self) -> Result<bool> {
        if !self.v6 {
            return Err(Error::not_supported("This protocol version is not supported."));
        }
        self.with_fd(sys::dual_mode)
    }

    /// NoDelay (TCP_NODELAY): true disables Nagle's algorithm.
    pub fn set_no_delay(&self, no_delay: bool) -> Result<()> {
        self.with_fd(|fd| sys::set_no_delay(fd, no_delay))
    }

    pub fn no_delay(&self) -> Result<bool> {
        self.with_fd(sys::no_delay)
    }

    /// SendBufferSize (SO_SNDBUF) in bytes; the caller has checked it (.NET rejects negative
    /// sizes with ArgumentOutOfRange).
    pub fn set_send_buffer_size(&self, size: usize) -> Result<()> {
        self.with_fd(|fd| sys::set_send_buffer_size(fd, size))
    }

    /// SendBufferSize as the kernel reports it (Linux doubles what it was given).
    pub fn send_buffer_size(&self) -> Result<i32> {
        self.with_fd(sys::send_buffer_size)
    }

    /// ReceiveBufferSize (SO_RCVBUF) in bytes, as `set_send_buffer_size`.
    pub fn set_receive_buffer_size(&self, size: usize) -> Result<()> {
        self.with_fd(|fd| sys::set_receive_buffer_size(fd, size))
    }

    /// ReceiveBufferSize as the kernel reports it.
    pub fn receive_buffer_size(&self) -> Result<i32> {
        self.with_fd(sys::receive_buffer_size)
    }

    pub fn set_linger(&self, enabled: bool, seconds: i32) -> Result<()> {
        if !(0..=u16::MAX as i32).contains(&seconds) {
            return Err(Error::out_of_range("seconds"));
        }
        self.with_fd(|fd| sys::set_linger(fd, enabled, seconds))
    }

    pub fn linger(&self) -> Result<(bool, i32)> {
        self.with_fd(sys::get_linger)
    }

    /// Send/ReceiveTimeout in milliseconds; 0 and -1 mean infinite (the getter reports 0).
    pub fn set_timeout(&self, send: bool, ms: i32) -> Result<()> {
        self.check_open()?;
        if ms < -1 {
            return Err(Error::out_of_range("value"));
        }
        self.timeout_of(send).store(ms.max(0), Ordering::Relaxed);
        Ok(())
    }

    pub fn timeout(&self, send: bool) -> Result<i32> {
        self.check_open()?;
        Ok(self.timeout_of(send).load(Ordering::Relaxed))
    }

    fn timeout_of(&self, send: bool) -> &AtomicI32 {
        if send {
            &self.send_timeout_ms
        } else {
            &self.receive_timeout_ms
        }
    }

    fn family(&self) -> libc::c_int {
        if self.v6 {
            libc::AF_INET6
        } else {
            libc::AF_INET
        }
    }
}

fn bytes(outcome: Outcome) -> Result<usize> {
    match outcome? {
        Value::Bytes(n) => Ok(n),
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::mpsc;
    use std::time::Duration;

    fn connected() -> (Arc<Socket>, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = Socket::create(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_TCP).unwrap();
        s.connect("127.0.0.1", port as i32).unwrap();
        let (peer, _) = listener.accept().unwrap();
        (s, peer)
    }

    fn recv_buf(b: &mut [u8]) -> MutBuf {
        MutBuf { ptr: b.as_mut_ptr(), len: b.len() }
    }

    #[test]
    fn a_socket_joins_its_loops_epoll_set_only_when_an_asynchronous_operation_waits() {
        let (s, mut peer) = connected();
        // Blocking calls, one of which waits for data that comes later: the caller polls.
        s.send(ConstBuf { ptr: b"ping".as_ptr(), len: 4 }).unwrap();
        let mut got = [0u8; 4];
        peer.read_exact(&mut got).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            peer.write_all(b"pong").unwrap();
            peer
        });
        let mut b = [0u8; 16];
        assert_eq!(s.receive(recv_buf(&mut b)).unwrap(), 4);
        assert_eq!(&b[..4], b"pong");
        let mut peer = writer.join().unwrap();
        assert!(!s.core.in_epoll_set(), "synchronous calls woke the loop");

        // An asynchronous receive that completes at once does not need the loop either.
        peer.write_all(b"now").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let (tx, rx) = mpsc::channel();
        let t = tx.clone();
        let queued = s.begin_receive(recv_buf(&mut b), Completion::new(move |o| t.send(o).unwrap())).unwrap();
        assert!(queued.is_none());
        assert!(matches!(rx.recv().unwrap(), Ok(Value::Bytes(3))));
        assert!(!s.core.in_epoll_set());

        // One that waits puts the fd in the set, and the loop completes it.
        let queued = s.begin_receive(recv_buf(&mut b), Completion::new(move |o| tx.send(o).unwrap())).unwrap();
        assert!(queued.is_some());
        assert!(s.core.in_epoll_set());
        peer.write_all(b"later").unwrap();
        assert!(matches!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(Value::Bytes(5))));
        assert_eq!(&b[..5], b"later");
        s.close();
    }

    #[test]
    fn closing_a_socket_the_loop_never_watched_releases_it_on_the_closing_thread() {
        let (s, _peer) = connected();
        let weak = Arc::downgrade(&s);
        s.close();
        drop(s);
        // No pass of the loop is needed: the loop's reference went with the close.
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn an_asynchronous_receive_queued_behind_a_blocking_one_is_completed_by_the_loop() {
        let (s, mut peer) = connected();
        let reader = {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut b = [0u8; 1];
                s.receive(recv_buf(&mut b)).map(|n| (n, b[0]))
            })
        };
        // The blocking receive is queued first (nothing to read), then the asynchronous one.
        while !s.core.has_queued(Direction::Read) {
            std::thread::yield_now();
        }
        let mut b = [0u8; 1];
        let (tx, rx) = mpsc::channel();
        let queued = s.begin_receive(recv_buf(&mut b), Completion::new(move |o| tx.send(o).unwrap())).unwrap();
        assert!(queued.is_some());
        assert!(s.core.in_epoll_set());
        peer.write_all(b"ab").unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), (1, b'a'));
        assert!(matches!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(Value::Bytes(1))));
        assert_eq!(b[0], b'b');
        s.close();
    }
}
