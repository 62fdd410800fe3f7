//! Socket.BeginSendFile: pre-buffer, file, post-buffer as one write, with sendfile(2).
//!
//! The rules (reference/dotnet-semantics.md 2.6-2.8): the file is opened inside Begin, so
//! FileNotFound / DirectoryNotFound come from Begin; the file's length is taken once, at the start;
//! sendfile runs with an explicit offset (the file position never moves), loops on short writes,
//! waits on EAGAIN and stops with success at an early EOF (a file that shrank). The whole transfer
//! is one operation on the socket's write queue, so nothing interleaves with it. Disconnect and
//! ReuseSocket are honoured after the last byte; the Windows-only flags are accepted and ignored.

use super::socket::{Socket, CLASS_NAME};
use super::transmit_file_options as tfo;
use crate::op::{Completion, Outcome, Value};
use crate::engine::signals::SigpipeGuard;
use crate::engine::{Direction, Notify, OpId, Operation, Poll};
use crate::error::{code, errno, msg, Error, Result};
use crate::stream::ConstBuf;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// sendfile(2) moves at most this much per call.
const MAX_SENDFILE_CHUNK: usize = 0x7fff_f000;

/// Reports bytes sent so far (pre + file + post).
pub type Progress = Arc<dyn Fn(i64) + Send + Sync>;

/// Opens `name` for sending, with .NET's exceptions for what can go wrong.
pub fn open(name: &str) -> Result<File> {
    let not_found = |status, text: String| Error::new(status, text).with(|fail| fail.errno = libc::ENOENT);
    match File::open(name) {
        Ok(f) => {
            if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                return Err(Error::new(code::UNAUTHORIZED_ACCESS, format!("Access to the path '{name}' is denied.")));
            }
            Ok(f)
        }
        Err(e) => match e.raw_os_error().unwrap_or(0) {
            libc::ENOENT | libc::ENOTDIR => {
                let dir = Path::new(name).parent().filter(|p| !p.as_os_str().is_empty());
                if dir.is_some_and(|d| !d.is_dir()) {
                    Err(not_found(code::DIRECTORY_NOT_FOUND, format!("Could not find a part of the path '{name}'.")))
                } else {
                    Err(not_found(code::FILE_NOT_FOUND, format!("Could not find file '{name}'.")))
                }
            }
            libc::EACCES | libc::EPERM => {
                let text = format!("Access to the path '{name}' is denied.");
                Err(Error::new(code::UNAUTHORIZED_ACCESS, text).with(|fail| fail.errno = libc::EACCES))
            }
            err => Err(Error::new(code::IO, crate::error::strerror(err)).with(|fail| fail.errno = err)),
        },
    }
}

/// Where a transfer is.
enum Phase {
    Pre(usize),
    File { offset: i64, end: i64 },
    Post(usize),
}

struct Transfer {
    pre: ConstBuf,
    file: Option<File>,
    post: ConstBuf,
    phase: Phase,
    sent: Arc<AtomicI64>,
    progress: Option<Notify>,
}

impl Operation for Transfer {
    fn progress(&self) -> Option<Notify> {
        self.progress.clone()
    }

    /// Writes as much as the socket takes; Pending on EAGAIN.
    fn attempt(&mut self, fd: RawFd) -> Poll {
        loop {
            let step = match self.phase {
                Phase::Pre(done) if done < self.pre.len => send_some(fd, self.pre, done),
                Phase::Pre(_) => {
                    self.phase = match &self.file {
                        Some(f) => match f.metadata() {
                            Ok(m) => Phase::File { offset: 0, end: m.len() as i64 },
                            Err(e) => return Poll::Ready(Err(Error::socket(e.raw_os_error().unwrap_or(libc::EIO)))),
                        },
                        None => Phase::Post(0),
                    };
                    continue;
                }
                Phase::File { offset, end } if offset < end => {
                    let file = self.file.as_ref().expect("a file phase has a file");
                    match sendfile_some(fd, file.as_raw_fd(), offset, end) {
                        Ok(0) => {
                            // EOF before the length taken at the start: the file shrank.
                            self.phase = Phase::Post(0);
                            continue;
                        }
                        other => other,
                    }
                }
                Phase::File { .. } => {
                    self.phase = Phase::Post(0);
                    continue;
                }
                Phase::Post(done) if done < self.post.len => send_some(fd, self.post, done),
                Phase::Post(_) => return Poll::Ready(Ok(Value::Bytes(self.sent.load(Ordering::Relaxed) as usize))),
            };
            match step {
                Ok(n) => {
                    self.sent.fetch_add(n as i64, Ordering::Relaxed);
                    match &mut self.phase {
                        Phase::Pre(done) | Phase::Post(done) => *done += n,
                        Phase::File { offset, .. } => *offset += n as i64,
                    }
                }
                Err(e) if e.errno == libc::EAGAIN => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

fn send_some(fd: RawFd, buf: ConstBuf, done: usize) -> Result<usize> {
    loop {
        // SAFETY: the caller keeps the buffer valid until completion (the Begin contract).
        let r = unsafe { libc::send(fd, buf.ptr.add(done) as *const libc::c_void, buf.len - done, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(r as usize);
        }
        match errno() {
            libc::EINTR => continue,
            e => return Err(Error::socket(e)),
        }
    }
}

fn sendfile_some(out: RawFd, file: RawFd, offset: i64, end: i64) -> Result<usize> {
    let count = ((end - offset) as u64).min(MAX_SENDFILE_CHUNK as u64) as usize;
    let _guard = SigpipeGuard::new();
    loop {
        let mut off: libc::off_t = offset;
        // SAFETY: both fds are open; the offset is ours, the file position is not used.
        let r = unsafe { libc::sendfile(out, file, &mut off, count) };
        if r >= 0 {
            return Ok(r as usize);
        }
        match errno() {
            libc::EINTR => continue,
            e => return Err(Error::socket(e)),
        }
    }
}

impl Socket {
    /// The checks BeginSendFile makes before it opens the file, in .NET's order.
    pub fn check_send_file(&self, flags: i32) -> Result<()> {
        if self.is_closed() {
            return Err(Error::disposed(CLASS_NAME));
        }
        if !self.connected() {
            return Err(Error::not_supported(msg::NOT_CONNECTED));
        }
        if flags & !tfo::ALL != 0 {
            return Err(Error::argument("The TransmitFileOptions value is not valid."));
        }
        Ok(())
    }

    /// BeginSendFile after its Begin-time checks: `file` is already open (None = buffers only).
    pub fn begin_send_file(
        self: &Arc<Self>,
        file: Option<File>,
        pre: ConstBuf,
        post: ConstBuf,
        flags: i32,
        progress: Option<Progress>,
        done: Completion,
    ) -> Result<Option<OpId>> {
        self.check_send_file(flags)?;
        let sent = Arc::new(AtomicI64::new(0));
        let notify = progress.map(|report| {
            let sent = sent.clone();
            let last = AtomicI64::new(-1);
            Arc::new(move || {
                let now = sent.load(Ordering::Relaxed);
                if last.swap(now, Ordering::Relaxed) != now {
                    report(now);
                }
            }) as Notify
        });
        let transfer = Transfer { pre, file, post, phase: Phase::Pre(0), sent, progress: notify };
        let this = self.clone();
        let finish = Completion::wrapping(done, move |outcome: Outcome, done| {
            let outcome = match outcome {
                Ok(v) if flags & (tfo::DISCONNECT | tfo::REUSE_SOCKET) != 0 => {
                    this.disconnect(flags & tfo::REUSE_SOCKET != 0).map(|_| v)
                }
                other => other,
            };
            if let Err(e) = &outcome {
                this.note_error(e);
            }
            done.complete(outcome)
        });
        Ok(self.core.submit(Direction::Write, transfer, finish))
    }

    /// Socket.SendFile: the same transfer, driven by the caller, honouring SendTimeout.
    pub fn send_file(self: &Arc<Self>, file: Option<File>, pre: ConstBuf, post: ConstBuf, flags: i32) -> Result<()> {
        let timeout = self.timeout(true)?;
        super::sync_op::run(&self.core, Direction::Write, timeout, |done| {
            self.begin_send_file(file, pre, post, flags, None, done)
        })
        .map(drop)
    }
}
