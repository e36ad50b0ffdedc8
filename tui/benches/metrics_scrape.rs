//! Cost of one Prometheus scrape of `serve --prometheus` at large tables: the sample (taken
//! under the hub's lock, so the collector's apply waits for it) and the whole render (sample +
//! encoding), over a synthetic world (the bridge's synthetic source, invented rows: this
//! measures the exporter, not the kernel) of `ROWS` processes and `ROWS` connections in each
//! of the three modes.
//!
//! `cargo bench -p bpftop-ordered --bench metrics_scrape [-- ROWS [SCRAPES]]`

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use bpftop_ordered::remote::collector::{
    hub::{Hub, HubLimits},
    metrics::{encode::HostExporter, http::render},
};
use bridge::{
    contract::ModeKind,
    stats::monotonic_ns,
    store::TableStore,
    synthetic::{SyntheticShape, SyntheticSource},
    table::Retention,
};

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    format!(
        "min {:.2} / median {:.2} / max {:.2} ms",
        ms[0],
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    )
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rows = args.first().copied().unwrap_or(100_000);
    let scrapes = args.get(1).copied().unwrap_or(20).max(1);
    let shape = SyntheticShape {
        processes: rows,
        connections: rows,
        busy_percent: 30,
        churn_per_step: 100,
    };
    let mut source = SyntheticSource::with_shape(7, monotonic_ns(), shape);
    let mut store = TableStore::new(0, Retention::default());
    for mode in ModeKind::ALL {
        store.apply(source.initial_batch(mode));
    }
    let limits = HubLimits {
        queue_frames: 16,
        recent_frames: 16,
        recent_bytes: 1 << 20,
    };
    let hub = Arc::new(Mutex::new(Hub::new(
        1,
        store,
        ModeKind::ALL.to_vec(),
        limits,
    )));
    let exporter = HostExporter::new(Arc::clone(&hub), None, 10);
    let mut sample_ms = Vec::new();
    for _ in 0..scrapes {
        let t = Instant::now();
        let sample = exporter.sample();
        sample_ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(sample);
    }
    let registry = exporter.into_registry();
    let mut render_ms = Vec::new();
    let mut bytes = 0;
    for _ in 0..scrapes {
        let t = Instant::now();
        let text = render(&registry, false).expect("render");
        render_ms.push(t.elapsed().as_secs_f64() * 1e3);
        bytes = text.len();
    }
    println!(
        "{rows} processes + {rows} connections in each of 3 modes, {scrapes} scrapes, {bytes} bytes each"
    );
    println!("sample (hub lock held): {}", summary(sample_ms));
    println!("whole render:           {}", summary(render_ms));
}
