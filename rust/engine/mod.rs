//! The S3 engine: usable and testable from Rust without touching raw pointers.

pub mod cancel;
pub mod client;
pub mod error;
pub mod get;
pub mod head;
pub mod list;
pub mod page;
pub mod path;
pub mod runtime;

pub use cancel::CancelToken;
pub use client::{Client, ClientOptions, PathStyle};
pub use error::{Error, ErrorKind, Result};
pub use page::ObjectPage;
