//! Validation of bucket names and keys before anything goes on the wire.

use crate::error::{Error, Result};

pub fn check_bucket(bucket: &str) -> Result<()> {
    if bucket.is_empty() {
        return Err(Error::invalid("bucket name is empty"));
    }
    if bucket.contains('/') {
        return Err(Error::invalid(format!("bucket name {bucket:?} contains '/'")));
    }
    Ok(())
}

pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("object key is empty"));
    }
    if key.len() > 1024 {
        return Err(Error::invalid("object key is longer than S3's 1024-byte limit"));
    }
    Ok(())
}
