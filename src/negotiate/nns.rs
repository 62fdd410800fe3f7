//! [MS-NNS] framing, sans-I/O: pure functions over byte slices, so that the stream, the unit
//! tests and the fuzz targets share one parser.
//!
//! * Handshake frames: `id, 0x01, 0x00, len_hi, len_lo` then the token; the length is a 16-bit
//!   big-endian number (at most 65535). Ids: 0x16 HandshakeInProgress, 0x14 HandshakeDone,
//!   0x15 HandshakeError. The version bytes are not checked (as .NET's reader).
//! * HandshakeError payload: an 8-byte error code. .NET Framework and .NET Core <= 7 write it
//!   big-endian, .NET 8+ little-endian (sign-extended); both are read, .NET 8's is written.
//! * Data frames: a 32-bit little-endian length, then the mechanism's output. Writers cut the
//!   plaintext at 64512 bytes; readers reject `len <= 4` and `len > 65536` (.NET's limits).

use crate::error::{code, Error, Result};

pub(crate) const HANDSHAKE_IN_PROGRESS: u8 = 0x16;
pub(crate) const HANDSHAKE_DONE: u8 = 0x14;
pub(crate) const HANDSHAKE_ERROR: u8 = 0x15;
pub(crate) const HANDSHAKE_HEADER: usize = 5;
pub(crate) const MAX_HANDSHAKE_PAYLOAD: usize = 0xFFFF;
/// .NET's MaxWriteDataSize: plaintext per data frame.
pub(crate) const MAX_WRITE_DATA: usize = 63 * 1024;
/// .NET's MaxReadFrameSize.
pub(crate) const MAX_READ_FRAME: usize = 64 * 1024;
pub(crate) const DATA_HEADER: usize = 4;

/// ERROR_TRUST_FAILURE: the protection or impersonation level (or the extended protection
/// policy) was not met.
pub(crate) const ERROR_TRUST_FAILURE: u32 = 1790;

/// One handshake frame at the start of `input`: `Some((id, payload, frame length))`, or None
/// when more bytes are needed.
pub fn parse_handshake_frame(input: &[u8]) -> Option<(u8, &[u8], usize)> {
    if input.len() < HANDSHAKE_HEADER {
        return None;
    }
    let len = u16::from_be_bytes([input[3], input[4]]) as usize;
    let end = HANDSHAKE_HEADER + len;
    if input.len() < end {
        return None;
    }
    Some((input[0], &input[HANDSHAKE_HEADER..end], end))
}

/// net_frame_max_size.
pub fn payload_too_big(len: usize) -> Error {
    Error::argument(format!("The payload size is limited to {MAX_HANDSHAKE_PAYLOAD}, attempted set it to {len}."))
}

/// Appends a handshake frame; a payload over 65535 bytes is .NET's ArgumentException.
pub fn encode_handshake_frame(id: u8, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if payload.len() > MAX_HANDSHAKE_PAYLOAD {
        return Err(payload_too_big(payload.len()));
    }
    let len = (payload.len() as u16).to_be_bytes();
    out.extend_from_slice(&[id, 1, 0, len[0], len[1]]);
    out.extend_from_slice(payload);
    Ok(())
}

/// The error code of a HandshakeError payload, in either byte order; None when the payload is
/// shorter than 8 bytes (.NET: "failed on the remote side").
pub fn decode_error_code(payload: &[u8]) -> Option<u32> {
    let b: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    if b[..4] == [0, 0, 0, 0] {
        // Big-endian: .NET Framework, .NET Core <= 7.
        return Some(u32::from_be_bytes([b[4], b[5], b[6], b[7]]));
    }
    // Little-endian: .NET 8+ (the high half is the sign extension, or garbage we ignore).
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The HandshakeError payload as .NET 8 writes it: the code as a sign-extended little-endian
/// 64-bit integer.
pub fn encode_error_code(code: u32) -> [u8; 8] {
    (code as i32 as i64).to_le_bytes()
}

/// net_frame_read_size.
pub(crate) const FRAME_SIZE: &str = "Cannot determine the frame size or a corrupted frame was received.";

/// The payload length of the data frame at the start of `input`: Ok(None) when fewer than 4
/// bytes are there, Err for a length .NET rejects (`<= 4` or `> 65536`).
pub fn parse_data_header(input: &[u8]) -> Result<Option<usize>> {
    let Some(h) = input.get(..DATA_HEADER) else { return Ok(None) };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len <= 4 || len > MAX_READ_FRAME {
        return Err(Error::new(code::IO, FRAME_SIZE));
    }
    Ok(Some(len))
}

/// One whole data frame at the start of `input`: `Some((payload, frame length))`, None when more
/// bytes are needed.
pub fn parse_data_frame(input: &[u8]) -> Result<Option<(&[u8], usize)>> {
    let Some(len) = parse_data_header(input)? else { return Ok(None) };
    let end = DATA_HEADER + len;
    if input.len() < end {
        return Ok(None);
    }
    Ok(Some((&input[DATA_HEADER..end], end)))
}

/// Appends the header of a data frame whose payload is `len` bytes.
pub fn encode_data_header(len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_frames_round_trip_with_a_big_endian_length() {
        let mut out = Vec::new();
        encode_handshake_frame(HANDSHAKE_IN_PROGRESS, &[7; 300], &mut out).unwrap();
        assert_eq!(&out[..5], &[0x16, 1, 0, 0x01, 0x2c]);
        let (id, payload, n) = parse_handshake_frame(&out).unwrap();
        assert_eq!((id, payload.len(), n), (0x16, 300, 305));
        assert!(parse_handshake_frame(&out[..304]).is_none());
        assert!(parse_handshake_frame(&out[..4]).is_none());
        let mut empty = Vec::new();
        encode_handshake_frame(HANDSHAKE_DONE, &[], &mut empty).unwrap();
        assert_eq!(empty, [0x14, 1, 0, 0, 0]);
        assert_eq!(parse_handshake_frame(&empty).unwrap().2, 5);
    }

    #[test]
    fn a_handshake_payload_over_65535_is_refused() {
        let mut out = Vec::new();
        encode_handshake_frame(HANDSHAKE_IN_PROGRESS, &vec![0; 65535], &mut out).unwrap();
        let e = encode_handshake_frame(HANDSHAKE_IN_PROGRESS, &vec![0; 65536], &mut Vec::new()).unwrap_err();
        assert_eq!(e.status, code::ARGUMENT);
        assert_eq!(e.message, "The payload size is limited to 65535, attempted set it to 65536.");
    }

    #[test]
    fn error_codes_are_read_in_both_byte_orders_and_written_as_dotnet_8() {
        // .NET 8.0.4 (seen): SEC_E_INTERNAL_ERROR little-endian, sign-extended.
        assert_eq!(decode_error_code(&[0x04, 0x03, 0x09, 0x80, 0xff, 0xff, 0xff, 0xff]), Some(0x80090304));
        // .NET Core 3.1 (seen) and the Framework: big-endian.
        assert_eq!(decode_error_code(&[0, 0, 0, 0, 0x80, 0x00, 0x40, 0x05]), Some(0x80004005));
        assert_eq!(decode_error_code(&[0, 0, 0, 0, 0x80, 0x09, 0x03, 0x0c]), Some(0x8009030C));
        assert_eq!(decode_error_code(&[0, 0, 0, 0, 0, 0, 0x06, 0xfe]), Some(ERROR_TRUST_FAILURE));
        assert_eq!(decode_error_code(&encode_error_code(ERROR_TRUST_FAILURE)), Some(ERROR_TRUST_FAILURE));
        assert_eq!(encode_error_code(0x80090304), [0x04, 0x03, 0x09, 0x80, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_error_code(&encode_error_code(0x8009030C)), Some(0x8009030C));
        assert_eq!(decode_error_code(&[1, 2, 3]), None);
        assert_eq!(decode_error_code(&[]), None);
    }

    #[test]
    fn data_frames_reject_what_dotnet_rejects() {
        assert!(parse_data_header(&[1, 2, 3]).unwrap().is_none());
        for bad in [0u32, 1, 4, 65537, u32::MAX] {
            let e = parse_data_header(&bad.to_le_bytes()).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (code::IO, FRAME_SIZE));
        }
        assert_eq!(parse_data_header(&5u32.to_le_bytes()).unwrap(), Some(5));
        assert_eq!(parse_data_header(&65536u32.to_le_bytes()).unwrap(), Some(65536));
        let mut f = Vec::new();
        encode_data_header(6, &mut f);
        f.extend_from_slice(b"abcdef");
        assert_eq!(parse_data_frame(&f).unwrap(), Some((&b"abcdef"[..], 10)));
        assert_eq!(parse_data_frame(&f[..9]).unwrap(), None);
    }
}
