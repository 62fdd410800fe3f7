//! NetworkStream: a Stream over a connected socket (reference/dotnet-semantics.md section 3).
//! Transfer failures surface as IOException ("Unable to write data to the transport
//! connection: ...") with the SocketException's code kept as the inner error.

use super::file_access;
use super::socket::Socket;
use crate::op::{Completion, Outcome};
use crate::error::{code, msg, Error, Result};
use crate::stream::{ConstBuf, MutBuf, Stream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const CLASS_NAME: &str = "System.Net.Sockets.NetworkStream";

pub struct NetworkStream {
    socket: Arc<Socket>,
    owns_socket: bool,
    readable: bool,
    writable: bool,
    closed: AtomicBool,
}

impl NetworkStream {
    pub fn new(socket: Arc<Socket>, access: i32, owns_socket: bool) -> Result<NetworkStream> {
        if socket.is_closed() {
            return Err(Error::disposed(super::socket::CLASS_NAME));
        }
        if !socket.connected() {
            return Err(Error::new(code::IO, msg::NOT_CONNECTED));
        }
        let (readable, writable) = match access {
            file_access::READ => (true, false),
            file_access::WRITE => (false, true),
            _ => (true, true),
        };
        Ok(NetworkStream { socket, owns_socket, readable, writable, closed: AtomicBool::new(false) })
    }

    pub fn owns_socket(&self) -> bool {
        self.owns_socket
    }
}

/// A transfer's completion with its failure as NetworkStream reports it (an IOException).
fn wrapping(done: Completion, writing: bool) -> Completion {
    fn read(o: Outcome) -> Outcome {
        o.map_err(|e| e.into_io(false))
    }
    fn write(o: Outcome) -> Outcome {
        o.map_err(|e| e.into_io(true))
    }
    Completion::mapped(done, if writing { write } else { read })
}

impl Stream for NetworkStream {
    fn check(&self, writing: bool) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::disposed(CLASS_NAME));
        }
        match writing {
            true if !self.writable => Err(Error::invalid_operation(msg::READ_ONLY_STREAM)),
            false if !self.readable => Err(Error::invalid_operation(msg::WRITE_ONLY_STREAM)),
            _ => Ok(()),
        }
    }

    fn can_read(&self) -> bool {
        self.readable && !self.closed.load(Ordering::Acquire)
    }

    fn can_write(&self) -> bool {
        self.writable && !self.closed.load(Ordering::Acquire)
    }

    fn begin_write(&self, buf: ConstBuf, done: Completion) -> Result<()> {
        self.check(true)?;
        self.socket.begin_send(buf, wrapping(done, true)).map(drop).map_err(|e| e.into_io(true))
    }

    fn begin_read(&self, buf: MutBuf, done: Completion) -> Result<()> {
        self.check(false)?;
        self.socket.begin_receive(buf, wrapping(done, false)).map(drop).map_err(|e| e.into_io(false))
    }

    fn write(&self, buf: ConstBuf) -> Result<()> {
        self.check(true)?;
        self.socket.send(buf).map(drop).map_err(|e| e.into_io(true))
    }

    fn try_write_now(&self, buf: &[u8]) -> usize {
        if self.check(true).is_err() {
            return 0;
        }
        self.socket.try_send_now(buf)
    }

    fn read(&self, buf: MutBuf) -> Result<usize> {
        self.check(false)?;
        self.socket.receive(buf).map_err(|e| e.into_io(false))
    }

    fn cancel(&self, tag: usize) -> bool {
        self.socket.cancel(tag)
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if self.owns_socket {
            let _ = self.socket.shutdown(super::socket_shutdown::BOTH);
            self.socket.close();
        }
        Ok(())
    }
}
