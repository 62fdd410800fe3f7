//! nns: the [MS-NNS] framing of NegotiateStream (src/negotiate/nns.rs), read as a peer sends it.
//! The whole input is taken as a run of handshake frames and, separately, as a run of data
//! frames, walked the way the stream's reader walks its buffer (one frame off the front at a
//! time). Every frame found must lie within the input where its header says, re-encode to the
//! bytes it came from, and, for data frames, have the length .NET accepts (5 to 65536); a
//! HandshakeError's code must read as the byte order its first half says, and .NET 8's encoding
//! of it must read back.

use apmnet::negotiate::nns::{
    decode_error_code, encode_data_header, encode_error_code, encode_handshake_frame, parse_data_frame,
    parse_data_header, parse_handshake_frame,
};

const HEADER: usize = 5;

fn handshake_frames(mut rest: &[u8]) {
    while let Some((id, payload, n)) = parse_handshake_frame(rest) {
        let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
        assert_eq!((n, payload.len()), (HEADER + len, len), "the header's length");
        assert!(n <= rest.len(), "a frame of {n} bytes in {}", rest.len());
        assert_eq!(payload.as_ptr(), rest[HEADER..].as_ptr(), "the payload follows the header");
        // Our encoding differs from the bytes read only in the version, which the reader ignores.
        let mut again = Vec::new();
        encode_handshake_frame(id, payload, &mut again).expect("a payload of at most 65535 bytes encodes");
        assert_eq!((&again[..1], &again[3..]), (&rest[..1], &rest[3..n]), "re-encoding frame {id:#04x}");
        error_code(payload);
        rest = &rest[n..];
    }
    // What is left is a frame not all there yet.
    assert!(rest.len() < HEADER || rest.len() < HEADER + u16::from_be_bytes([rest[3], rest[4]]) as usize);
}

fn error_code(payload: &[u8]) {
    let code = decode_error_code(payload);
    let Some(head) = payload.get(..8) else {
        assert_eq!(code, None, "a payload of {} bytes has no code", payload.len());
        return;
    };
    let expected = if head[..4] == [0; 4] {
        u32::from_be_bytes(head[4..8].try_into().unwrap())
    } else {
        u32::from_le_bytes(head[..4].try_into().unwrap())
    };
    assert_eq!(code, Some(expected), "the code of {head:02x?}");
    assert_eq!(decode_error_code(&encode_error_code(expected)), Some(expected), "the code as .NET 8 writes it");
}

fn data_frames(mut rest: &[u8]) {
    loop {
        let header = parse_data_header(rest);
        let frame = parse_data_frame(rest);
        let Some(h) = rest.get(..4) else {
            assert!(matches!((&header, &frame), (Ok(None), Ok(None))), "fewer than 4 bytes wait for more");
            return;
        };
        let len = u32::from_le_bytes(h.try_into().unwrap()) as u64;
        if !(5..=65536).contains(&len) {
            assert!(header.is_err() && frame.is_err(), "a data frame of {len} bytes is refused");
            return;
        }
        assert_eq!(header.expect("a length .NET accepts"), Some(len as usize));
        let Some((payload, n)) = frame.expect("a length .NET accepts") else {
            assert!((rest.len() as u64) < 4 + len, "a whole frame of {len} bytes in {}", rest.len());
            return;
        };
        assert_eq!((n as u64, payload.len() as u64), (4 + len, len));
        assert_eq!(payload.as_ptr(), rest[4..].as_ptr(), "the payload follows the header");
        let mut again = Vec::new();
        encode_data_header(payload.len(), &mut again);
        again.extend_from_slice(payload);
        assert_eq!(again, &rest[..n], "re-encoding a data frame");
        rest = &rest[n..];
    }
}

pub fn run(data: &[u8]) {
    handshake_frames(data);
    data_frames(data);
}
