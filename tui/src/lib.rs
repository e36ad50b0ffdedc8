//! `bpftop-ordered` as a library: the interactive dashboard and what it is made of, so the
//! binary (`main.rs`) and the integration tests (`tests/dashboard_*.rs`) share one build.

pub mod config;
pub mod config_view;
pub mod dashboard;
pub mod model;
pub mod recording;
pub mod remote;
pub mod theme;
pub mod user_file;
pub mod view;
