//! libfasts3: fill caller-owned memory from S3 with parallel ranged GETs.
//!
//! Two crates in one workspace, kept apart so each can be read (and tested) on its own:
//! - [`fasts3_engine`] (rust/engine/, its own crate): the S3 logic (client configuration,
//!   the GET algorithm, listing, writes, errors), Rust with no C ABI in it, taking slices,
//!   never raw pointers.
//! - [`ffi`] (this crate, the cdylib): the C ABI — status codes, the panic boundary, pointer
//!   checks, handles. `include/fasts3.h` is generated from it by cbindgen, which reads this
//!   crate only (cbindgen.toml: `parse_deps = false`), so nothing of the engine reaches the header.
//!
//! The C ABI names the engine by its crate name, `fasts3_engine::`, so a reader of rust/ffi
//! sees at each use that it crosses into the other crate.

pub mod ffi;
