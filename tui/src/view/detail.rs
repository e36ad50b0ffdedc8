//! The detail pane (Enter): every field of the row under the cursor, in words and exact
//! numbers; for a process, its CPU% history over the last refreshes as a sparkline.

use bridge::contract::{tcp_states_in_mask, ConnectionRow, ProcessRow, RowOrigin};
use probe_common::conn_flags;
use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Sparkline, Wrap},
    Frame,
};

use super::popup::{frame_popup, text_popup};
use crate::{
    dashboard::app::{App, Tab},
    model::{
        columns::{endpoint, RowContext, UNKNOWN},
        format,
        process_cpu::CpuHistory,
    },
    theme::Theme,
};
use unicode_width::UnicodeWidthStr;

/// Width of the field-name column.
const NAME_WIDTH: usize = 13;

fn field(theme: &Theme, name: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:<NAME_WIDTH$}"), theme.panel_label),
        Span::styled(value, theme.popup_text),
    ])
}

fn ago(now_ns: u64, at_ns: u64) -> String {
    format!("{} ago", format::age(now_ns.saturating_sub(at_ns)))
}

/// The sequence number of the last change applied, and how long ago it happened (when known).
fn last_change(now_ns: u64, seq: u64, changed_ns: u64) -> String {
    if changed_ns == 0 {
        format!("seq {seq}")
    } else {
        format!("seq {seq}, {}", ago(now_ns, changed_ns))
    }
}

fn origin_text(origin: RowOrigin) -> String {
    match origin {
        RowOrigin::Kernel => "kernel (probe record or state map)".into(),
        RowOrigin::Procfs => {
            "· /proc seed at start-up (the probes have not reported it yet)".into()
        }
    }
}

/// Lines describing a process.
pub fn process_lines(app: &App, row: &ProcessRow, ctx: &RowContext) -> Vec<Line<'static>> {
    let theme = app.theme();
    let now = ctx.now_ns;
    let parent = app
        .process_table()
        .latest_for_tgid(row.state.ppid)
        .filter(|p| !p.is_exited())
        .map(|p| format!(" ({})", p.comm()))
        .unwrap_or_default();
    let letter = row.task_state();
    let state = match row.exit_status() {
        None => format!(
            "running, {letter} ({})",
            bridge::contract::task_state::describe(letter)
        ),
        Some(status) => {
            let how = match row.exit_signal() {
                None => format!("status {status}"),
                Some(signal) => {
                    let name = format::signal_name(signal as i32)
                        .map_or_else(|| format!("signal {signal}"), |n| n.to_string());
                    let core = if row.core_dumped() {
                        ", core dumped"
                    } else {
                        ""
                    };
                    format!("killed by {name}{core} (status {status})")
                }
            };
            let reaped = if letter == 'Z' {
                "zombie: not reaped yet"
            } else {
                "reaped"
            };
            let when = row.exit_ns().map_or_else(
                || format!("{UNKNOWN} (before the probes attached)"),
                |t| ago(now, t),
            );
            format!("exited {when}, {how}; {reaped}")
        }
    };
    let partial = row.state.flags & probe_common::proc_flags::CPU_PARTIAL != 0;
    let cpu_time = format!(
        "{}{} lifetime, all threads ({} ns{})",
        if partial { "≥" } else { "" },
        format::cpu_time(row.state.cpu_ns),
        row.state.cpu_ns,
        if partial {
            "; more threads than the probes sum"
        } else {
            ""
        }
    );
    let sampled = if row.state.sampled_ns == 0 {
        UNKNOWN.to_string()
    } else {
        ago(now, row.state.sampled_ns)
    };
    let cpu_now = ctx
        .cpu
        .percent(&row.key)
        .map_or("– (needs two samples)".into(), |p| {
            format!("{}% of one core", format::percent(p))
        });
    vec![
        field(theme, "pid", row.pid().to_string()),
        field(theme, "parent", format!("{}{parent}", row.state.ppid)),
        field(
            theme,
            "user",
            format!(
                "{} (uid {})",
                ctx.users.name_or_uid(row.state.uid),
                row.state.uid
            ),
        ),
        field(theme, "name", row.comm()),
        field(
            theme,
            "command line",
            ctx.command_text(row).unwrap_or_else(|| {
                format!("{UNKNOWN} (no exec seen since the probes attached, parent's unknown)")
            }),
        ),
        field(
            theme,
            "cgroup",
            ctx.cgroup_path(row).unwrap_or_else(|| UNKNOWN.to_string()),
        ),
        field(theme, "state", state),
        field(
            theme,
            "threads",
            match row.state.threads {
                0 => UNKNOWN.to_string(),
                n => n.to_string(),
            },
        ),
        field(
            theme,
            "kind",
            if row.is_kernel_thread() {
                "kernel thread"
            } else {
                "user process"
            }
            .into(),
        ),
        field(
            theme,
            "started",
            format!(
                "{} (monotonic {} ns)",
                ago(now, row.key.start_ns),
                row.key.start_ns
            ),
        ),
        field(theme, "cpu time", cpu_time),
        field(theme, "cpu now", cpu_now),
        field(theme, "nice", row.nice().to_string()),
        field(
            theme,
            "resident",
            row.rss_bytes().map_or_else(
                || {
                    let why = if row.is_kernel_thread() {
                        "kernel thread"
                    } else if row.is_exited() {
                        "exited"
                    } else {
                        "no address space"
                    };
                    format!("{UNKNOWN} ({why})")
                },
                |b| {
                    let share = ctx.mem_percent(row).map_or_else(String::new, |p| {
                        format!(", {}% of memory", format::percent(p))
                    });
                    format!("{} ({b} bytes, VmRSS{share})", format::bytes(b))
                },
            ),
        ),
        field(
            theme,
            "virtual",
            row.virt_bytes().map_or_else(
                || UNKNOWN.to_string(),
                |b| format!("{} ({b} bytes, VmSize)", format::bytes(b)),
            ),
        ),
        field(theme, "sampled", sampled),
        field(
            theme,
            "last change",
            last_change(now, row.seq, row.changed_ns),
        ),
        field(theme, "origin", origin_text(row.origin)),
        field(
            theme,
            "net sent",
            process_bytes_text(ctx, row, |b| b.0, true),
        ),
        field(
            theme,
            "net received",
            process_bytes_text(ctx, row, |b| b.1, false),
        ),
        field(
            theme,
            "net now",
            rates_text(ctx.process_traffic(row).and_then(|t| t.rates)),
        ),
    ]
}

/// A (sent, received) rate pair in words; unknown until two samples.
fn rates_text(rates: Option<(f64, f64)>) -> String {
    match rates {
        None => format!("{UNKNOWN} (needs two samples)"),
        Some((sent, received)) => format!(
            "{}/s sent, {}/s received",
            format::bytes(sent.max(0.0).round() as u64),
            format::bytes(received.max(0.0).round() as u64)
        ),
    }
}

/// A process's lifetime bytes in one direction over its connections in the table (and, with
/// `count`, how many connections those are).
fn process_bytes_text(
    ctx: &RowContext,
    row: &ProcessRow,
    direction: fn((u64, u64)) -> u64,
    count: bool,
) -> String {
    let Some(traffic) = ctx.process_traffic(row) else {
        return UNKNOWN.to_string();
    };
    let n = traffic.connections;
    let over = if count {
        format!(", {n} connection{}", if n == 1 { "" } else { "s" })
    } else {
        String::new()
    };
    match traffic.bytes.map(direction) {
        None => format!("{UNKNOWN} (a connection's counts are unknown){over}"),
        Some(b) => format!("{} ({b} bytes){over}", format::bytes(b)),
    }
}

/// Lines describing a connection.
pub fn connection_lines(app: &App, row: &ConnectionRow, ctx: &RowContext) -> Vec<Line<'static>> {
    let theme = app.theme();
    let now = ctx.now_ns;
    let owner = match (row.owner_pid(), ctx.owner_comm(row)) {
        (Some(pid), Some(comm)) => {
            let how = if row.state.flags & conn_flags::OWNER_FROM_LISTENER != 0 {
                " (the listener's owner; no I/O yet)"
            } else {
                ""
            };
            format!("pid {pid} {comm}{how}")
        }
        _ => format!("{UNKNOWN} (never seen in process context)"),
    };
    // The kernel keeps a set of states, not their order: list them in state-number order.
    let seen = tcp_states_in_mask(row.state.states_seen_mask).join(", ");
    let opened = match row.start_ns() {
        None => format!("{UNKNOWN} (before the probes attached)"),
        Some(start) => ago(now, start),
    };
    let closed = match (row.is_closed(), row.end_ns()) {
        (false, _) => "open".to_string(),
        (true, None) => format!("{UNKNOWN} (closed before the probes attached: TIME-WAIT)"),
        (true, Some(end)) => {
            let lifetime = row
                .start_ns()
                .map(|start| format!(", after {}", format::age(end.saturating_sub(start))))
                .unwrap_or_default();
            format!("{}{lifetime}", ago(now, end))
        }
    };
    let bytes = |value: Option<u64>| {
        value.map_or_else(
            || UNKNOWN.to_string(),
            |b| format!("{} ({b} bytes)", format::bytes(b)),
        )
    };
    vec![
        field(
            theme,
            "protocol",
            format!("tcp, IPv{}", row.family_number()),
        ),
        field(theme, "local", endpoint(row.saddr(), row.key.sport)),
        field(theme, "remote", endpoint(row.daddr(), row.key.dport)),
        field(
            theme,
            "state",
            bridge::contract::tcp_state_name(row.state.tcp_state).to_string(),
        ),
        field(
            theme,
            "states seen",
            if seen.is_empty() { "–".into() } else { seen },
        ),
        field(theme, "owner", owner),
        field(theme, "sent", bytes(row.bytes().map(|b| b.0))),
        field(theme, "received", bytes(row.bytes().map(|b| b.1))),
        field(theme, "rate", rates_text(ctx.connection_rates(row))),
        field(theme, "opened", opened),
        field(theme, "closed", closed),
        field(
            theme,
            "last change",
            last_change(now, row.seq, row.changed_ns),
        ),
        field(theme, "origin", origin_text(row.origin)),
    ]
}

/// Draws the detail popup for the row under the cursor (nothing when there is none).
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let ctx = app.row_context();
    let theme = app.theme();
    match app.tab() {
        Tab::Processes => {
            let Some(row) = app.cursor_process() else {
                return;
            };
            let lines = process_lines(app, row, &ctx);
            let history: Vec<u64> = ctx
                .cpu
                .history(&row.key)
                .map(|h| h.iter().collect())
                .unwrap_or_default();
            let peak_point = history.iter().copied().max().unwrap_or(0);
            let peak = peak_point as f64 / 10.0;
            // A point at the history's maximum may stand for more (see `CpuHistory`).
            let at_least = if peak_point >= CpuHistory::MAX_POINT {
                "≥"
            } else {
                ""
            };
            let title = format!("Process {} — {}", row.pid(), row.comm());
            let (popup, text_rows) = text_popup(&lines, area, title.width() as u16 + 2, 3);
            let inner = frame_popup(frame, popup, &title, theme);
            let text_height = text_rows.min(inner.height);
            frame.render_widget(
                Paragraph::new(lines).wrap(Wrap { trim: false }),
                Rect::new(inner.x, inner.y, inner.width, text_height),
            );
            if inner.height >= text_height + 3 {
                let label_y = inner.y + text_height + 1;
                frame.render_widget(
                    Paragraph::new(Span::styled(
                        format!(
                            "CPU% over the last {} refreshes (peak {at_least}{}%)",
                            history.len(),
                            format::percent(peak)
                        ),
                        theme.panel_label,
                    )),
                    Rect::new(inner.x, label_y, inner.width, 1),
                );
                let spark = Rect::new(inner.x, label_y + 1, inner.width, 1);
                let shown = &history[history.len().saturating_sub(spark.width as usize)..];
                frame.render_widget(
                    Sparkline::default()
                        .data(shown)
                        .style(theme.sparkline_events),
                    spark,
                );
            }
        }
        Tab::Connections => {
            let Some(row) = app.cursor_connection() else {
                return;
            };
            let lines = connection_lines(app, row, &ctx);
            let title = format!(
                "Connection {} → {}",
                endpoint(row.saddr(), row.key.sport),
                endpoint(row.daddr(), row.key.dport)
            );
            let (popup, _) = text_popup(&lines, area, title.width() as u16 + 2, 0);
            let inner = frame_popup(frame, popup, &title, theme);
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        }
    }
}
