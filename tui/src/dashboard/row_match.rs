//! Filter evaluation against the two row types: field terms read the row's raw fields; plain
//! text is matched against every column's formatted text (what the user sees), case-insensitively.

use bridge::contract::{ConnectionRow, ProcessRow};

use super::filter::{FilterSubject, ProcessState, Term};
use crate::model::columns::{endpoint, RowContext, CONNECTION_COLUMNS, PROCESS_COLUMNS};

/// A process row seen through the filter.
pub struct ProcessSubject<'a> {
    /// The row.
    pub row: &'a ProcessRow,
    /// Formatting context (user names, CPU%, now).
    pub ctx: &'a RowContext<'a>,
}

impl FilterSubject for ProcessSubject<'_> {
    fn matches_field(&self, term: &Term) -> bool {
        let row = self.row;
        match term {
            Term::Comm(needle) => row.comm().to_lowercase().contains(needle),
            Term::Pid(pid) => row.pid() == *pid,
            Term::Ppid(ppid) => row.state.ppid == *ppid,
            Term::Uid(uid) => row.state.uid == *uid,
            Term::User(needle) => self
                .ctx
                .users
                .name_or_uid(row.state.uid)
                .to_lowercase()
                .contains(needle),
            Term::ProcessState(ProcessState::Running) => !row.is_exited(),
            Term::ProcessState(ProcessState::Exited) => row.is_exited(),
            _ => false,
        }
    }

    fn contains_text(&self, needle: &str) -> bool {
        PROCESS_COLUMNS
            .iter()
            .any(|c| (c.text)(self.row, self.ctx).to_lowercase().contains(needle))
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
    fn matches_field(&self, term: &Term) -> bool {
        let row = self.row;
        match term {
            Term::Comm(needle) => self
                .ctx
                .owner_comm(row)
                .is_some_and(|comm| comm.to_lowercase().contains(needle)),
            Term::Pid(pid) => row.owner_pid() == Some(*pid),
            Term::TcpStates(mask) => {
                row.state.tcp_state < 32 && mask & (1 << row.state.tcp_state) != 0
            }
            Term::Port(port) => row.key.sport == *port || row.key.dport == *port,
            Term::Addr(needle) => {
                endpoint(row.saddr(), row.key.sport)
                    .to_lowercase()
                    .contains(needle)
                    || endpoint(row.daddr(), row.key.dport)
                        .to_lowercase()
                        .contains(needle)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        dashboard::filter::{parse, FilterTable},
        model::{process_cpu::ProcessCpu, user_names::UserNames},
    };
    use bridge::contract::RowOrigin;
    use probe_common::{ConnKey, ConnState, ProcKey, ProcState, AF_INET};

    fn comm(name: &str) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..name.len()].copy_from_slice(name.as_bytes());
        c
    }

    #[test]
    fn process_terms() {
        let users = UserNames::fixed(&[(33, "www-data")]);
        let cpu = ProcessCpu::default();
        let ctx = RowContext {
            now_ns: 10,
            cpu: &cpu,
            users: &users,
            processes: None,
            net: None,
        };
        let row = ProcessRow {
            key: ProcKey {
                tgid: 123,
                pad: 0,
                start_ns: 1,
            },
            state: ProcState {
                ppid: 1,
                uid: 33,
                comm: comm("nginx"),
                ..Default::default()
            },
            seq: 1,
            changed_ns: 1,
            origin: RowOrigin::Kernel,
        };
        let subject = ProcessSubject {
            row: &row,
            ctx: &ctx,
        };
        let yes = |text: &str| {
            parse(text, FilterTable::Processes)
                .unwrap()
                .matches(&subject)
        };
        assert!(yes("comm:NGI pid:123 ppid:1 uid:33 user:www state:running"));
        assert!(yes("WWW-DATA"), "plain text sees the USER column");
        assert!(!yes("pid:124"));
        assert!(!yes("state:exited"));
    }

    #[test]
    fn connection_terms() {
        let users = UserNames::default();
        let cpu = ProcessCpu::default();
        let ctx = RowContext {
            now_ns: 10,
            cpu: &cpu,
            users: &users,
            processes: None,
            net: None,
        };
        let mut key = ConnKey {
            family: AF_INET,
            sport: 443,
            dport: 51000,
            ..Default::default()
        };
        key.saddr[..4].copy_from_slice(&[10, 0, 0, 5]);
        key.daddr[..4].copy_from_slice(&[93, 184, 216, 34]);
        let row = ConnectionRow {
            key,
            state: ConnState {
                pid: 7,
                tcp_state: 1,
                flags: probe_common::conn_flags::OWNER_KNOWN,
                comm: comm("nginx"),
                ..Default::default()
            },
            seq: 1,
            changed_ns: 1,
            origin: RowOrigin::Kernel,
        };
        let subject = ConnectionSubject {
            row: &row,
            ctx: &ctx,
        };
        let yes = |text: &str| {
            parse(text, FilterTable::Connections)
                .unwrap()
                .matches(&subject)
        };
        assert!(yes(
            "port:443 port:51000 state:estab addr:93.184 family:4 pid:7 comm:nginx"
        ));
        assert!(yes("10.0.0.5:443"));
        assert!(!yes("state:listen"));
        assert!(!yes("family:6"));
        assert!(!yes("port:80"));
        // An unknown owner matches no owner term.
        let mut ownerless = row.clone();
        ownerless.state.flags = 0;
        let subject = ConnectionSubject {
            row: &ownerless,
            ctx: &ctx,
        };
        let matches = |text: &str| {
            parse(text, FilterTable::Connections)
                .unwrap()
                .matches(&subject)
        };
        assert!(!matches("pid:7"));
        assert!(!matches("comm:nginx"));
    }
}
