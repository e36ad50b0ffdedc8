//! The bridge: kernel state to ordered user-space tables.
//!
//! Data flows one way: tracepoints → kernel maps → a bridge mode ([`mode`]) → batches of
//! [`contract::RowChange`] over a crossbeam channel → the [`store::TableStore`] (one owner) →
//! views. No terminal code lives here.

pub mod cgroups;
pub mod cmdlines;
pub mod contract;
pub mod defaults;
pub mod map_batch;
pub mod mode;
pub mod perf_reader;
pub mod probe;
pub mod probe_cost;
pub mod procfs_seed;
pub mod record;
pub mod seq_gap;
pub mod session;
pub mod stats;
pub mod stop;
pub mod store;
#[cfg(feature = "test-support")]
pub mod synthetic;
pub(crate) mod sys;
pub mod table;
pub mod tcp_diag;
