//! One privileged collector, many unprivileged viewers: `serve` streams the store's tables
//! over a Unix socket, `--attach` viewers keep a replica of them (`docs/protocol.md`).
//!
//! - [`protocol`]: the messages (versioned); [`frame`]: length-delimited frames, encoding;
//! - [`wire_rows`]: rows and store operations to and from their wire form;
//! - [`socket_path`]: the socket's file, group and modes; connect errors for viewers;
//! - [`collector`]: the collector (hub, per-viewer tasks, signal requests);
//! - [`replica`]: a viewer's connection and replica.

pub mod assembly;
pub mod collector;
pub mod feed;
pub mod frame;
pub mod protocol;
pub mod replica;
pub mod socket_path;
pub mod wire_rows;
