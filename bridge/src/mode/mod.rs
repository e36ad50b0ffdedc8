//! The three bridge modes. Each runs on its own thread, owns its transport, and sends
//! [`ModeBatch`](crate::contract::ModeBatch)es of row changes to the store owner over a
//! crossbeam channel. A mode never touches the terminal; the store owner never touches BPF
//! file descriptors.

pub mod incremental;
pub mod perf;
pub mod perf_buffers;
pub mod poll;
pub mod ring;
