//! The block-parallel gzip writer: same bytes for any thread count and any write
//! pattern, one valid gzip member that flate2 and the system `gzip` both accept.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use hoist_layer::compression::{ParallelGzEncoder, GZIP_BLOCK_SIZE};
use hoist_layer::{write_dir, Compression, WriteOptions};

const BLOCK: usize = GZIP_BLOCK_SIZE;

/// A small deterministic PRNG (xorshift64*), so the inputs need no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

/// About 5.3 MiB alternating incompressible noise, text-like repetition, zeros,
/// low-entropy bytes and copies of earlier data (matches across block cuts), with
/// a length that is not a multiple of the block size.
fn varied(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut section = 0;
    while out.len() < 5 * BLOCK + 300_000 {
        let len = 20_000 + (rng.next() % 700_000) as usize;
        match section % 5 {
            0 => out.extend(rng.bytes(len)),
            1 => {
                let line = b"usr/share/doc/package/copyright: GPL-2+ and friends\n";
                out.extend(line.iter().cycle().take(len));
            }
            2 => out.resize(out.len() + len, 0),
            3 => out.extend(rng.bytes(len).iter().map(|b| b"acgt"[usize::from(b % 4)])),
            _ => {
                let start = (rng.next() as usize) % out.len().max(1);
                let end = (start + len).min(out.len());
                let copy = out[start..end].to_vec();
                out.extend(copy);
            }
        }
        section += 1;
    }
    out
}

/// Compress `data` written in `chunk`-byte pieces.
fn encode(data: &[u8], level: u32, threads: usize, chunk: usize) -> Vec<u8> {
    let mut enc = ParallelGzEncoder::new(Vec::new(), level, threads);
    for piece in data.chunks(chunk.max(1)) {
        enc.write_all(piece).unwrap();
    }
    enc.finish().unwrap()
}

/// Bitwise CRC-32 (IEEE, reflected), independent of the one under test.
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// Decode with flate2, check it is a single member, and check the trailer.
fn check_decodes(gz: &[u8], data: &[u8]) {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    assert!(out == data, "MultiGzDecoder output differs from the input");
    // One member: the single-member decoder sees everything too.
    let mut single = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut single)
        .unwrap();
    assert!(single == data, "not a single gzip member");
    let n = gz.len();
    assert_eq!(
        u32::from_le_bytes(gz[n - 8..n - 4].try_into().unwrap()),
        crc32(data),
        "CRC-32"
    );
    assert_eq!(
        u32::from_le_bytes(gz[n - 4..].try_into().unwrap()),
        data.len() as u32,
        "ISIZE"
    );
}

fn have_gzip() -> bool {
    let ok = Command::new("gzip")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping the system gzip check: no gzip in PATH");
    }
    ok
}

/// `gzip -t` accepts it and `gzip -dc` gives the input back.
fn check_system_gzip(gz: &[u8], data: &[u8]) {
    if !have_gzip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.gz");
    fs::write(&path, gz).unwrap();
    let t = Command::new("gzip").arg("-t").arg(&path).output().unwrap();
    assert!(
        t.status.success(),
        "gzip -t: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    let d = Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
    assert!(
        d.status.success(),
        "gzip -dc: {}",
        String::from_utf8_lossy(&d.stderr)
    );
    assert!(d.stdout == data, "gzip -dc output differs from the input");
}

#[test]
fn same_bytes_for_any_thread_count_and_write_pattern() {
    let data = varied(1);
    let reference = encode(&data, 6, 1, 1 << 16);
    for threads in [2, 3, 8] {
        let gz = encode(&data, 6, threads, 1 << 16);
        assert!(gz == reference, "threads = {threads} changed the output");
    }
    for chunk in [1_000_003, BLOCK, BLOCK + 1, 4093] {
        let gz = encode(&data, 6, 3, chunk);
        assert!(
            gz == reference,
            "writes of {chunk} bytes changed the output"
        );
    }
    check_decodes(&reference, &data);
    check_system_gzip(&reference, &data);
    // The cuts cost little: within 1% of a one-shot single-threaded gzip.
    let mut plain = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::new(6));
    plain.write_all(&data).unwrap();
    let plain = plain.finish().unwrap();
    assert!(
        reference.len() <= plain.len() + plain.len() / 100,
        "{} bytes vs {} for plain gzip",
        reference.len(),
        plain.len()
    );
}

#[test]
fn every_level_is_deterministic_and_decodes() {
    let data = varied(2);
    let data = &data[..2 * BLOCK + 12_345];
    for level in [0, 1, 9] {
        let one = encode(data, level, 1, 1 << 16);
        let four = encode(data, level, 4, 100_000);
        assert!(one == four, "level {level}: threads changed the output");
        check_decodes(&one, data);
    }
}

#[test]
fn header_matches_the_single_threaded_writer() {
    for level in 0..=9 {
        let ours = encode(b"abc", level, 2, 3);
        let mut theirs = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), flate2::Compression::new(level));
        theirs.write_all(b"abc").unwrap();
        let theirs = theirs.finish().unwrap();
        assert_eq!(ours[..10], theirs[..10], "level {level}");
        assert_eq!(ours[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, ours[8], 255]);
    }
}

#[test]
fn block_boundary_edge_cases() {
    let big = varied(3);
    let sizes = [
        0,
        1,
        1000,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        2 * BLOCK,
        2 * BLOCK + 1,
    ];
    for size in sizes {
        let data = &big[..size];
        let one = encode(data, 6, 1, 1 << 16);
        for threads in [2, 4] {
            assert!(
                encode(data, 6, threads, 1 << 16) == one,
                "size {size}, threads {threads}"
            );
        }
        check_decodes(&one, data);
        check_system_gzip(&one, data);
    }
    // Empty input: header, an empty final block, zero CRC and size.
    let empty = encode(&[], 6, 4, 1);
    assert_eq!(empty[10..], [3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn dropping_an_unfinished_encoder_stops_its_threads() {
    let data = varied(4);
    let mut enc = ParallelGzEncoder::new(Vec::new(), 6, 4);
    enc.write_all(&data).unwrap();
    drop(enc);
}

fn write_tree(root: &Path) {
    let data = varied(5);
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("usr/lib/big.bin"), &data).unwrap();
    fs::write(root.join("usr/lib/half.bin"), &data[..data.len() / 2]).unwrap();
    for i in 0..50 {
        fs::write(
            root.join(format!("etc/conf{i}")),
            format!("key{i} = value\n").repeat(i * 10),
        )
        .unwrap();
    }
}

#[test]
fn write_dir_digest_does_not_depend_on_threads() {
    let src = tempfile::tempdir().unwrap();
    write_tree(src.path());
    let layer = |threads: Option<usize>| {
        let opts = WriteOptions {
            compression: Compression::Gzip,
            source_date_epoch: Some(0),
            threads,
            ..WriteOptions::default()
        };
        let mut blob = Vec::new();
        let info = write_dir(src.path(), &mut blob, &opts).unwrap();
        (info, blob)
    };
    let (one, blob) = layer(Some(1));
    assert!(one.uncompressed_size > 8 * BLOCK as u64);
    for threads in [Some(4), Some(2), None] {
        let (info, other) = layer(threads);
        assert_eq!(info, one, "threads = {threads:?}");
        assert!(other == blob, "threads = {threads:?}");
    }
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(&blob[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(tar.len() as u64, one.uncompressed_size);
    check_system_gzip(&blob, &tar);
}
