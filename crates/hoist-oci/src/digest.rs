//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and streaming hashers.
//!
//! A [`Digest`] is always valid once constructed: the algorithm is known and the
//! hex part has the right length and only lowercase hex digits, as the OCI
//! image-spec requires for registered algorithms.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::Digest as _;

/// A hash algorithm registered by the OCI image-spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the default everywhere.
    Sha256,
    /// SHA-512, accepted on input.
    Sha512,
}

impl Algorithm {
    /// The name used in the digest string.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the encoded (hex) part.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `algorithm:` prefix.
    #[error("digest {0:?} has no algorithm prefix (expected e.g. sha256:<64 hex digits>)")]
    MissingAlgorithm(String),
    /// An algorithm other than sha256/sha512.
    #[error("digest {0:?} uses an unsupported algorithm (supported: sha256, sha512)")]
    UnsupportedAlgorithm(String),
    /// Wrong length or characters in the hex part.
    #[error("digest {digest:?} is malformed: expected {expected} lowercase hex digits after {algorithm}:")]
    BadEncoding {
        /// The whole input.
        digest: String,
        /// Algorithm name.
        algorithm: &'static str,
        /// Expected hex length.
        expected: usize,
    },
}

/// A validated content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// The digest of `bytes` with SHA-256.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut d = Digester::new(Algorithm::Sha256);
        d.update(bytes);
        d.finish()
    }

    /// The digest of `bytes` with this digest's algorithm.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut d = Digester::new(algorithm);
        d.update(bytes);
        d.finish()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex-encoded hash.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A short form for display (`sha256:0123456789ab`).
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm.as_str(), &self.hex[..12])
    }

    /// Whether `bytes` hash to this digest.
    pub fn verify(&self, bytes: &[u8]) -> bool {
        Digest::of(self.algorithm, bytes) == *self
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::MissingAlgorithm(s.to_owned()))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(DigestError::UnsupportedAlgorithm(s.to_owned())),
        };
        let ok = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(DigestError::BadEncoding {
                digest: s.to_owned(),
                algorithm: algorithm.as_str(),
                expected: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// An incremental hasher producing a [`Digest`].
pub struct Digester {
    hasher: Hasher,
    len: u64,
}

impl Digester {
    /// A new hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Digester {
        let hasher = match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        };
        Digester { hasher, len: 0 }
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self.hasher {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// A writer that hashes and counts what passes through it to `inner`.
pub struct DigestWriter<W> {
    inner: W,
    digester: Digester,
}

impl<W: Write> DigestWriter<W> {
    /// Wrap `inner`, hashing with SHA-256.
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            digester: Digester::new(Algorithm::Sha256),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.digester.len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.digester.is_empty()
    }

    /// The inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.digester.len();
        (self.inner, self.digester.finish(), len)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what is read through it.
pub struct DigestReader<R> {
    inner: R,
    digester: Digester,
}

impl<R: Read> DigestReader<R> {
    /// Wrap `inner`, hashing with `algorithm`.
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        DigestReader {
            inner,
            digester: Digester::new(algorithm),
        }
    }

    /// Bytes read so far.
    pub fn len(&self) -> u64 {
        self.digester.len()
    }

    /// Whether nothing was read yet.
    pub fn is_empty(&self) -> bool {
        self.digester.is_empty()
    }

    /// The digest of everything read and the byte count.
    pub fn finish(self) -> (Digest, u64) {
        let len = self.digester.len();
        (self.digester.finish(), len)
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sha256_is_the_well_known_value() {
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parses_and_rejects() {
        let s = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(s.parse::<Digest>().unwrap().to_string(), s);
        assert!(matches!(
            "e3b0".parse::<Digest>(),
            Err(DigestError::MissingAlgorithm(_))
        ));
        assert!(matches!(
            "md5:abcd".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
                .parse::<Digest>()
                .is_err()
        );
        assert!("sha256:abc".parse::<Digest>().is_err());
        let sha512 = Digest::of(Algorithm::Sha512, b"x");
        assert_eq!(sha512.to_string().parse::<Digest>().unwrap(), sha512);
    }

    #[test]
    fn writer_and_reader_agree_with_one_shot() {
        let data = b"hello, layers";
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(data).unwrap();
        let (out, d, n) = w.finish();
        assert_eq!(out, data);
        assert_eq!(n, data.len() as u64);
        assert_eq!(d, Digest::sha256_of(data));
        let mut r = DigestReader::new(&data[..], Algorithm::Sha256);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.finish().0, d);
    }
}
