//! The S3 engine: usable and testable from Rust without touching raw pointers.

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
