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

/// The most data bytes one IDX file may declare (MNIST's largest holds 47 MB):
/// a header is checked against it before anything is read.
pub const MAX_IDX_BYTES: usize = 1 << 30;

/// Parses IDX bytes (gzip, possibly of several members, or plain); `path`
/// names the file in errors. The header is checked on the first bytes of the
/// (decompressed) stream and only the data it declares is read, so a small
/// hostile file cannot make octconv inflate gigabytes.
pub fn parse_idx(bytes: &[u8], path: &str) -> Result<Idx, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        read_idx(flate2::read::MultiGzDecoder::new(bytes), path, true)
    } else {
        read_idx(bytes, path, false)
    }
}

fn read_idx(mut stream: impl Read, path: &str, gzip: bool) -> Result<Idx, DataError> {
    let invalid = |problem: String| DataError::Invalid { path: path.to_string(), problem };
    let broken = |e: std::io::Error| {
        let what = if gzip { "is not a valid gzip file" } else { "cannot be read" };
        invalid(format!("{what} ({e}); download it again"))
    };
    // Up to `n` bytes: fewer only at the end of the stream.
    let mut read_up_to = |n: usize| -> Result<Vec<u8>, DataError> {
        let mut out = Vec::new();
        (&mut stream).take(n as u64).read_to_end(&mut out).map_err(broken)?;
        Ok(out)
    };
    let magic = read_up_to(4)?;
    if magic.len() < 4 || magic[0] != 0 || magic[1] != 0 || magic[3] == 0 {
        let head: Vec<String> = magic.iter().map(|b| format!("{b:02x}")).collect();
        return Err(invalid(format!(
            "is not an IDX file (it starts with {}, not 00 00 08 0N); give MNIST's own files, or download them again",
            head.join(" ")
        )));
    }
    if magic[2] != UNSIGNED_BYTE {
        return Err(invalid(format!(
            "holds IDX type 0x{:02x}; only unsigned bytes (0x08), as in MNIST's files, are read; give MNIST's own files",
            magic[2]
        )));
    }
    let ndim = magic[3] as usize;
    let dims_bytes = read_up_to(4 * ndim)?;
    if dims_bytes.len() < 4 * ndim {
        let header = 4 + 4 * ndim;
        return Err(invalid(format!(
            "is truncated: its header needs {header} bytes, the file has {}; download it again",
            4 + dims_bytes.len()
        )));
    }
    let dims: Vec<usize> =
        dims_bytes.chunks_exact(4).map(|b| u32::from_be_bytes(b.try_into().expect("four bytes")) as usize).collect();
    let expected = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|&n| n <= MAX_IDX_BYTES);
    let Some(expected) = expected else {
        return Err(invalid(format!(
            "declares dimensions {dims:?}, more than the {} MiB octconv reads from one file; it is not an MNIST file; give MNIST's own files",
            MAX_IDX_BYTES >> 20
        )));
    };
    let data = read_up_to(expected)?;
    let trailing = !read_up_to(1)?.is_empty();
    if data.len() < expected {
        return Err(invalid(format!(
            "is truncated: dimensions {dims:?} need {expected} data bytes, the file has {}; download it again",
            data.len()
        )));
    }
    if trailing {
        return Err(invalid(format!(
            "has trailing bytes: dimensions {dims:?} need {expected} data bytes, the file has more; download it again"
        )));
    }
    Ok(Idx { dims, data })
}
