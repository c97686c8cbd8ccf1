//! libfasts3: fill caller-owned memory from S3 with parallel ranged GETs.
//!
//! Two layers, kept apart so each can be read on its own:
//! - [`engine`]: the S3 logic (client configuration, the GET algorithm, listing, errors),
//!   safe Rust with no raw pointers except the one caller-buffer wrapper.
//! - [`ffi`]: the C ABI — status codes, the panic boundary, pointer checks, handles.
//!   `include/fasts3.h` is generated from it by cbindgen.

pub mod engine;
pub mod ffi;
