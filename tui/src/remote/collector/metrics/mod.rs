//! `serve --prometheus ADDR`: the collector's tables as Prometheus series. Host aggregates
//! only ([`sample`]), built from the tables at scrape time and encoded with
//! `prometheus-client` ([`encode`]), served by hyper on the collector's runtime ([`http`]).
//! [`retired`] keeps the byte counters monotonic across reaps.

pub mod encode;
pub mod http;
pub mod retired;
pub mod sample;
