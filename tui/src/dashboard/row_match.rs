//! Filter evaluation against the two row types: field terms read the row's raw fields; plain
//! text is matched against every column's formatted text (what the user sees), case-insensitively.

use bridge::contract::{ConnectionRow, ProcessRow};

use super::filter::{Field, FilterSubject, ProcessState, Term};
use crate::model::columns::{endpoint, RowContext, CONNECTION_COLUMNS, PROCESS_COLUMNS};

/// A process row seen through the filter.
pub struct ProcessSubject<'a> {
    /// The row.
    pub row: &'a ProcessRow,
    /// Formatting context (user names, CPU%, now).
    pub ctx: &'a RowContext<'a>,
}

impl FilterSubject for ProcessSubject<'_> {
    fn matches_named(&self, term: &Term) -> bool {
        match term {
            Term::ProcessState(ProcessState::Running) => !self.row.is_exited(),
            Term::ProcessState(ProcessState::Exited) => self.row.is_exited(),
            _ => false,
        }
    }

    fn contains_text(&self, needle: &str) -> bool {
        PROCESS_COLUMNS
            .iter()
            .any(|c| (c.text)(self.row, self.ctx).to_lowercase().contains(needle))
    }

    fn texts(&self, field: Field) -> Vec<String> {
        match field {
            Field::Comm => vec![self.row.comm()],
            Field::User => vec![self.ctx.users.name_or_uid(self.row.state.uid)],
            Field::Cmd => self.ctx.command_text(self.row).into_iter().collect(),
            Field::Cgroup => self.ctx.cgroup_path(self.row).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn numbers(&self, field: Field) -> Vec<f64> {
        let row = self.row;
        let value = match field {
            Field::Pid => Some(row.pid() as f64),
            Field::Ppid => Some(row.state.ppid as f64),
            Field::Uid => Some(row.state.uid as f64),
            Field::Cpu => self.ctx.cpu.percent(&row.key),
            Field::CpuTime => Some(row.state.cpu_ns as f64),
            Field::Age => Some(self.ctx.now_ns.saturating_sub(row.key.start_ns) as f64),
            Field::Exit => row.exit_status().map(f64::from),
            Field::Rss => row.rss_bytes().map(|b| b as f64),
            Field::Virt => row.virt_bytes().map(|b| b as f64),
            Field::Mem => self.ctx.mem_percent(row),
            Field::Nice => Some(row.nice() as f64),
            Field::Threads => (row.state.threads > 0).then_some(row.state.threads as f64),
            Field::Sent | Field::Recv => {
                let bytes = self.ctx.process_traffic(row).and_then(|t| t.bytes);
                bytes.map(|(sent, received)| {
                    if field == Field::Sent {
                        sent as f64
                    } else {
                        received as f64
                    }
                })
            }
            _ => None,
        };
        value.into_iter().collect()
    }
}

/// A connection row seen through the filter.
pub struct ConnectionSubject<'a> {
    /// The row.
    pub row: &'a ConnectionRow,
    /// Formatting context.
    pub ctx: &'a RowContext<'a>,
}

impl FilterSubject for ConnectionSubject<'_> {
    fn matches_named(&self, term: &Term) -> bool {
        let row = self.row;
        match term {
            Term::TcpStates(mask) => {
                row.state.tcp_state < 32 && mask & (1 << row.state.tcp_state) != 0
            }
            Term::Family(family) => row.family_number() == *family,
            _ => false,
        }
    }

    fn contains_text(&self, needle: &str) -> bool {
        CONNECTION_COLUMNS
            .iter()
            .any(|c| (c.text)(self.row, self.ctx).to_lowercase().contains(needle))
    }

    fn texts(&self, field: Field) -> Vec<String> {
        let row = self.row;
        match field {
            Field::Comm => self.ctx.owner_comm(row).into_iter().collect(),
            Field::Addr => vec![
                endpoint(row.saddr(), row.key.sport),
                endpoint(row.daddr(), row.key.dport),
            ],
            _ => Vec::new(),
        }
    }

    fn numbers(&self, field: Field) -> Vec<f64> {
        let row = self.row;
        match field {
            Field::Pid => row.owner_pid().map(f64::from).into_iter().collect(),
            Field::Port => vec![row.key.sport as f64, row.key.dport as f64],
            Field::Sport => vec![row.key.sport as f64],
            Field::Dport => vec![row.key.dport as f64],
            Field::Sent => row.bytes().map(|(s, _)| s as f64).into_iter().collect(),
            Field::Recv => row.bytes().map(|(_, r)| r as f64).into_iter().collect(),
            Field::Age => row
                .start_ns()
                .map(|start| self.ctx.now_ns.saturating_sub(start) as f64)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        dashboard::filter::{parse, FilterTable},
        model::{process_cpu::ProcessCpu, user_names::UserNames},
    };

    use probe_common::{ConnKey, ConnState, ProcKey, ProcState};

    /// Whether `text`, parsed as a processes filter, matches `row`.
    fn process_matches(row: &ProcessRow, ctx: &RowContext, text: &str) -> bool {
        let subject = ProcessSubject { row, ctx };
        parse(text, FilterTable::Processes)
            .unwrap()
            .matches(&subject)
    }

    /// Whether `text`, parsed as a connections filter, matches `row`.
    fn connection_matches(row: &ConnectionRow, ctx: &RowContext, text: &str) -> bool {
        let subject = ConnectionSubject { row, ctx };
        parse(text, FilterTable::Connections)
            .unwrap()
            .matches(&subject)
    }

    fn comm(name: &str) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..name.len()].copy_from_slice(name.as_bytes());
        c
    }

    #[test]
    fn process_terms() {
        let users = UserNames::fixed(&[(33, "www-data")]);
        let cpu = ProcessCpu::default();
        let ctx = RowContext::new(30_000_000_001, &cpu, &users);
        let row = ProcessRow::from_record(
            ProcKey::new(123, 1),
            ProcState {
                ppid: 1,
                uid: 33,
                cpu_ns: 1_500_000_000,
                comm: comm("nginx"),
                ..Default::default()
            },
            1,
            1,
        );
        let yes = |text: &str| process_matches(&row, &ctx, text);
        assert!(yes("comm:NGI pid:123 ppid:1 uid:33 user:www state:running"));
        assert!(yes("WWW-DATA"), "plain text sees the USER column");
        assert!(!yes("pid:124"));
        assert!(!yes("state:exited"));
        // Numbers, with units, on every numeric field the row has.
        assert!(yes(
            "pid>=123 pid<=123 pid>100 pid<200 pid!=124 ppid=1 uid<1000"
        ));
        assert!(!yes("pid>123") && !yes("pid<123") && !yes("uid>=1000"));
        assert!(yes("cpu_time>1s cpu_time<=1500ms cpu_time<2s"));
        assert!(!yes("cpu_time>1.5s"));
        assert!(yes("age>=30s age<1m age>29999ms") && !yes("age>30s"));
        // CPU% is unknown before two samples, a running process has no exit status: no
        // comparison holds, their negations do.
        assert!(!yes("cpu>=0") && yes("-cpu>=0"));
        assert!(!yes("exit=0") && yes("exit!=0"));
        // Whole-value, regex, negation, OR.
        assert!(yes("comm=NGINX user=www-data") && !yes("comm=ngin"));
        assert!(yes("comm~^ng.nx$ user~^www") && !yes("comm~^x"));
        assert!(yes("-comm:sleep") && !yes("-comm:nginx"));
        assert!(yes("comm:sleep | pid=123") && !yes("comm:sleep | pid=1"));
        assert!(yes("comm:nginx pid=123 | comm:sleep"));
        assert!(
            !yes("comm:nginx pid=1 | comm:sleep"),
            "AND binds tighter than OR"
        );
    }

    #[test]
    fn memory_command_line_and_cgroup_terms() {
        use bridge::cmdlines::CommandLines;
        let users = UserNames::default();
        let cpu = ProcessCpu::default();
        let key = ProcKey::new(400, 5);
        let mut raw = probe_common::Cmdline::default();
        raw.bytes[..23].copy_from_slice(b"python3\0-m\0http.server\0");
        raw.len = 23;
        let mut lines = CommandLines::default();
        lines.absorb(&[(key, raw)]);
        let ctx = RowContext {
            cmdlines: Some(&lines),
            mem_total_bytes: Some(1 << 30),
            ..RowContext::new(10, &cpu, &users)
        };
        let row = ProcessRow::from_record(
            key,
            ProcState {
                nice: -5,
                threads: 3,
                rss_bytes: 200 << 20,
                virt_bytes: 2 << 30,
                flags: probe_common::proc_flags::RSS_KNOWN,
                comm: comm("python3"),
                ..Default::default()
            },
            1,
            1,
        );
        let yes = |text: &str| process_matches(&row, &ctx, text);
        assert!(yes(
            "rss>100M rss<=200M virt=2G mem>19 mem<20 nice<0 nice=-5 threads=3"
        ));
        assert!(!yes("rss>200M") && !yes("nice>=0") && !yes("mem>20"));
        assert!(yes("cmd:http.server cmd~^python3\\s-m") && !yes("cmd:django"));
        assert!(yes("http.server"), "plain text sees the COMMAND column");
        // Unknown: no cgroup resolver, no traffic computed; no comparison holds.
        assert!(!yes("cgroup:/") && yes("-cgroup:x"));
        assert!(!yes("sent>=0") && !yes("recv>=0"));
    }

    #[test]
    fn connection_terms() {
        let users = UserNames::default();
        let cpu = ProcessCpu::default();
        let ctx = RowContext::new(10, &cpu, &users);
        let key = ConnKey::ipv4([10, 0, 0, 5], 443, [93, 184, 216, 34], 51000);
        let row = ConnectionRow::from_record(
            key,
            ConnState {
                pid: 7,
                tcp_state: 1,
                flags: probe_common::conn_flags::OWNER_KNOWN,
                comm: comm("nginx"),
                start_ns: 4,
                bytes_sent: 3 << 20,
                bytes_received: 1000,
                ..Default::default()
            },
            1,
            1,
        );
        let yes = |text: &str| connection_matches(&row, &ctx, text);
        assert!(yes(
            "port:443 port:51000 state:estab addr:93.184 family:4 pid:7 comm:nginx"
        ));
        assert!(yes("10.0.0.5:443"));
        assert!(!yes("state:listen"));
        assert!(!yes("family:6"));
        assert!(!yes("port:80"));
        // Ports: `port` is either end, sport / dport one each.
        assert!(yes("port<1024 port>50000 sport=443 dport=51000"));
        assert!(!yes("sport=51000") && !yes("dport<1024") && !yes("port>60000"));
        assert!(yes("port!=80") && !yes("port!=443"));
        // Bytes, binary units.
        assert!(yes(
            "sent>=3M sent<=3072K sent>2.9M sent<3.1M recv<1K recv=1000"
        ));
        assert!(!yes("sent>3M") && !yes("recv>=1K"));
        // Age (now 10 ns, started at 4).
        assert!(yes("age=6ns age<1us") && !yes("age>1s"));
        assert!(yes("addr~^93\\.184 -addr:10.1.") && !yes("addr~^192"));
        assert!(yes("state!=listen family=4"));
        // Unknown byte counts and start match no comparison.
        let mut unknown = row.clone();
        unknown.state.flags |=
            probe_common::conn_flags::BYTES_UNKNOWN | probe_common::conn_flags::START_UNKNOWN;
        let holds = |text: &str| connection_matches(&unknown, &ctx, text);
        assert!(!holds("sent>=0") && !holds("recv<1G") && !holds("age>=0"));
        assert!(holds("-sent>=0"));
        // An unknown owner matches no owner term.
        let mut ownerless = row.clone();
        ownerless.state.flags = 0;
        let matches = |text: &str| connection_matches(&ownerless, &ctx, text);
        assert!(!matches("pid:7"));
        assert!(!matches("comm:nginx"));
    }
}
