//! The IDX format of the MNIST files: a magic number giving the element type
//! and the number of dimensions, the dimensions as big-endian u32, then the
//! data. Gzip-compressed files are recognised by their first two bytes.

use std::io::Read;

use super::DataError;

/// An IDX file of unsigned bytes.
#[derive(Clone, Debug)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

const UNSIGNED_BYTE: u8 = 0x08;

/// Parses IDX bytes (gzip or plain); `path` names the file in errors.
pub fn parse_idx(bytes: &[u8], path: &str) -> Result<Idx, DataError> {
    let invalid = |problem: String| DataError::Invalid { path: path.to_string(), problem };
    let plain;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| invalid(format!("is not a valid gzip file ({e}); download it again")))?;
        plain = out;
        &plain[..]
    } else {
        bytes
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[3] == 0 {
        let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(invalid(format!("is not an IDX file (it starts with {}, not 00 00 08 0N)", head.join(" "))));
    }
    if bytes[2] != UNSIGNED_BYTE {
        return Err(invalid(format!("holds IDX type 0x{:02x}; only unsigned bytes (0x08) are supported", bytes[2])));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(invalid(format!("is truncated: its header needs {header} bytes, the file has {}", bytes.len())));
    }
    let dims: Vec<usize> =
        (0..ndim).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let expected = dims.iter().product::<usize>();
    let found = bytes.len() - header;
    if found != expected {
        let what = if found < expected { "is truncated" } else { "has trailing bytes" };
        return Err(invalid(format!(
            "{what}: dimensions {dims:?} need {expected} data bytes, the file has {found}; download it again"
        )));
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}
