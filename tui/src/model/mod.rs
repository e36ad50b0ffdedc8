//! The table model the dashboard and the views share: the columns of both tables (title, width,
//! how to format and compare a cell), human units, user names, per-process CPU. It depends on
//! the bridge only — never on `dashboard` (state, input) or `view` (rendering), which both
//! depend on it.

pub mod cgroup_names;
pub mod columns;
pub mod format;
pub mod host_names;
pub mod net;
pub mod process_cpu;
pub mod series;
pub mod user_names;
