//! tls_framer: the record framer under SslStream (`Framer` in src/tls/engine.rs), which decides
//! whether the end of the inner stream falls between TLS records (a clean end) or inside one
//! (truncation). The input's first byte chooses how the rest is cut into pieces; after every piece
//! `at_boundary` must agree with a reference that walks the records of everything fed so far.

use apmnet::tls::parsers::Framer;

/// Whether `stream` ends exactly where a record (5-byte header, then as many bytes as its
/// big-endian length at offset 3 says) ends.
fn ends_between_records(stream: &[u8]) -> bool {
    let mut pos = 0usize;
    loop {
        if pos == stream.len() {
            return true;
        }
        if stream.len() - pos < 5 {
            return false;
        }
        pos += 5 + u16::from_be_bytes([stream[pos + 3], stream[pos + 4]]) as usize;
        if pos > stream.len() {
            return false;
        }
    }
}

pub fn run(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else { return };
    let mut framer = Framer::default();
    assert!(framer.at_boundary(), "a new framer is between records");
    // cut 0: everything at once; otherwise pieces of 1..=cut bytes from a xorshift sequence.
    let mut x = (cut as u32) | 0x9e37_0000;
    let mut fed = 0usize;
    while fed < stream.len() {
        let n = if cut == 0 {
            stream.len()
        } else {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            1 + (x as usize % cut as usize)
        };
        let n = n.min(stream.len() - fed);
        framer.feed(&stream[fed..fed + n]);
        fed += n;
        framer.feed(&[]);
        assert_eq!(
            framer.at_boundary(),
            ends_between_records(&stream[..fed]),
            "after {fed} of {} bytes (pieces of up to {cut})",
            stream.len()
        );
    }
}
