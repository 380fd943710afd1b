//! IDX files: the header is checked on the first bytes and only the data it
//! declares is read, so hostile files fail fast with bounded memory; gzip
//! files of several members are valid.

mod common;

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use octconv::data::parse_idx;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_gzip_of_several_members_is_one_file() {
    let whole = common::idx_bytes(&[3, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let mut members = gzip(&whole[..7]);
    members.extend(gzip(&whole[7..]));
    let idx = parse_idx(&members, "two-members.gz").unwrap();
    assert_eq!((idx.dims, idx.data.len()), (vec![3, 2, 2], 12));
}

#[test]
fn a_bomb_of_zeros_fails_on_its_first_bytes() {
    // 64 MiB of zeros compress to about 64 KiB: refused after reading four bytes.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let start = std::time::Instant::now();
    let err = parse_idx(&bomb, "bomb.gz").unwrap_err().to_string();
    assert!(err.contains("is not an IDX file"), "{err}");
    println!("refused in {:?}", start.elapsed());
}

#[test]
fn a_header_declaring_too_much_is_refused_before_reading() {
    let huge = common::idx_bytes(&[100_000, 1000, 1000], &[0; 16]);
    let err = parse_idx(&gzip(&huge), "huge.gz").unwrap_err().to_string();
    assert!(err.contains("declares dimensions [100000, 1000, 1000]") && err.contains("not an MNIST file"), "{err}");
}

#[test]
fn trailing_and_missing_bytes_are_named() {
    let extra = [common::idx_bytes(&[2], &[1, 2]), vec![0; 10 << 20]].concat();
    let err = parse_idx(&gzip(&extra), "extra.gz").unwrap_err().to_string();
    assert!(err.contains("has trailing bytes"), "{err}");
    let short = common::idx_bytes(&[5], &[1, 2]);
    let err = parse_idx(&short, "short").unwrap_err().to_string();
    assert!(err.contains("is truncated") && err.contains("the file has 2"), "{err}");
}
