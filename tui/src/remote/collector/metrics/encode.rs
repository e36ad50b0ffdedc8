//! The exported series: a [`HostSample`] written with `prometheus-client`'s encoders (the
//! Prometheus text format 0.0.4 or OpenMetrics, chosen by the scraper's `Accept`). Names and
//! units follow the Prometheus conventions: counters end in `_total`, units are spelled out
//! (`_bytes`, `_seconds`), every name starts with `bpftop_`.

use std::{
    collections::HashMap,
    sync::{atomic::Ordering, Arc, Mutex},
};

use bridge::{contract::ModeKind, probe::Controls};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet},
    metrics::MetricType,
    registry::{Registry, Unit},
};

use super::sample::{
    HostSample, ModeSample, RecordingSample, LAG_BOUNDS_NS, OTHER_COMM, TASK_STATES, TCP_STATES,
};
use crate::remote::collector::hub::Hub;

type Fmt = Result<(), std::fmt::Error>;

/// The label set of a series without labels.
const NO_LABELS: [(&str, &str); 0] = [];

/// Which byte counter a [`MonotonicGuard`] entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Direction {
    Sent,
    Received,
}

/// Keeps exported counters from going down: a byte sum that drops for a reason the reap
/// accounting cannot see (a row replaced on a reused 4-tuple, a resync) is exported at its
/// last value until it passes it again. (A counter that goes down reads as a restart to
/// Prometheus and spikes every `rate()`.)
#[derive(Debug, Default)]
pub struct MonotonicGuard(Mutex<HashMap<(ModeKind, Direction), u64>>);

impl MonotonicGuard {
    fn at_least_last(&self, mode: ModeKind, direction: Direction, value: u64) -> u64 {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let slot = last.entry((mode, direction)).or_default();
        *slot = (*slot).max(value);
        *slot
    }

    /// `sample` with its byte counters raised to what was exported before.
    pub fn apply(&self, mut sample: HostSample) -> HostSample {
        for mode in &mut sample.modes {
            mode.sent_bytes = self.at_least_last(mode.mode, Direction::Sent, mode.sent_bytes);
            mode.received_bytes =
                self.at_least_last(mode.mode, Direction::Received, mode.received_bytes);
        }
        sample
    }
}

/// The collector's exporter: at every scrape, takes a [`HostSample`] of the hub's tables (under
/// its lock, one pass) and the kernel's event counters, then encodes it.
pub struct HostExporter {
    hub: Arc<Mutex<Hub>>,
    controls: Option<Arc<Controls>>,
    top_k: usize,
    guard: MonotonicGuard,
}

impl std::fmt::Debug for HostExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostExporter")
            .field("top_k", &self.top_k)
            .finish_non_exhaustive()
    }
}

impl HostExporter {
    /// An exporter of `hub`'s tables; `controls` gives the kernel's event counters; `top_k`
    /// bounds the per-name series (0: none).
    pub fn new(hub: Arc<Mutex<Hub>>, controls: Option<Arc<Controls>>, top_k: usize) -> Self {
        hub.lock()
            .unwrap_or_else(|p| p.into_inner())
            .count_retired_bytes();
        HostExporter {
            hub,
            controls,
            top_k,
            guard: MonotonicGuard::default(),
        }
    }

    /// The sample a scrape now would export.
    pub fn sample(&self) -> HostSample {
        let kernel_events = self.controls.as_ref().and_then(|c| c.event_counts().ok());
        let hub = self.hub.lock().unwrap_or_else(|p| p.into_inner());
        let retired = hub.retired().cloned().unwrap_or_default();
        let recorder = hub.recorder().map(|recorder| {
            let c = recorder.counters();
            RecordingSample {
                up: !c.stopped.load(Ordering::Relaxed),
                records: c.records.load(Ordering::Relaxed),
                keyframes: c.keyframes.load(Ordering::Relaxed),
                value_bytes: c.value_bytes.load(Ordering::Relaxed),
                dropped: c.dropped.load(Ordering::Relaxed),
                disk_bytes: None,
            }
        });
        let store = hub.recording();
        let sample = HostSample {
            modes: hub
                .modes()
                .iter()
                .map(|&mode| ModeSample::take(mode, hub.store(), &retired, self.top_k))
                .collect(),
            kernel_events,
            viewers: hub.viewers() as u64,
            viewer_resyncs: hub.counters().overflows,
            deltas: hub.counters().deltas,
            recording: None,
        };
        drop(hub);
        // The store's size is read off the disk after the lock is released.
        let sample = HostSample {
            recording: recorder.map(|mut recording| {
                recording.disk_bytes = store.and_then(|s| s.disk_space_bytes());
                recording
            }),
            ..sample
        };
        self.guard.apply(sample)
    }

    /// A registry whose one collector is this exporter.
    pub fn into_registry(self) -> Registry {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        registry
    }
}

impl Collector for HostExporter {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> Fmt {
        encode_sample(&self.sample(), encoder)
    }
}

fn gauge<L: EncodeLabelSet>(family: &mut MetricEncoder<'_>, labels: &L, value: u64) -> Fmt {
    family.encode_family(labels)?.encode_gauge(&value)
}

fn counter<L: EncodeLabelSet>(family: &mut MetricEncoder<'_>, labels: &L, value: u64) -> Fmt {
    family
        .encode_family(labels)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// One series per running mode: `name{mode}` = `value(mode)`.
fn per_mode(
    encoder: &mut DescriptorEncoder<'_>,
    sample: &HostSample,
    (name, help, unit, kind): (&str, &str, Option<Unit>, MetricType),
    value: impl Fn(&ModeSample) -> u64,
) -> Fmt {
    let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), kind)?;
    for mode in &sample.modes {
        let labels = [("mode", mode.mode.name())];
        if kind == MetricType::Counter {
            counter(&mut family, &labels, value(mode))?;
        } else {
            gauge(&mut family, &labels, value(mode))?;
        }
    }
    Ok(())
}

/// Writes every series of `sample`.
pub fn encode_sample(sample: &HostSample, mut encoder: DescriptorEncoder<'_>) -> Fmt {
    use MetricType::{Counter, Gauge};
    let e = &mut encoder;
    gauge(
        &mut e.encode_descriptor(
            "bpftop_build_info",
            "The collector's version (value 1).",
            None,
            Gauge,
        )?,
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    )?;
    if let Some(events) = sample.kernel_events {
        for (name, help, value) in [
            (
                "bpftop_process_forks",
                "New processes (forks of a thread group) the kernel probes saw since they attached.",
                events.forks,
            ),
            (
                "bpftop_process_execs",
                "exec calls the kernel probes saw since they attached.",
                events.execs,
            ),
            (
                "bpftop_process_exits",
                "Processes whose last thread exited, seen by the kernel probes since they attached.",
                events.exits,
            ),
        ] {
            counter(&mut e.encode_descriptor(name, help, None, Counter)?, &NO_LABELS, value)?;
        }
    }
    gauge(
        &mut e.encode_descriptor(
            "bpftop_viewers",
            "Viewers attached to the collector's socket now.",
            None,
            Gauge,
        )?,
        &NO_LABELS,
        sample.viewers,
    )?;
    counter(
        &mut e.encode_descriptor(
            "bpftop_viewer_resyncs",
            "Viewers resynced by a snapshot because they fell a whole queue behind.",
            None,
            Counter,
        )?,
        &NO_LABELS,
        sample.viewer_resyncs,
    )?;
    counter(
        &mut e.encode_descriptor(
            "bpftop_deltas_published",
            "Store changes published to viewers.",
            None,
            Counter,
        )?,
        &NO_LABELS,
        sample.deltas,
    )?;
    if let Some(recording) = &sample.recording {
        encode_recording(e, recording)?;
    }
    per_mode(
        e,
        sample,
        (
            "bpftop_mode_up",
            "1 while the bridge mode runs, 0 after it failed.",
            None,
            Gauge,
        ),
        |m| m.up as u64,
    )?;
    {
        let mut family = e.encode_descriptor(
            "bpftop_processes",
            "Processes that exist now (zombies included), by task state, in each mode's table.",
            None,
            Gauge,
        )?;
        for mode in &sample.modes {
            for (i, (_, state)) in TASK_STATES.iter().enumerate() {
                let labels = [("mode", mode.mode.name()), ("state", state)];
                gauge(&mut family, &labels, mode.processes_by_state[i])?;
            }
            if mode.processes_other_state > 0 {
                let labels = [("mode", mode.mode.name()), ("state", "unknown")];
                gauge(&mut family, &labels, mode.processes_other_state)?;
            }
        }
    }
    {
        let mut family = e.encode_descriptor(
            "bpftop_tcp_connections",
            "Open TCP connections (not yet closed) by state, in each mode's table.",
            None,
            Gauge,
        )?;
        for mode in &sample.modes {
            for (i, (_, state)) in TCP_STATES.iter().enumerate() {
                let labels = [("mode", mode.mode.name()), ("state", state)];
                gauge(&mut family, &labels, mode.connections_by_state[i])?;
            }
        }
    }
    {
        let mut family = e.encode_descriptor(
            "bpftop_table_rows",
            "Rows in each mode's tables, finished processes and closed connections included.",
            None,
            Gauge,
        )?;
        for mode in &sample.modes {
            for (table, rows) in [
                ("processes", mode.process_rows),
                ("connections", mode.connection_rows),
            ] {
                gauge(
                    &mut family,
                    &[("mode", mode.mode.name()), ("table", table)],
                    rows,
                )?;
            }
        }
    }
    per_mode(
        e,
        sample,
        (
            "bpftop_tcp_sent",
            "TCP payload bytes sent (each byte once, retransmissions not counted) by the connections each mode has seen.",
            Some(Unit::Bytes),
            Counter,
        ),
        |m| m.sent_bytes,
    )?;
    per_mode(
        e,
        sample,
        (
            "bpftop_tcp_received",
            "TCP payload bytes received in order by the connections each mode has seen.",
            Some(Unit::Bytes),
            Counter,
        ),
        |m| m.received_bytes,
    )?;
    per_mode(
        e,
        sample,
        (
            "bpftop_tcp_connections_bytes_unknown",
            "Connections in the table whose byte counts are unknown (left out of the byte counters).",
            None,
            Gauge,
        ),
        |m| m.connections_bytes_unknown,
    )?;
    {
        let mut family = e.encode_descriptor(
            "bpftop_processes_by_comm",
            "Processes that exist now, for the names with the most of them (top K, then comm=\"other\").",
            None,
            Gauge,
        )?;
        for mode in &sample.modes {
            for (comm, n) in &mode.top_comms {
                let labels = [("mode", mode.mode.name()), ("comm", comm.as_str())];
                gauge(&mut family, &labels, *n)?;
            }
            gauge(
                &mut family,
                &[("mode", mode.mode.name()), ("comm", OTHER_COMM)],
                mode.other_comms,
            )?;
        }
    }
    for (name, help, value) in [
        (
            "bpftop_mode_events",
            "Changes applied to the mode's tables.",
            (|m: &ModeSample| m.stats.events) as fn(&ModeSample) -> u64,
        ),
        (
            "bpftop_mode_drops",
            "Loss events: sequence gaps (kernel transport failures and perf-lost records included) plus failed state-map inserts.",
            |m| m.stats.drops,
        ),
        ("bpftop_mode_resyncs", "Resyncs from the kernel state maps.", |m| m.stats.resyncs),
        (
            "bpftop_mode_map_full",
            "Failed state-map inserts (map full), shared by every mode.",
            |m| m.stats.map_full,
        ),
        (
            "bpftop_mode_kernel_drops",
            "Kernel transport failures (ring reserve / perf output).",
            |m| m.stats.kernel_drops,
        ),
        ("bpftop_mode_perf_lost", "PERF_RECORD_LOST counts.", |m| m.stats.perf_lost),
        ("bpftop_mode_decode_errors", "Records rejected by the decoder.", |m| m.stats.decode_errors),
        ("bpftop_mode_stale_changes", "Changes ignored as older than the row.", |m| m.stats.stale),
        ("bpftop_mode_batches", "Batches applied.", |m| m.stats.batches),
    ] {
        per_mode(e, sample, (name, help, None, Counter), value)?;
    }
    {
        let mut family = e.encode_descriptor(
            "bpftop_mode_lag",
            "Lag from a kernel change to its apply in the mode's tables.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for mode in &sample.modes {
            let buckets: Vec<(f64, u64)> = LAG_BOUNDS_NS
                .iter()
                .zip(&mode.lag.at_or_below)
                .map(|(bound_ns, n)| (*bound_ns as f64 / 1e9, *n))
                .collect();
            family
                .encode_family(&[("mode", mode.mode.name())])?
                .encode_histogram::<NoLabelSet>(
                    mode.lag.sum_ns / 1e9,
                    mode.lag.count,
                    &histogram_buckets(&buckets, mode.lag.count),
                    None,
                )?;
        }
    }
    per_mode(
        e,
        sample,
        (
            "bpftop_mode_kernel_memory",
            "Kernel memory of the mode's maps and buffers.",
            Some(Unit::Bytes),
            Gauge,
        ),
        |m| m.stats.kernel_bytes,
    )?;
    per_mode(
        e,
        sample,
        (
            "bpftop_mode_user_memory",
            "User-space memory of the mode: its tables plus its buffers (allocated capacity).",
            Some(Unit::Bytes),
            Gauge,
        ),
        |m| m.stats.user_bytes,
    )?;
    let mut family = e.encode_descriptor(
        "bpftop_mode_cpu",
        "CPU time of the mode's thread.",
        Some(&Unit::Seconds),
        Counter,
    )?;
    for mode in &sample.modes {
        family
            .encode_family(&[("mode", mode.mode.name())])?
            .encode_counter::<NoLabelSet, _, u64>(&(mode.stats.cpu_ns as f64 / 1e9), None)?;
    }
    Ok(())
}

/// The recorder's series (only while the collector records).
fn encode_recording(e: &mut DescriptorEncoder<'_>, recording: &RecordingSample) -> Fmt {
    use MetricType::{Counter, Gauge};
    gauge(
        &mut e.encode_descriptor(
            "bpftop_recording_up",
            "1 while the collector records, 0 once recording stopped on an error (a full disk, a write error).",
            None,
            Gauge,
        )?,
        &NO_LABELS,
        recording.up as u64,
    )?;
    for (name, help, unit, value) in [
        (
            "bpftop_recording_records",
            "Records written to the recording.",
            None,
            recording.records,
        ),
        (
            "bpftop_recording_keyframes",
            "Full-table keyframes written to the recording.",
            None,
            recording.keyframes,
        ),
        (
            "bpftop_recording_written",
            "Bytes of records written to the recording, before compression.",
            Some(Unit::Bytes),
            recording.value_bytes,
        ),
        (
            "bpftop_recording_dropped_records",
            "Records not written: the recorder's queue was full, or recording had stopped.",
            None,
            recording.dropped,
        ),
    ] {
        counter(
            &mut e.encode_descriptor(name, help, unit.as_ref(), Counter)?,
            &NO_LABELS,
            value,
        )?;
    }
    if let Some(disk_bytes) = recording.disk_bytes {
        gauge(
            &mut e.encode_descriptor(
                "bpftop_recording_disk",
                "The recording's size on disk (tables and journals).",
                Some(&Unit::Bytes),
                Gauge,
            )?,
            &NO_LABELS,
            disk_bytes,
        )?;
    }
    Ok(())
}

/// prometheus-client takes per-bucket counts (it accumulates them itself) with the last bucket
/// `+Inf`: turns cumulative counts into those.
fn histogram_buckets(cumulative: &[(f64, u64)], count: u64) -> Vec<(f64, u64)> {
    let mut previous = 0;
    let mut buckets: Vec<(f64, u64)> = cumulative
        .iter()
        .map(|&(bound, n)| {
            let in_bucket = n.saturating_sub(previous);
            previous = previous.max(n);
            (bound, in_bucket)
        })
        .collect();
    buckets.push((f64::INFINITY, count.saturating_sub(previous)));
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::collector::metrics::sample::TASK_STATES;
    use bridge::{probe::KernelEventCounts, stats::CumulativeLag};

    struct Fixed(HostSample);

    impl std::fmt::Debug for Fixed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Fixed")
        }
    }

    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder<'_>) -> Fmt {
            encode_sample(&self.0, encoder)
        }
    }

    fn sample(sent_bytes: u64) -> HostSample {
        let mut processes_by_state = [0; TASK_STATES.len()];
        processes_by_state[0] = 2; // running
        processes_by_state[5] = 1; // zombie
        let mut connections_by_state = [0; 12];
        connections_by_state[0] = 4; // established
        HostSample {
            modes: vec![ModeSample {
                mode: ModeKind::Poll,
                up: true,
                stats: Default::default(),
                processes_by_state,
                processes_other_state: 0,
                connections_by_state,
                process_rows: 5,
                connection_rows: 6,
                sent_bytes,
                received_bytes: 7,
                connections_bytes_unknown: 1,
                top_comms: vec![("we\"ird\nname".into(), 2)],
                other_comms: 1,
                lag: CumulativeLag {
                    at_or_below: (1..=LAG_BOUNDS_NS.len() as u64).collect(),
                    count: 20,
                    sum_ns: 2.5e9,
                },
            }],
            kernel_events: Some(KernelEventCounts {
                forks: 3,
                execs: 4,
                exits: 5,
            }),
            viewers: 2,
            viewer_resyncs: 0,
            deltas: 9,
            recording: Some(RecordingSample {
                up: false,
                records: 11,
                keyframes: 2,
                value_bytes: 4096,
                dropped: 3,
                disk_bytes: None,
            }),
        }
    }

    fn text_of(sample: HostSample) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Fixed(sample)));
        super::super::http::render(&registry, false).unwrap()
    }

    #[test]
    fn the_sample_becomes_conventional_series() {
        let text = text_of(sample(1_000));
        for line in [
            "bpftop_process_execs_total 4",
            "bpftop_process_exits_total 5",
            "bpftop_viewers 2",
            "bpftop_processes{mode=\"poll\",state=\"running\"} 2",
            "bpftop_processes{mode=\"poll\",state=\"zombie\"} 1",
            "bpftop_tcp_connections{mode=\"poll\",state=\"established\"} 4",
            "bpftop_tcp_sent_bytes_total{mode=\"poll\"} 1000",
            "bpftop_table_rows{mode=\"poll\",table=\"connections\"} 6",
            // A hostile process name is escaped, not a new line of the exposition.
            "bpftop_processes_by_comm{mode=\"poll\",comm=\"we\\\"ird\\nname\"} 2",
            "bpftop_processes_by_comm{mode=\"poll\",comm=\"other\"} 1",
            "bpftop_mode_lag_seconds_bucket{mode=\"poll\",le=\"0.0001\"} 1",
            "bpftop_mode_lag_seconds_bucket{mode=\"poll\",le=\"10\"} 14",
            "bpftop_mode_lag_seconds_bucket{mode=\"poll\",le=\"+Inf\"} 20",
            "bpftop_mode_lag_seconds_sum{mode=\"poll\"} 2.5",
            "bpftop_mode_lag_seconds_count{mode=\"poll\"} 20",
            "bpftop_recording_up 0",
            "bpftop_recording_written_bytes_total 4096",
            "bpftop_recording_dropped_records_total 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(
            !text.contains("bpftop_recording_disk"),
            "an unknown disk size is left out, not 0"
        );
    }

    #[test]
    fn byte_counters_never_go_down() {
        let guard = MonotonicGuard::default();
        assert_eq!(guard.apply(sample(1_000)).modes[0].sent_bytes, 1_000);
        assert_eq!(guard.apply(sample(400)).modes[0].sent_bytes, 1_000);
        assert_eq!(guard.apply(sample(1_500)).modes[0].sent_bytes, 1_500);
    }
}
