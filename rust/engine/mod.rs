//! The S3 engine of pyfasts3: usable and testable from Rust without touching raw pointers.
//!
//! A Rust library with no C ABI in it: the `fasts3` crate (rust/ffi, the cdylib libfasts3)
//! puts the C ABI on top of it. Callers hand it slices, never pointers. Its own unsafe code
//! is small and commented: borrowing futures run on the worker threads only under the
//! [`runtime::Offload`] permission, caller data lent to request bodies (`payload`), and
//! result-buffer allocation (`result_buffer`, libc only for `madvise`).

pub mod cancel;
pub mod checksum;
pub mod client;
pub(crate) mod connector;
pub mod copy;
pub mod delete;
pub mod error;
pub mod get;
mod get_request;
pub mod head;
mod http;
pub mod list;
mod list_xml;
mod multipart;
pub mod page;
pub mod parts;
pub mod path;
mod payload;
pub mod put;
pub mod ranges;
pub mod result_buffer;
pub mod runtime;
pub mod upload;
pub mod window;
mod sdk_http;
mod tls;

#[cfg(test)]
mod fake_s3;
#[cfg(test)]
mod get_tests;

pub use cancel::CancelToken;
pub use checksum::ChecksumMode;
pub use client::{Client, ClientOptions, PathStyle};
pub use error::{Error, ErrorKind, Result};
pub use page::ObjectPage;
