//! `bench --transport`: the transport-limit matrix (ring / perf × wake-up per record / sampled ×
//! null / full consumer), one run each, all measured by [`super::transport_bench`].

use std::io::Write;

use super::transport_bench::{self, Consumer, Transport, TransportBenchConfig};

use crate::cli::{BenchArgs, BenchFormat as Format};

/// Wake-up sampling used for the "sampled" rows (the kernel selftest's sampled setting is 500).
const SAMPLED_WAKEUP_EVERY: u32 = 500;

/// Runs the matrix; returns the process exit code.
pub fn run(args: &BenchArgs) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    if args.format == Format::Table {
        writeln!(
            out,
            "{:<5} {:<8} {:<5} {:>12} {:>12} {:>10} {:>9} {:>9} {:>12}",
            "TRANS",
            "WAKEUP",
            "CONS",
            "OFFERED/S",
            "CONSUMED/S",
            "DROPS",
            "LOST",
            "CPU_MS",
            "P99_LAG"
        )?;
    }
    for transport in [Transport::Ring, Transport::Perf] {
        for wakeup_every in [1, SAMPLED_WAKEUP_EVERY] {
            for consumer in [Consumer::Null, Consumer::Full] {
                let config = TransportBenchConfig {
                    transport,
                    consumer,
                    wakeup_every,
                    producers: args.spawners.max(1),
                    duration: args.duration,
                    ring_bytes: args.bridge.ring_bytes.max(16 << 20),
                    perf_pages: args
                        .bridge
                        .perf_pages
                        .unwrap_or_else(bridge::defaults::perf_pages_here)
                        .max(256),
                };
                let result = match transport_bench::run(&config) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("bpftop-ordered: {e}");
                        return Ok(if e.is_privilege_or_support() { 3 } else { 1 });
                    }
                };
                match args.format {
                    Format::Json => {
                        writeln!(out, "{}", serde_json::json!({ "transport": result }))?
                    }
                    Format::Table => writeln!(
                        out,
                        "{:<5} {:<8} {:<5} {:>12.0} {:>12.0} {:>10} {:>9} {:>9.1} {:>12}",
                        format!("{:?}", result.transport).to_lowercase(),
                        if wakeup_every == 1 {
                            "each".to_string()
                        } else {
                            format!("1/{wakeup_every}")
                        },
                        format!("{:?}", result.consumer).to_lowercase(),
                        result.produced_per_s,
                        result.consumed_per_s,
                        result.kernel_drops,
                        result.perf_lost,
                        result.consumer_cpu_ns as f64 / 1e6,
                        if consumer == Consumer::Full {
                            format!("{} ns", result.lag_p99_ns)
                        } else {
                            "-".to_string()
                        },
                    )?,
                }
            }
        }
    }
    Ok(0)
}
