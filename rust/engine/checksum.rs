//! End-to-end checksums of what a read received: the `x-amz-checksum-*` value the server
//! returns for an object is compared with the same algorithm computed over the bytes that
//! landed in the buffer.
//!
//! S3's checksum headers describe the whole object (or a part, for `partNumber` GETs, which we
//! do not use), never a byte range. So a read is verifiable only when it covers the whole
//! object, and only against a full-object value: a composite value (`<base64>-<N>`, the
//! checksum of part checksums an S3 multipart upload stores) cannot be recomputed without
//! the upload's part boundaries. The algorithms (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256)
//! are the AWS SDK's own implementations (`aws-smithy-checksums`).

use crate::error::{Error, ErrorKind, Result};
use aws_smithy_checksums::ChecksumAlgorithm;

/// What the client does with checksums (the `checksum` client option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Ask for checksums (`x-amz-checksum-mode: ENABLED`) and verify every one that covers
    /// the bytes read; reads nothing can verify succeed unverified.
    #[default]
    WhenAvailable,
    /// As `WhenAvailable`, but a read that cannot be verified fails (`ChecksumUnavailable`).
    Required,
    /// Neither asked for nor verified.
    Off,
}

impl ChecksumMode {
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "when_available" => Ok(ChecksumMode::WhenAvailable),
            "required" => Ok(ChecksumMode::Required),
            "off" => Ok(ChecksumMode::Off),
            other => Err(Error::invalid(format!(
                "checksum must be \"when_available\", \"required\" or \"off\", got {other:?}"
            ))),
        }
    }

    /// Whether requests ask the server for checksums.
    pub fn requested(self) -> bool {
        self != ChecksumMode::Off
    }
}

/// A checksum the server announced for an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub algorithm: ChecksumAlgorithm,
    /// Base64 of the big-endian digest, as in the header.
    pub value: String,
}

impl Announced {
    /// The checksum among a response's `x-amz-checksum-*` values that describes the whole
    /// object's bytes, preferring the cheapest to compute. `Ok(None)` when there is none or
    /// only composite ones. `full_object_type`: the response's `x-amz-checksum-type` is absent
    /// or `FULL_OBJECT` (not `COMPOSITE`).
    pub fn pick(
        full_object_type: bool,
        crc64nvme: Option<&str>,
        crc32c: Option<&str>,
        crc32: Option<&str>,
        sha1: Option<&str>,
        sha256: Option<&str>,
    ) -> Option<Announced> {
        if !full_object_type {
            return None;
        }
        [
            (ChecksumAlgorithm::Crc64Nvme, crc64nvme),
            (ChecksumAlgorithm::Crc32c, crc32c),
            (ChecksumAlgorithm::Crc32, crc32),
            (ChecksumAlgorithm::Sha1, sha1),
            (ChecksumAlgorithm::Sha256, sha256),
        ]
        .into_iter()
        .find_map(|(algorithm, value)| {
            let value = value?.trim();
            // "<base64>-<parts>": a checksum of part checksums, not of the bytes.
            (!value.is_empty() && !value.contains('-')).then(|| Announced { algorithm, value: value.to_string() })
        })
    }

    /// Whether any checksum header is present at all (composite ones included): lets a
    /// `Required` read say why it cannot verify.
    pub fn any_present(values: &[Option<&str>]) -> bool {
        values.iter().any(|v| v.is_some_and(|s| !s.trim().is_empty()))
    }

    /// Compare with the checksum of `bytes`.
    pub fn verify(&self, bytes: &[u8]) -> Result<()> {
        let mut verifier = Verifier::new(self.clone());
        verifier.update(bytes);
        verifier.finish()
    }

    fn compare(&self, computed: &str, len: u64) -> Result<()> {
        if computed == self.value {
            return Ok(());
        }
        let mut err = Error::new(
            ErrorKind::ChecksumMismatch,
            format!(
                "{} of the {len} bytes received is {computed}, the server sent {}: the data was \
                 corrupted in transit or at rest",
                self.algorithm.as_str(),
                self.value
            ),
        );
        err.code = "ChecksumMismatch".into();
        Err(err)
    }
}

/// Computes a checksum over bytes as they stream past, then compares.
pub struct Verifier {
    expected: Announced,
    hasher: Box<dyn aws_smithy_checksums::http::HttpChecksum>,
    len: u64,
}

impl Verifier {
    pub fn new(expected: Announced) -> Verifier {
        Verifier { hasher: expected.algorithm.into_impl(), expected, len: 0 }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn finish(self) -> Result<()> {
        let computed = self.hasher.header_value();
        self.expected.compare(computed.to_str().unwrap_or_default(), self.len)
    }
}

/// The failure of a `Required` read that nothing can verify.
pub fn unavailable(why: &str) -> Error {
    let mut err = Error::new(ErrorKind::ChecksumUnavailable, format!("checksum=\"required\": {why}"));
    err.code = "ChecksumUnavailable".into();
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_full_object_values_only() {
        let a = Announced::pick(true, None, Some("AAAAAA=="), Some("BBBBBB=="), None, None).unwrap();
        assert_eq!(a.algorithm, ChecksumAlgorithm::Crc32c);
        assert!(Announced::pick(true, None, None, Some("abcd-3"), None, None).is_none());
        assert!(Announced::pick(false, None, Some("AAAAAA=="), None, None, None).is_none());
        assert!(Announced::pick(true, None, None, None, None, None).is_none());
    }

    #[test]
    fn verifies_crc32_of_known_bytes() {
        // CRC32("hello") = 0x3610a686, base64 of its big-endian bytes.
        let ok = Announced { algorithm: ChecksumAlgorithm::Crc32, value: "NhCmhg==".into() };
        ok.verify(b"hello").unwrap();
        let err = ok.verify(b"hellO").unwrap_err();
        assert_eq!(err.kind, ErrorKind::ChecksumMismatch);
    }

    #[test]
    fn mode_parses() {
        assert_eq!(ChecksumMode::parse("off").unwrap(), ChecksumMode::Off);
        assert!(ChecksumMode::parse("yes").is_err());
    }
}
