//! The filter language of the `/` prompt: whitespace-separated terms, all of which must match
//! (AND).
//!
//! - plain text (`nginx`, `"two words"`, `10.0.0.1:443`) matches any column of the row,
//!   case-insensitively, as a substring;
//! - `field:value` matches one field. Processes have `comm`, `pid`, `ppid`, `uid`, `user`,
//!   `state` (`running` / `exited`); connections have `comm`, `pid`, `state` (TCP state as `ss`
//!   names it; a prefix such as `fin` matches every state it starts), `port` (local or remote),
//!   `addr` (local or remote address, substring) and `family` (`4` / `6`).
//!
//! A word before a colon counts as a field name only when it is alphabetic, so addresses and
//! `host:port` text with digits stay plain text; quote anything else. Parsing checks every value
//! (numbers, state names) so that an invalid term is reported, with its position, instead of
//! silently matching nothing.

use std::ops::Range;

/// Which table a filter is parsed for: the fields differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterTable {
    /// The processes table.
    Processes,
    /// The connections table.
    Connections,
}

impl FilterTable {
    /// Field names accepted for this table, in help order.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            FilterTable::Processes => &["comm", "pid", "ppid", "uid", "user", "state"],
            FilterTable::Connections => &["comm", "pid", "state", "port", "addr", "family"],
        }
    }
}

/// A process state a filter can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessState {
    /// Still running.
    Running,
    /// Exited (kept until retention removes it).
    Exited,
}

/// One term of a filter. Text values are stored lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// Substring of any column, case-insensitive.
    Text(String),
    /// Substring of `comm`, case-insensitive.
    Comm(String),
    /// Exact pid (the owner's pid for connections).
    Pid(u32),
    /// Exact parent pid.
    Ppid(u32),
    /// Exact uid.
    Uid(u32),
    /// Substring of the user name, case-insensitive.
    User(String),
    /// Process state.
    ProcessState(ProcessState),
    /// TCP states: bit `1 << s` for every accepted kernel state number `s`.
    TcpStates(u32),
    /// Local or remote port.
    Port(u16),
    /// Substring of the local or remote address, case-insensitive.
    Addr(String),
    /// Address family: 4 or 6.
    Family(u8),
}

/// A parsed filter: the AND of its terms. The empty filter matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// The terms, in input order.
    pub terms: Vec<Term>,
}

/// What a filter is evaluated against: one row, with whatever it needs to answer (its
/// formatted columns for plain text, a user-name lookup for `user:`).
pub trait FilterSubject {
    /// Whether a field term holds for this row. A term for a field the row does not have is
    /// false (parsing already rejects those, per table).
    fn matches_field(&self, term: &Term) -> bool;
    /// Whether any column's text contains `needle` (already lower-cased).
    fn contains_text(&self, needle: &str) -> bool;
}

impl Filter {
    /// True when the filter has no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether every term holds for `subject`.
    pub fn matches(&self, subject: &impl FilterSubject) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Text(needle) => subject.contains_text(needle),
            field => subject.matches_field(field),
        })
    }
}

/// Why a filter did not parse: the offending term, where it is, and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// The term as typed.
    pub term: String,
    /// Byte range of the term in the input (for highlighting).
    pub span: Range<usize>,
    /// What is wrong and what would be valid.
    pub reason: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.term, self.reason)
    }
}

impl std::error::Error for FilterError {}

/// TCP state names in kernel numbering (1..=12), as `ss` prints them.
const TCP_STATES: [&str; 12] = [
    "ESTABLISHED",
    "SYN-SENT",
    "SYN-RECV",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "TIME-WAIT",
    "CLOSE",
    "CLOSE-WAIT",
    "LAST-ACK",
    "LISTEN",
    "CLOSING",
    "NEW-SYN-RECV",
];

/// Parses `input` for `table`. Whitespace separates terms; double quotes group a plain-text
/// term with spaces (an unclosed quote runs to the end).
pub fn parse(input: &str, table: FilterTable) -> Result<Filter, FilterError> {
    let mut terms = Vec::new();
    for (token, span) in tokens(input) {
        terms.push(parse_term(token, span, table)?);
    }
    Ok(Filter { terms })
}

/// Splits into (token, byte span) pairs; a quoted token is returned without its quotes but
/// flagged by its span starting at the quote.
fn tokens(input: &str) -> Vec<(&str, Range<usize>)> {
    let mut out = Vec::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if bytes[i] == b'"' {
            let close = input[i + 1..].find('"').map(|p| i + 1 + p);
            let end = close.unwrap_or(input.len());
            out.push((&input[start..end.min(input.len())], start..end));
            i = close.map_or(input.len(), |c| c + 1);
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push((&input[start..i], start..i));
        }
    }
    out
}

fn parse_term(token: &str, span: Range<usize>, table: FilterTable) -> Result<Term, FilterError> {
    if let Some(quoted) = token.strip_prefix('"') {
        return Ok(Term::Text(quoted.to_lowercase()));
    }
    let error = |reason: String| FilterError {
        term: token.to_string(),
        span: span.clone(),
        reason,
    };
    let Some((field, value)) = token.split_once(':') else {
        return Ok(Term::Text(token.to_lowercase()));
    };
    if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphabetic()) {
        return Ok(Term::Text(token.to_lowercase()));
    }
    let field = field.to_ascii_lowercase();
    let fields = table.fields();
    if !fields.contains(&field.as_str()) {
        let table_name = match table {
            FilterTable::Processes => "processes",
            FilterTable::Connections => "connections",
        };
        return Err(error(format!(
            "unknown field `{field}` for {table_name} (fields: {}; or quote the text)",
            fields.join(", ")
        )));
    }
    if value.is_empty() {
        return Err(error(format!("`{field}:` needs a value")));
    }
    let number = |what: &str| -> Result<u32, FilterError> {
        value
            .parse::<u32>()
            .map_err(|_| error(format!("{what} must be a number, not `{value}`")))
    };
    Ok(match (field.as_str(), table) {
        ("comm", _) => Term::Comm(value.to_lowercase()),
        ("pid", _) => Term::Pid(number("pid")?),
        ("ppid", _) => Term::Ppid(number("ppid")?),
        ("uid", _) => Term::Uid(number("uid")?),
        ("user", _) => Term::User(value.to_lowercase()),
        ("state", FilterTable::Processes) => match value.to_ascii_lowercase().as_str() {
            "running" | "run" | "r" => Term::ProcessState(ProcessState::Running),
            "exited" | "exit" | "x" => Term::ProcessState(ProcessState::Exited),
            _ => {
                return Err(error(format!(
                    "process state must be `running` or `exited`, not `{value}`"
                )))
            }
        },
        ("state", FilterTable::Connections) => {
            let wanted = value.to_ascii_uppercase().replace('_', "-");
            let exact = TCP_STATES.iter().position(|s| *s == wanted);
            let mask = match exact {
                Some(index) => 1 << (index + 1),
                None => TCP_STATES
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.starts_with(&wanted))
                    .fold(0u32, |mask, (index, _)| mask | 1 << (index + 1)),
            };
            if mask == 0 {
                return Err(error(format!(
                    "unknown TCP state `{value}` (states: {})",
                    TCP_STATES.join(", ")
                )));
            }
            Term::TcpStates(mask)
        }
        ("port", _) => Term::Port(value.parse::<u16>().map_err(|_| {
            error(format!(
                "port must be a number from 0 to 65535, not `{value}`"
            ))
        })?),
        ("addr", _) => Term::Addr(value.to_lowercase()),
        ("family", _) => match value {
            "4" | "ipv4" | "inet" => Term::Family(4),
            "6" | "ipv6" | "inet6" => Term::Family(6),
            _ => return Err(error(format!("family must be 4 or 6, not `{value}`"))),
        },
        _ => unreachable!("field list and match arms agree"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn procs(input: &str) -> Result<Filter, FilterError> {
        parse(input, FilterTable::Processes)
    }

    fn conns(input: &str) -> Result<Filter, FilterError> {
        parse(input, FilterTable::Connections)
    }

    #[test]
    fn empty_input_is_the_empty_filter() {
        assert!(procs("").unwrap().is_empty());
        assert!(procs("   ").unwrap().is_empty());
    }

    #[test]
    fn terms_combine_in_order() {
        let f = procs("comm:NGINX pid:123 Worker").unwrap();
        assert_eq!(
            f.terms,
            vec![
                Term::Comm("nginx".into()),
                Term::Pid(123),
                Term::Text("worker".into())
            ]
        );
    }

    #[test]
    fn digits_before_a_colon_stay_text() {
        assert_eq!(
            conns("10.0.0.1:443").unwrap().terms,
            vec![Term::Text("10.0.0.1:443".into())]
        );
        assert_eq!(
            conns("[::1]:22").unwrap().terms,
            vec![Term::Text("[::1]:22".into())]
        );
    }

    #[test]
    fn quotes_group_text_and_bypass_fields() {
        assert_eq!(
            procs("\"Web Server\" \"comm:x\"").unwrap().terms,
            vec![Term::Text("web server".into()), Term::Text("comm:x".into())]
        );
        // An unclosed quote runs to the end.
        assert_eq!(
            procs("\"half open").unwrap().terms,
            vec![Term::Text("half open".into())]
        );
    }

    #[test]
    fn numbers_are_checked() {
        let e = procs("comm:sh pid:abc").unwrap_err();
        assert_eq!(e.term, "pid:abc");
        assert_eq!(e.span, 8..15);
        assert!(e.reason.contains("must be a number"), "{}", e.reason);
        assert!(conns("port:70000")
            .unwrap_err()
            .reason
            .contains("0 to 65535"));
        assert_eq!(conns("port:443").unwrap().terms, vec![Term::Port(443)]);
    }

    #[test]
    fn unknown_fields_list_the_valid_ones_per_table() {
        let e = procs("port:443").unwrap_err();
        assert!(e.reason.contains("unknown field `port` for processes"));
        assert!(e.reason.contains("comm, pid, ppid, uid, user, state"));
        let e = conns("ppid:1").unwrap_err();
        assert!(e.reason.contains("comm, pid, state, port, addr, family"));
    }

    #[test]
    fn empty_values_are_errors() {
        assert!(procs("comm:").unwrap_err().reason.contains("needs a value"));
    }

    #[test]
    fn tcp_states_accept_names_and_prefixes() {
        assert_eq!(
            conns("state:established").unwrap().terms,
            vec![Term::TcpStates(1 << 1)]
        );
        // CLOSE is exact even though CLOSE-WAIT and CLOSING start with it.
        assert_eq!(
            conns("state:CLOSE").unwrap().terms,
            vec![Term::TcpStates(1 << 7)]
        );
        assert_eq!(
            conns("state:fin").unwrap().terms,
            vec![Term::TcpStates((1 << 4) | (1 << 5))]
        );
        assert_eq!(
            conns("state:time_wait").unwrap().terms,
            vec![Term::TcpStates(1 << 6)]
        );
        let e = conns("state:ESTABLISHD").unwrap_err();
        assert!(e.reason.contains("unknown TCP state"));
        assert!(e.reason.contains("LISTEN"));
    }

    #[test]
    fn process_states() {
        assert_eq!(
            procs("state:Exited").unwrap().terms,
            vec![Term::ProcessState(ProcessState::Exited)]
        );
        assert!(procs("state:zombie")
            .unwrap_err()
            .reason
            .contains("`running` or `exited`"));
    }

    struct Fake {
        pid: u32,
        text: &'static str,
    }

    impl FilterSubject for Fake {
        fn matches_field(&self, term: &Term) -> bool {
            matches!(term, Term::Pid(p) if *p == self.pid)
        }
        fn contains_text(&self, needle: &str) -> bool {
            self.text.contains(needle)
        }
    }

    #[test]
    fn evaluation_is_and() {
        let f = procs("pid:5 ngi").unwrap();
        assert!(f.matches(&Fake {
            pid: 5,
            text: "nginx"
        }));
        assert!(!f.matches(&Fake {
            pid: 6,
            text: "nginx"
        }));
        assert!(!f.matches(&Fake { pid: 5, text: "sh" }));
        assert!(Filter::default().matches(&Fake { pid: 0, text: "" }));
    }
}
