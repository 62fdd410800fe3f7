//! The driver against a toy protocol over in-memory streams, so that what the channel promises
//! (order, flat stacks, one reader and one writer, poison, close, offloaded steps) is checked
//! without OpenSSL or sockets in the way.
//!
//! * `Toy`: a scripted handshake (send bytes, expect bytes, suspend, offload, fail) and data
//!   frames `[length: u16 BE][plaintext]` of at most `CHUNK` = 2 bytes. A frame of length 0 is a
//!   ping the reader answers with a pong frame (a reply written while reading, like a TLS key
//!   update); length 0xFFFF ends the stream (close_notify); 0xFFFE is a corrupt frame.
//! * `Mem`: one end of an in-memory pipe implementing `Stream`. Its writes complete at once
//!   (inline, on the writer's thread, which also completes the peer's parked read) unless it is
//!   told to hold them until the test releases them one by one.

use super::{Channel, Mode, Opened, Protocol, Step};
use crate::error::{code, Error, Result};
use crate::op::{wait_for, Completion, Outcome, Value};
use crate::stream::{ConstBuf, MutBuf, Stream};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

// ------------------------------------------------------------------------------------------
// The toy protocol

const PING: [u8; 2] = [0, 0];
const END: [u8; 2] = [0xFF, 0xFF];
const CORRUPT: [u8; 2] = [0xFF, 0xFE];

#[derive(Clone)]
enum Act {
    Send(Vec<u8>),
    Expect(Vec<u8>),
    /// A user callback: the step's work runs on the current thread.
    Suspend,
    /// A user callback that rejects the peer.
    Reject,
    /// A blocking call: the step's work runs where it may block.
    Offload,
    /// A blocking call that panics.
    OffloadPanics,
    /// A blocking call that waits until the test lets it go.
    OffloadWaits(Arc<(Mutex<bool>, Condvar)>),
}

fn frame(plain: &[u8]) -> Vec<u8> {
    let mut f = (plain.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(plain);
    f
}

struct Toy {
    script: VecDeque<Act>,
    input: Vec<u8>,
    output: Vec<u8>,
    ended: bool,
    /// The threads suspended and offloaded steps ran on, in order.
    ran_on: Arc<Mutex<Vec<String>>>,
    disposed: Arc<AtomicBool>,
}

impl Toy {
    fn new(script: &[Act]) -> Toy {
        Toy {
            script: script.iter().cloned().collect(),
            input: Vec::new(),
            output: Vec::new(),
            ended: false,
            ran_on: Arc::default(),
            disposed: Arc::default(),
        }
    }
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("unnamed").to_string()
}

impl Protocol for Toy {
    const CLASS_NAME: &'static str = "Toy";
    const CHUNK: usize = 2;
    type Resume = String;

    fn feed(&mut self, buf: Vec<u8>, n: usize) -> Vec<u8> {
        self.input.extend_from_slice(&buf[..n]);
        buf
    }

    fn take_output(&mut self, spare: Vec<u8>) -> Vec<u8> {
        std::mem::replace(&mut self.output, spare)
    }

    fn handshake(&mut self, eof: bool) -> Result<Step<String>> {
        loop {
            let Some(act) = self.script.pop_front() else { return Ok(Step::Done) };
            match act {
                Act::Send(bytes) => self.output.extend_from_slice(&bytes),
                Act::Expect(bytes) => {
                    if self.input.len() < bytes.len() {
                        self.script.push_front(Act::Expect(bytes));
                        if eof {
                            return Err(Error::new(code::AUTHENTICATION, "toy: the peer went away"));
                        }
                        return Ok(Step::NeedInput);
                    }
                    if self.input[..bytes.len()] != bytes[..] {
                        self.output.extend_from_slice(b"ALERT");
                        return Err(Error::new(code::AUTHENTICATION, "toy: unexpected handshake bytes"));
                    }
                    self.input.drain(..bytes.len());
                }
                Act::Suspend => return Ok(Step::Suspend(Box::new(thread_name))),
                Act::Reject => return Ok(Step::Suspend(Box::new(|| "reject".to_string()))),
                Act::Offload => return Ok(Step::NeedOffload(Box::new(thread_name))),
                Act::OffloadPanics => return Ok(Step::NeedOffload(Box::new(|| panic!("toy: GSSAPI fell over")))),
                Act::OffloadWaits(gate) => {
                    return Ok(Step::NeedOffload(Box::new(move || {
                        let mut open = gate.0.lock();
                        while !*open {
                            gate.1.wait(&mut open);
                        }
                        thread_name()
                    })))
                }
            }
        }
    }

    fn resume(&mut self, answer: String) -> Result<()> {
        if answer == "reject" {
            return Err(Error::new(code::AUTHENTICATION, "toy: rejected by the callback"));
        }
        self.ran_on.lock().push(answer);
        Ok(())
    }

    fn handshake_done(&mut self) -> Result<()> {
        Ok(())
    }

    fn seal(&mut self, plain: &[u8], _direct: Option<&Arc<dyn Stream>>) -> Result<()> {
        assert!(plain.len() <= Self::CHUNK);
        self.output.extend_from_slice(&frame(plain));
        Ok(())
    }

    fn open(&mut self, plain: &mut [u8]) -> Result<Opened> {
        loop {
            if self.ended {
                return Ok(Opened::End);
            }
            if self.input.len() < 2 {
                return Ok(Opened::NeedInput);
            }
            let head = [self.input[0], self.input[1]];
            match head {
                PING => {
                    self.input.drain(..2);
                    self.output.extend_from_slice(&frame(b"pong"));
                }
                END => {
                    self.input.drain(..2);
                    self.ended = true;
                }
                CORRUPT => return Err(Error::new(code::IO, "toy: corrupt frame")),
                _ => {
                    let len = u16::from_be_bytes(head) as usize;
                    if self.input.len() < 2 + len {
                        return Ok(Opened::NeedInput);
                    }
                    // A frame larger than the buffer is returned in pieces: the rest stays as a
                    // shorter frame.
                    let n = len.min(plain.len());
                    plain[..n].copy_from_slice(&self.input[2..2 + n]);
                    self.input.drain(..2 + n);
                    if n < len {
                        let rest = ((len - n) as u16).to_be_bytes();
                        self.input.splice(0..0, rest);
                    }
                    return Ok(Opened::Data(n));
                }
            }
        }
    }

    fn input_ended(&self) -> Result<()> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(Error::new(code::IO, "toy: truncated"))
        }
    }

    fn shutdown(&mut self) {
        self.output.extend_from_slice(&END);
    }

    fn dispose(&mut self) {
        self.disposed.store(true, Ordering::SeqCst);
    }

    fn inner_failed(e: Error, _writing: bool) -> Error {
        e
    }
}

// ------------------------------------------------------------------------------------------
// The in-memory inner stream

#[derive(Default)]
struct Wire {
    data: VecDeque<u8>,
    eof: bool,
    parked: Option<(MutBuf, Completion)>,
}

type Shared = Arc<(Mutex<Wire>, Condvar)>;

pub(crate) struct Mem {
    rx: Shared,
    tx: Shared,
    /// At most this many bytes per read (1: every byte is its own inner read).
    max_read: usize,
    hold_writes: bool,
    held: Mutex<VecDeque<(Vec<u8>, Completion)>>,
    /// Every write, as the channel issued it.
    pub(crate) writes: Mutex<Vec<Vec<u8>>>,
    /// Writes issued while another was still held: the pump must never do that.
    overlapping: Mutex<usize>,
    /// The size of every read's buffer, as the channel asked.
    pub(crate) read_sizes: Mutex<Vec<usize>>,
    closed: AtomicBool,
}

/// Two connected ends.
pub(crate) fn pipe(max_read: usize, hold_writes: bool) -> (Arc<Mem>, Arc<Mem>) {
    let a: Shared = Arc::default();
    let b: Shared = Arc::default();
    let end = |rx: &Shared, tx: &Shared, max_read, hold_writes| {
        Arc::new(Mem {
            rx: rx.clone(),
            tx: tx.clone(),
            max_read,
            hold_writes,
            held: Mutex::default(),
            writes: Mutex::default(),
            overlapping: Mutex::new(0),
            read_sizes: Mutex::default(),
            closed: AtomicBool::new(false),
        })
    };
    (end(&a, &b, max_read, hold_writes), end(&b, &a, usize::MAX, false))
}

/// Appends to a wire and completes the read parked on it, outside the wire's lock.
fn deliver(wire: &Shared, bytes: &[u8], eof: bool) {
    let done = {
        let mut w = wire.0.lock();
        w.data.extend(bytes);
        w.eof |= eof;
        wire.1.notify_all();
        w.parked.take().map(|(buf, done)| (take(&mut w, buf, usize::MAX), done))
    };
    if let Some((n, done)) = done {
        done.complete(Ok(Value::Bytes(n)));
    }
}

fn take(w: &mut Wire, buf: MutBuf, max: usize) -> usize {
    let n = w.data.len().min(buf.len).min(max);
    for (i, b) in w.data.drain(..n).enumerate() {
        // SAFETY: the Begin contract keeps the reader's buffer valid until completion.
        unsafe { *buf.ptr.add(i) = b };
    }
    n
}

impl Mem {
    /// Lets the oldest held write through.
    fn release(&self) -> bool {
        let Some((bytes, done)) = self.held.lock().pop_front() else { return false };
        deliver(&self.tx, &bytes, false);
        done.complete(Ok(Value::Bytes(bytes.len())));
        true
    }

    fn release_all(&self) {
        while self.release() {}
    }

    /// What the peer has received and not read yet.
    pub(crate) fn received(&self) -> Vec<u8> {
        self.rx.0.lock().data.drain(..).collect()
    }

    pub(crate) fn send(&self, bytes: &[u8]) {
        deliver(&self.tx, bytes, false);
    }

    pub(crate) fn hang_up(&self) {
        deliver(&self.tx, &[], true);
    }
}

impl Stream for Mem {
    fn can_read(&self) -> bool {
        !self.closed.load(Ordering::SeqCst)
    }

    fn can_write(&self) -> bool {
        !self.closed.load(Ordering::SeqCst)
    }

    fn check(&self, _writing: bool) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::disposed("Mem"));
        }
        Ok(())
    }

    fn begin_write(&self, buf: ConstBuf, done: Completion) -> Result<()> {
        self.check(true)?;
        // SAFETY: the Begin contract keeps the buffer valid until completion.
        let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
        self.writes.lock().push(bytes.clone());
        if self.hold_writes {
            let mut held = self.held.lock();
            if !held.is_empty() {
                *self.overlapping.lock() += 1;
            }
            held.push_back((bytes, done));
            return Ok(());
        }
        deliver(&self.tx, &bytes, false);
        done.complete(Ok(Value::Bytes(bytes.len())));
        Ok(())
    }

    fn begin_read(&self, buf: MutBuf, done: Completion) -> Result<()> {
        self.check(false)?;
        self.read_sizes.lock().push(buf.len);
        let n = {
            let mut w = self.rx.0.lock();
            if w.data.is_empty() && !w.eof {
                w.parked = Some((buf, done));
                return Ok(());
            }
            take(&mut w, buf, self.max_read)
        };
        done.complete(Ok(Value::Bytes(n)));
        Ok(())
    }

    fn write(&self, buf: ConstBuf) -> Result<()> {
        wait_for(|done| self.begin_write(buf, done)).map(drop)
    }

    fn read(&self, buf: MutBuf) -> Result<usize> {
        self.check(false)?;
        self.read_sizes.lock().push(buf.len);
        let mut w = self.rx.0.lock();
        while w.data.is_empty() && !w.eof {
            self.rx.1.wait(&mut w);
        }
        Ok(take(&mut w, buf, self.max_read))
    }

    fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        let parked = self.rx.0.lock().parked.take();
        if let Some((_, done)) = parked {
            done.complete(Err(Error::aborted()));
        }
        for (_, done) in self.held.lock().drain(..) {
            done.complete(Err(Error::aborted()));
        }
        deliver(&self.tx, &[], true);
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Helpers

/// Starts an operation (it must start) with a completion the test can wait for.
fn begin(start: impl FnOnce(Completion) -> Result<()>) -> mpsc::Receiver<Outcome> {
    let (tx, rx) = mpsc::channel();
    start(Completion::new(move |o| {
        let _ = tx.send(o);
    }))
    .unwrap();
    rx
}

fn begin_handshake(chan: &Arc<Channel<Toy>>) -> mpsc::Receiver<Outcome> {
    begin(|done| chan.begin_handshake(done, Mode::Async, |_| Ok(())))
}

fn wait(rx: &mpsc::Receiver<Outcome>) -> Outcome {
    rx.recv_timeout(Duration::from_secs(10)).expect("the operation completed")
}

fn pending(rx: &mpsc::Receiver<Outcome>) -> bool {
    matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty))
}

/// The error of an operation that must have failed (`Value` has no Debug for `unwrap_err`).
fn failed(o: Outcome) -> Error {
    match o {
        Ok(_) => panic!("the operation succeeded"),
        Err(e) => e,
    }
}

fn status(o: Outcome) -> crate::error::Status {
    match o {
        Ok(_) => code::OK,
        Err(e) => e.status,
    }
}

fn cbuf(b: &[u8]) -> ConstBuf {
    ConstBuf { ptr: b.as_ptr(), len: b.len() }
}

fn mbuf(b: &mut [u8]) -> MutBuf {
    MutBuf { ptr: b.as_mut_ptr(), len: b.len() }
}

/// A toy channel over one end of a pipe, authenticated with a one-byte exchange.
fn authenticated(max_read: usize, hold_writes: bool) -> (Arc<Channel<Toy>>, Arc<Mem>, Arc<Mem>) {
    let (inner, peer) = pipe(max_read, hold_writes);
    let chan =
        Channel::over(inner.clone(), false, Toy::new(&[Act::Send(b"H".to_vec()), Act::Expect(b"h".to_vec())])).unwrap();
    peer.send(b"h");
    let rx = begin_handshake(&chan);
    inner.release_all();
    assert_eq!(status(wait(&rx)), code::OK);
    assert_eq!(peer.received(), b"H");
    inner.writes.lock().clear();
    (chan, inner, peer)
}

// ------------------------------------------------------------------------------------------
// Tests

#[test]
fn segments_go_out_one_at_a_time_in_the_protocols_order() {
    let (chan, inner, peer) = authenticated(usize::MAX, true);
    let data = *b"abcdef";
    let wrx = begin(|done| chan.begin_write(cbuf(&data), done));
    // A read answers a ping while the write's first chunk is still on the wire: the pong goes
    // behind that chunk and ahead of the chunks not yet sealed.
    let mut buf = [0u8; 16];
    let rrx = begin(|done| chan.begin_read(mbuf(&mut buf), done));
    peer.send(&PING);
    let srx = begin(|done| chan.begin_shutdown(done, Mode::Async));
    assert!(pending(&wrx) && pending(&srx) && pending(&rrx));
    inner.release_all();
    assert_eq!(wait(&wrx).unwrap().bytes(), 6);
    assert_eq!(status(wait(&srx)), code::OK);
    let expected = [frame(b"ab"), frame(b"pong"), frame(b"cd"), frame(b"ef"), END.to_vec()];
    assert_eq!(*inner.writes.lock(), expected);
    assert_eq!(peer.received(), expected.concat());
    assert_eq!(*inner.overlapping.lock(), 0);
    // The read is still waiting for data; the end of the peer's side ends it.
    peer.send(&END);
    assert_eq!(wait(&rrx).unwrap().bytes(), 0);
}

#[test]
fn inner_reads_start_at_16_kib_and_double_while_they_fill_up_to_64() {
    let (chan, inner, peer) = authenticated(usize::MAX, false);
    // The handshake's one byte did not fill its 16-KiB read.
    assert_eq!(*inner.read_sizes.lock(), [16 * 1024]);
    // 200 KiB of frames, all there at once: every inner read fills its buffer.
    const PLAIN: usize = 100 * 1024;
    peer.send(&(0..PLAIN / 2).flat_map(|_| frame(b"xy")).collect::<Vec<u8>>());
    let mut buf = vec![0u8; PLAIN];
    let mut got = 0;
    while got < PLAIN {
        got += wait_for(|done| chan.begin_read(mbuf(&mut buf[got..]), done)).unwrap().bytes();
    }
    let sizes = inner.read_sizes.lock().clone();
    assert_eq!(sizes[..4], [16 * 1024, 16 * 1024, 32 * 1024, 64 * 1024]);
    assert!(sizes[4..].iter().all(|&n| n == 64 * 1024), "{sizes:?}");
}

#[test]
fn ten_thousand_inline_completions_keep_the_stack_flat() {
    // On a small stack, recursing once per completion would overflow long before 10000.
    let t = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            const N: usize = 10_000;
            // Every inner read returns one byte, inline: the handshake's 10000 bytes are 10000
            // inline completions, and so is a read of a 10000-byte frame.
            let (inner, peer) = pipe(1, false);
            let chan = Channel::over(inner, false, Toy::new(&[Act::Expect(vec![7; N])])).unwrap();
            peer.send(&vec![7; N]);
            wait_for(|done| chan.begin_handshake(done, Mode::Async, |_| Ok(()))).unwrap();
            // A 20000-byte write is 10000 two-byte segments, each written inline.
            let data = vec![1u8; 2 * N];
            assert_eq!(wait_for(|done| chan.begin_write(cbuf(&data), done)).unwrap().bytes(), 2 * N);
            assert_eq!(peer.received().len(), 4 * N);
            let mut big = vec![9u8; N];
            big.splice(0..0, (N as u16).to_be_bytes());
            peer.send(&big);
            let mut buf = vec![0u8; N];
            assert_eq!(wait_for(|done| chan.begin_read(mbuf(&mut buf), done)).unwrap().bytes(), N);
            assert!(buf.iter().all(|&b| b == 9));
        })
        .unwrap();
    t.join().unwrap();
}

#[test]
fn one_reader_and_one_writer_at_a_time() {
    let (chan, inner, peer) = authenticated(usize::MAX, true);
    let mut buf = [0u8; 4];
    let rrx = begin(|done| chan.begin_read(mbuf(&mut buf), done));
    let mut other = [0u8; 4];
    let e = chan.begin_read(mbuf(&mut other), Completion::new(|_| panic!("not started"))).unwrap_err();
    assert_eq!((e.status, e.message.as_str()), (code::NOT_SUPPORTED, super::msg::nested("BeginRead", "read").as_str()));
    let e = chan.read(mbuf(&mut other)).unwrap_err();
    assert_eq!(e.message, " The Read method cannot be called when another read operation is pending.");

    // A write goes on beside the pending read; a second one does not.
    let wrx = begin(|done| chan.begin_write(cbuf(b"xy"), done));
    let e = chan.begin_write(cbuf(b"zz"), Completion::new(|_| panic!("not started"))).unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str()),
        (code::NOT_SUPPORTED, super::msg::nested("BeginWrite", "write").as_str())
    );
    let e = chan.write(cbuf(b"zz")).unwrap_err();
    assert_eq!(e.message, " The Write method cannot be called when another write operation is pending.");
    inner.release_all();
    assert_eq!(wait(&wrx).unwrap().bytes(), 2);
    peer.send(&frame(b"ok"));
    assert_eq!(wait(&rrx).unwrap().bytes(), 2);
    assert_eq!(&buf[..2], b"ok");

    // Once they completed, the next ones start.
    chan.begin_write(cbuf(b"zz"), Completion::new(|_| {})).unwrap();
}

#[test]
fn a_failed_handshake_poisons_the_stream() {
    let (inner, peer) = pipe(usize::MAX, false);
    let chan = Channel::over(inner, false, Toy::new(&[Act::Expect(b"hello".to_vec())])).unwrap();
    peer.send(b"HELLO");
    let e = failed(wait_for(|done| chan.begin_handshake(done, Mode::Async, |_| Ok(()))));
    assert_eq!((e.status, e.message.as_str()), (code::AUTHENTICATION, "toy: unexpected handshake bytes"));
    // The protocol's output with its failure (its alert) still went to the peer.
    assert_eq!(peer.received(), b"ALERT");
    let same = |e: Error| (e.status, e.message.clone());
    let expected = (code::AUTHENTICATION, "toy: unexpected handshake bytes".to_string());
    let mut buf = [0u8; 4];
    assert_eq!(same(chan.begin_read(mbuf(&mut buf), Completion::new(|_| {})).unwrap_err()), expected);
    assert_eq!(same(chan.write(cbuf(b"x")).unwrap_err()), expected);
    assert_eq!(same(chan.check(false).unwrap_err()), expected);
    assert_eq!(same(chan.begin_handshake(Completion::new(|_| {}), Mode::Async, |_| Ok(())).unwrap_err()), expected);
    assert_eq!(same(chan.configure(|_| {}).unwrap_err()), expected);
    assert_eq!(same(chan.begin_shutdown(Completion::new(|_| {}), Mode::Async).unwrap_err()), expected);
    assert!(!chan.is_authenticated());
    chan.close().unwrap();
    assert_eq!(chan.check(false).unwrap_err().status, code::OBJECT_DISPOSED);
}

#[test]
fn a_suspended_step_that_rejects_fails_the_handshake() {
    for mode in [Mode::Async, Mode::Sync] {
        let (inner, peer) = pipe(usize::MAX, false);
        let chan = Channel::over(inner, false, Toy::new(&[Act::Send(b"1".to_vec()), Act::Reject])).unwrap();
        let e = failed(wait_for(|done| chan.begin_handshake(done, mode, |_| Ok(()))));
        assert_eq!(e.message, "toy: rejected by the callback");
        assert_eq!(chan.check(false).unwrap_err().message, "toy: rejected by the callback");
        assert_eq!(peer.received(), b"1");
    }
}

#[test]
fn the_end_of_input_mid_handshake_fails_it() {
    let (inner, peer) = pipe(usize::MAX, false);
    let chan = Channel::over(inner, false, Toy::new(&[Act::Expect(b"hello".to_vec())])).unwrap();
    peer.send(b"he");
    peer.hang_up();
    let e = failed(wait_for(|done| chan.begin_handshake(done, Mode::Sync, |_| Ok(()))));
    assert_eq!(e.message, "toy: the peer went away");
    assert_eq!(chan.check(false).unwrap_err().message, "toy: the peer went away");
}

#[test]
fn reads_tell_a_clean_end_from_truncation_and_report_protocol_errors() {
    let (chan, _inner, peer) = authenticated(usize::MAX, false);
    let mut buf = [0u8; 8];
    peer.send(&frame(b"ab")[..3]);
    peer.hang_up();
    let e = chan.read(mbuf(&mut buf)).unwrap_err();
    assert_eq!(e.message, "toy: truncated");

    let (chan, _inner, peer) = authenticated(usize::MAX, false);
    peer.send(&frame(b"ab"));
    peer.hang_up();
    assert_eq!(chan.read(mbuf(&mut buf)).unwrap(), 2);
    assert_eq!(chan.read(mbuf(&mut buf)).unwrap(), 0);

    // Plaintext before a failure is returned first; the failure is the next read's.
    let (chan, _inner, peer) = authenticated(usize::MAX, false);
    peer.send(&[frame(b"ab"), CORRUPT.to_vec()].concat());
    assert_eq!(chan.read(mbuf(&mut buf)).unwrap(), 2);
    assert_eq!(chan.read(mbuf(&mut buf)).unwrap_err().message, "toy: corrupt frame");
}

#[test]
fn close_completes_pending_operations_with_object_disposed() {
    let (chan, inner, _peer) = authenticated(usize::MAX, true);
    let mut buf = [0u8; 4];
    let rrx = begin(|done| chan.begin_read(mbuf(&mut buf), done));
    let wrx = begin(|done| chan.begin_write(cbuf(b"abcd"), done));
    let srx = begin(|done| chan.begin_shutdown(done, Mode::Async));
    assert!(pending(&rrx) && pending(&wrx) && pending(&srx));
    chan.close().unwrap();
    for rx in [&rrx, &wrx, &srx] {
        let e = failed(wait(rx));
        assert_eq!(
            (e.status, e.message.as_str()),
            (code::OBJECT_DISPOSED, "Cannot access a disposed object.\nObject name: 'Toy'.")
        );
    }
    assert!(inner.closed.load(Ordering::SeqCst));
    assert!(chan.protocol(|t| t.disposed.load(Ordering::SeqCst)));
    assert_eq!(chan.write(cbuf(b"x")).unwrap_err().status, code::OBJECT_DISPOSED);
    assert!(!chan.can_read() && !chan.can_write());

    // A handshake waiting for input completes too, and leave-open leaves the inner stream open.
    let (inner, _peer) = pipe(usize::MAX, false);
    let chan = Channel::over(inner.clone(), true, Toy::new(&[Act::Expect(b"h".to_vec())])).unwrap();
    let rx = begin_handshake(&chan);
    chan.close().unwrap();
    assert_eq!(status(wait(&rx)), code::OBJECT_DISPOSED);
    assert!(!inner.closed.load(Ordering::SeqCst));
    let e = chan.begin_handshake(Completion::new(|_| {}), Mode::Async, |_| Ok(())).unwrap_err();
    assert_eq!(e.status, code::OBJECT_DISPOSED);
}

#[test]
fn offloaded_steps_run_on_the_blocking_pool_and_resume_the_handshake() {
    let script = [
        Act::Send(b"1".to_vec()),
        Act::Offload,
        Act::Send(b"2".to_vec()),
        Act::Expect(b"ok".to_vec()),
        Act::Suspend,
        Act::Send(b"3".to_vec()),
    ];
    let (inner, peer) = pipe(usize::MAX, false);
    let toy = Toy::new(&script);
    let ran_on = toy.ran_on.clone();
    let chan = Channel::over(inner, false, toy).unwrap();
    let rx = begin_handshake(&chan);
    peer.send(b"ok");
    assert_eq!(status(wait(&rx)), code::OK);
    assert!(chan.is_authenticated());
    assert_eq!(peer.received(), b"123");
    // The blocking step ran on the pool; the suspended one on the thread the handshake was on
    // then (it went on on the pool, or on this thread when the "ok" arrived).
    let ran = ran_on.lock().clone();
    assert_eq!(ran.len(), 2);
    assert_eq!(ran[0], "apmnet-blocking");

    // The synchronous form runs it on the caller's thread, which is blocked in the call anyway.
    let (inner, peer) = pipe(usize::MAX, false);
    let toy = Toy::new(&script);
    let ran_on = toy.ran_on.clone();
    let chan = Channel::over(inner, false, toy).unwrap();
    peer.send(b"ok");
    std::thread::Builder::new()
        .name("sync-caller".into())
        .spawn(move || wait_for(|done| chan.begin_handshake(done, Mode::Sync, |_| Ok(()))).unwrap())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(*ran_on.lock(), ["sync-caller", "sync-caller"]);
    assert_eq!(peer.received(), b"123");
}

#[test]
fn close_during_an_offloaded_step_completes_the_handshake_at_once() {
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let (inner, _peer) = pipe(usize::MAX, false);
    let toy = Toy::new(&[Act::OffloadWaits(gate.clone()), Act::Send(b"late".to_vec())]);
    let ran_on = toy.ran_on.clone();
    let chan = Channel::over(inner.clone(), false, toy).unwrap();
    let rx = begin_handshake(&chan);
    assert!(pending(&rx));
    chan.close().unwrap();
    assert_eq!(status(wait(&rx)), code::OBJECT_DISPOSED);
    // The blocking call returns later; its answer is dropped and nothing more is written.
    *gate.0.lock() = true;
    gate.1.notify_all();
    std::thread::sleep(Duration::from_millis(50));
    assert!(ran_on.lock().is_empty());
    assert!(inner.writes.lock().is_empty());
}

#[test]
fn a_panicking_offloaded_step_fails_the_handshake() {
    for mode in [Mode::Async, Mode::Sync] {
        let (inner, _peer) = pipe(usize::MAX, false);
        let chan = Channel::over(inner, false, Toy::new(&[Act::OffloadPanics])).unwrap();
        let e = failed(wait_for(|done| chan.begin_handshake(done, mode, |_| Ok(()))));
        assert_eq!((e.status, e.message.as_str()), (code::INTERNAL, super::msg::OFFLOAD_PANICKED));
        assert_eq!(chan.check(false).unwrap_err().status, code::INTERNAL);
    }
}

#[test]
fn settings_change_only_before_authentication_and_the_inner_stream_must_read_and_write() {
    let (chan, _inner, _peer) = authenticated(usize::MAX, false);
    let e = chan.configure(|_| {}).unwrap_err();
    assert_eq!(e.message, super::msg::REAUTH);
    let e = chan.begin_handshake(Completion::new(|_| {}), Mode::Sync, |_| Ok(())).unwrap_err();
    assert_eq!(e.message, super::msg::REAUTH);

    let (inner, _peer) = pipe(usize::MAX, false);
    inner.closed.store(true, Ordering::SeqCst);
    let e = Channel::over(inner, false, Toy::new(&[])).err().unwrap();
    assert_eq!((e.status, e.message.as_str()), (code::ARGUMENT, super::msg::READ_WRITE_INNER));
}
