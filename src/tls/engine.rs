//! The sans-IO side of the TLS engine: OpenSSL reads ciphertext from and writes ciphertext to
//! these memory buffers, and the layered channel moves them to and from the inner stream.

use crate::stream::Stream;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// The in-memory transport under OpenSSL. Reading an empty buffer reports WouldBlock (OpenSSL's
/// WANT_READ): end of stream is decided by the SslStream, never by OpenSSL.
#[derive(Default)]
pub(crate) struct MemIo {
    rd: Vec<u8>,
    pos: usize,
    end: usize,
    /// Ciphertext produced since the last `take_output`.
    pub wr: Vec<u8>,
    /// While application data is sealed with nothing queued for the inner stream: that stream,
    /// which takes each record straight from OpenSSL's buffer until it cannot take a whole one.
    pub direct: Option<Arc<dyn Stream>>,
}

impl MemIo {
    /// Appends `n` bytes read into `buf`; returns a buffer for the next inner read (the old one
    /// when it had been consumed, so steady reading copies nothing).
    pub fn feed(&mut self, mut buf: Vec<u8>, n: usize) -> Vec<u8> {
        if self.pos == self.end {
            std::mem::swap(&mut self.rd, &mut buf);
            self.pos = 0;
            self.end = n;
        } else {
            // Compacted in place: the buffer keeps its length, which is what has been
            // initialized, so when it goes back as a spare it needs no zeroing again.
            self.rd.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            let need = self.end + n;
            if self.rd.len() < need {
                self.rd.resize(need, 0);
            }
            self.rd[self.end..need].copy_from_slice(&buf[..n]);
            self.end = need;
        }
        buf
    }

    /// The ciphertext written so far, replacing the buffer with `spare`.
    pub fn take_output(&mut self, spare: Vec<u8>) -> Vec<u8> {
        std::mem::replace(&mut self.wr, spare)
    }
}

impl Read for MemIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.end - self.pos);
        buf[..n].copy_from_slice(&self.rd[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for MemIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        if let (Some(inner), true) = (&self.direct, self.wr.is_empty()) {
            rest = &buf[inner.try_write_now(buf)..];
            if !rest.is_empty() {
                // Whatever follows queues behind what was not taken.
                self.direct = None;
            }
        }
        self.wr.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Follows TLS record boundaries in the ciphertext received, so that the end of the inner
/// stream can be told apart: between records it is a clean end, inside one it is truncation.
#[derive(Default)]
pub struct Framer {
    header: [u8; 5],
    have: usize,
    body_left: usize,
}

impl Framer {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
            } else {
                self.header[self.have] = data[0];
                self.have += 1;
                data = &data[1..];
                if self.have == 5 {
                    self.body_left = u16::from_be_bytes([self.header[3], self.header[4]]) as usize;
                    self.have = 0;
                }
            }
        }
    }

    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.body_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_follows_records_across_pieces() {
        let mut f = Framer::default();
        let record = [0x17, 3, 3, 0, 4, 1, 2, 3, 4];
        f.feed(&record[..3]);
        assert!(!f.at_boundary());
        f.feed(&record[3..7]);
        assert!(!f.at_boundary());
        f.feed(&record[7..]);
        assert!(f.at_boundary());
    }

    #[test]
    fn memio_swaps_consumed_buffers_and_appends_otherwise() {
        let mut m = MemIo::default();
        let spare = m.feed(vec![1, 2, 3, 0, 0], 3);
        assert!(spare.is_empty());
        let mut two = [0u8; 2];
        assert_eq!(m.read(&mut two).unwrap(), 2);
        let _ = m.feed(vec![4, 5, 0], 2);
        let mut rest = [0u8; 8];
        assert_eq!(m.read(&mut rest).unwrap(), 3);
        assert_eq!(&rest[..3], &[3, 4, 5]);
        assert_eq!(m.read(&mut rest).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // Consumed: the next buffer takes its place, and the old one comes back at its full
        // length (what was initialized), not cut to what it held, so it needs no zeroing.
        let spare = m.feed(vec![6, 0, 0], 1);
        assert_eq!(spare.len(), 5);
        assert_eq!(m.read(&mut rest).unwrap(), 1);
    }

    /// An inner stream that takes at most `room` bytes at once, in all.
    struct Taker {
        room: parking_lot::Mutex<usize>,
        got: parking_lot::Mutex<Vec<u8>>,
    }

    impl Stream for Taker {
        fn can_read(&self) -> bool {
            true
        }
        fn can_write(&self) -> bool {
            true
        }
        fn check(&self, _writing: bool) -> crate::error::Result<()> {
            Ok(())
        }
        fn begin_write(&self, _: crate::stream::ConstBuf, _: crate::op::Completion) -> crate::error::Result<()> {
            unreachable!()
        }
        fn begin_read(&self, _: crate::stream::MutBuf, _: crate::op::Completion) -> crate::error::Result<()> {
            unreachable!()
        }
        fn write(&self, _: crate::stream::ConstBuf) -> crate::error::Result<()> {
            unreachable!()
        }
        fn read(&self, _: crate::stream::MutBuf) -> crate::error::Result<usize> {
            unreachable!()
        }
        fn close(&self) -> crate::error::Result<()> {
            Ok(())
        }
        fn try_write_now(&self, buf: &[u8]) -> usize {
            let mut room = self.room.lock();
            let n = buf.len().min(*room);
            *room -= n;
            self.got.lock().extend_from_slice(&buf[..n]);
            n
        }
    }

    #[test]
    fn direct_output_goes_to_the_inner_stream_until_it_takes_less_and_then_queues_in_order() {
        let inner = Arc::new(Taker { room: parking_lot::Mutex::new(5), got: Default::default() });
        let mut m = MemIo { direct: Some(inner.clone()), ..MemIo::default() };
        assert_eq!(m.write(&[1, 2, 3]).unwrap(), 3);
        assert!(m.wr.is_empty(), "taken whole: nothing copied");
        assert_eq!(m.write(&[4, 5, 6, 7]).unwrap(), 4);
        *inner.room.lock() = 100;
        // Once a record is partly queued, the next queues behind it even with room again.
        assert_eq!(m.write(&[8, 9]).unwrap(), 2);
        assert_eq!(*inner.got.lock(), vec![1, 2, 3, 4, 5]);
        assert_eq!(m.wr, vec![6, 7, 8, 9]);
        assert!(m.direct.is_none());
    }
}
