//! The filter language of the `/` prompt.
//!
//! - Terms are separated by whitespace and all must match (AND). A ` | ` token (spaces around
//!   it) separates groups, and a row is shown when any group matches (OR). AND binds tighter
//!   than OR: `comm:python pid>100 | comm:node` is `(comm:python AND pid>100) OR comm:node`.
//! - plain text (`nginx`, `"two words"`, `10.0.0.1:443`) matches any column of the row,
//!   case-insensitively, as a substring;
//! - `field OP value` matches one field. `OP` is `:` (text: substring; numbers: equal), `=`,
//!   `!=`, `<`, `<=`, `>`, `>=`, or `~` (regular expression, case-insensitive, text fields).
//!   Numbers take the field's unit: `cpu>5` (percent), `sent>=1M` (bytes; `K`, `M`, `G`, `T`
//!   suffixes are binary, 1024-based), `age>10s` (durations: `ns`, `us`, `ms`, `s`, `m`, `h`,
//!   `d`; a bare number is seconds). `x!=v` is the same as `-x=v`.
//! - `-` before any term negates it: `-comm:sleep`, `-"two words"`.
//!
//! Fields per table are [`FilterTable::fields`]. A field with two values (a connection's
//! `port` and `addr`: local and remote) matches when either does. A value the row does not know
//! (`?`, e.g. CPU% before two samples) matches no comparison.
//!
//! A word before an operator counts as a field name only when it is letters and `_`, so
//! addresses and `host:port` text with digits stay plain text; quote anything else. Parsing
//! checks every value (numbers, units, state names, regular expressions) so that an invalid
//! term is reported, with its position, instead of silently matching nothing.

use std::ops::Range;

use regex::{Regex, RegexBuilder};

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
            FilterTable::Processes => &[
                "comm", "cmd", "pid", "ppid", "uid", "user", "state", "cpu", "cpu_time", "age",
                "exit", "rss", "virt", "mem", "nice", "threads", "cgroup", "sent", "recv",
            ],
            FilterTable::Connections => &[
                "comm", "pid", "state", "port", "sport", "dport", "addr", "family", "sent", "recv",
                "age",
            ],
        }
    }

    fn name(self) -> &'static str {
        match self {
            FilterTable::Processes => "processes",
            FilterTable::Connections => "connections",
        }
    }
}

/// A field a term can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Command name (a connection's owner's current name).
    Comm,
    /// Process id (a connection's owner).
    Pid,
    /// Parent pid.
    Ppid,
    /// Real uid.
    Uid,
    /// User name.
    User,
    /// Process state or TCP state.
    State,
    /// CPU% over the refresh window.
    Cpu,
    /// Lifetime CPU time.
    CpuTime,
    /// Time since start.
    Age,
    /// Exit status.
    Exit,
    /// Local or remote port.
    Port,
    /// Local port.
    Sport,
    /// Remote port.
    Dport,
    /// Local or remote address (`addr:port` text).
    Addr,
    /// Address family.
    Family,
    /// Payload bytes sent.
    Sent,
    /// Payload bytes received.
    Recv,
    /// Command line.
    Cmd,
    /// cgroup v2 path.
    Cgroup,
    /// Resident memory, bytes.
    Rss,
    /// Virtual memory, bytes.
    Virt,
    /// Resident memory, % of the host's.
    Mem,
    /// Nice value (-20..19).
    Nice,
    /// Live threads.
    Threads,
}

/// What a field's values are, and so which operators and units it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text: `:` substring, `=` / `!=` whole value, `~` regex (all case-insensitive).
    Text,
    /// Whole numbers.
    Count,
    /// Percent (`5`, `5%`, `2.5`).
    Percent,
    /// Bytes, with binary `K`/`M`/`G`/`T` suffixes.
    Bytes,
    /// Durations (`500ms`, `10s`, `2m`; bare = seconds), compared in ns.
    Duration,
    /// Named states (`state`) or the family: `:`, `=`, `!=` only.
    Named,
}

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "comm" => Field::Comm,
            "pid" => Field::Pid,
            "ppid" => Field::Ppid,
            "uid" => Field::Uid,
            "user" => Field::User,
            "state" => Field::State,
            "cpu" => Field::Cpu,
            "cpu_time" => Field::CpuTime,
            "age" => Field::Age,
            "exit" => Field::Exit,
            "port" => Field::Port,
            "sport" => Field::Sport,
            "dport" => Field::Dport,
            "addr" => Field::Addr,
            "family" => Field::Family,
            "sent" => Field::Sent,
            "recv" => Field::Recv,
            "cmd" => Field::Cmd,
            "cgroup" => Field::Cgroup,
            "rss" => Field::Rss,
            "virt" => Field::Virt,
            "mem" => Field::Mem,
            "nice" => Field::Nice,
            "threads" => Field::Threads,
            _ => return None,
        })
    }

    /// The kind of the field's values.
    pub fn kind(self) -> Kind {
        match self {
            Field::Comm | Field::User | Field::Addr | Field::Cmd | Field::Cgroup => Kind::Text,
            Field::Nice | Field::Threads => Kind::Count,
            Field::Mem => Kind::Percent,
            Field::Rss | Field::Virt => Kind::Bytes,
            Field::Pid | Field::Ppid | Field::Uid | Field::Exit => Kind::Count,
            Field::Port | Field::Sport | Field::Dport => Kind::Count,
            Field::Cpu => Kind::Percent,
            Field::CpuTime | Field::Age => Kind::Duration,
            Field::Sent | Field::Recv => Kind::Bytes,
            Field::State | Field::Family => Kind::Named,
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `=` (and `:` on numbers).
    Eq,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl CmpOp {
    /// Whether `value OP limit` holds.
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            CmpOp::Eq => value == limit,
            CmpOp::Lt => value < limit,
            CmpOp::Le => value <= limit,
            CmpOp::Gt => value > limit,
            CmpOp::Ge => value >= limit,
        }
    }
}

/// A compiled regular expression that compares by its source (so filters can be compared).
#[derive(Clone, Debug)]
pub struct Pattern(pub Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
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

/// One term of a filter, before negation. Text values are stored lower-cased.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// Substring of any column, case-insensitive.
    Text(String),
    /// Substring of a text field, case-insensitive.
    Contains(Field, String),
    /// A text field's whole value, case-insensitive.
    Equals(Field, String),
    /// A text field matches a regular expression (case-insensitive).
    Regex(Field, Pattern),
    /// A numeric field compared with a number in the field's base unit (count, percent,
    /// bytes, ns).
    Compare(Field, CmpOp, f64),
    /// Process state.
    ProcessState(ProcessState),
    /// TCP states: bit `1 << s` for every accepted kernel state number `s`.
    TcpStates(u32),
    /// Address family: 4 or 6.
    Family(u8),
}

/// A term, possibly negated (`-term`, or `!=`).
#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    /// True for `-term`: the clause holds when the term does not.
    pub negated: bool,
    /// The term.
    pub term: Term,
}

/// A parsed filter: the OR of groups, each the AND of its clauses. The empty filter (no
/// groups) matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// The groups, in input order.
    pub groups: Vec<Vec<Clause>>,
}

/// What a filter is evaluated against: one row, with whatever it needs to answer.
pub trait FilterSubject {
    /// Whether a named-state term (process state, TCP states, family) holds for this row.
    fn matches_named(&self, term: &Term) -> bool;
    /// Whether any column's text contains `needle` (already lower-cased).
    fn contains_text(&self, needle: &str) -> bool;
    /// The values of a text field (two for a connection's `addr`); none when unknown.
    fn texts(&self, field: Field) -> Vec<String>;
    /// The values of a numeric field in its base unit (two for `port`); none when unknown.
    fn numbers(&self, field: Field) -> Vec<f64>;
}

impl Filter {
    /// True when the filter has no terms.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether some group has every clause hold for `subject`.
    pub fn matches(&self, subject: &impl FilterSubject) -> bool {
        self.is_empty()
            || self.groups.iter().any(|group| {
                group
                    .iter()
                    .all(|clause| term_holds(&clause.term, subject) != clause.negated)
            })
    }
}

fn term_holds(term: &Term, subject: &impl FilterSubject) -> bool {
    match term {
        Term::Text(needle) => subject.contains_text(needle),
        Term::Contains(field, needle) => subject
            .texts(*field)
            .iter()
            .any(|v| v.to_lowercase().contains(needle.as_str())),
        Term::Equals(field, wanted) => subject
            .texts(*field)
            .iter()
            .any(|v| v.to_lowercase() == *wanted),
        Term::Regex(field, pattern) => subject.texts(*field).iter().any(|v| pattern.0.is_match(v)),
        Term::Compare(field, op, limit) => {
            subject.numbers(*field).iter().any(|v| op.holds(*v, *limit))
        }
        named => subject.matches_named(named),
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
/// term with spaces (an unclosed quote runs to the end); a lone `|` separates OR groups.
pub fn parse(input: &str, table: FilterTable) -> Result<Filter, FilterError> {
    let mut groups = Vec::new();
    let mut group = Vec::new();
    let mut last_bar: Option<Range<usize>> = None;
    for (token, span) in tokens(input) {
        if token == "|" {
            if group.is_empty() {
                return Err(FilterError {
                    term: "|".into(),
                    span,
                    reason: "`|` needs terms on both sides (a | b)".into(),
                });
            }
            groups.push(std::mem::take(&mut group));
            last_bar = Some(span);
            continue;
        }
        group.push(parse_clause(token, span, table)?);
    }
    if group.is_empty() {
        if let Some(span) = last_bar {
            return Err(FilterError {
                term: "|".into(),
                span,
                reason: "`|` needs terms on both sides (a | b)".into(),
            });
        }
    } else {
        groups.push(group);
    }
    Ok(Filter { groups })
}

/// Splits into (token, byte span) pairs; a quoted token (`"…"` or `-"…"`) is returned
/// without its closing quote, and may contain spaces.
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
        let quote = if bytes[i] == b'"' {
            Some(i)
        } else if bytes[i] == b'-' && bytes.get(i + 1) == Some(&b'"') {
            Some(i + 1)
        } else {
            None
        };
        if let Some(q) = quote {
            let close = input[q + 1..].find('"').map(|p| q + 1 + p);
            let end = close.unwrap_or(input.len());
            out.push((&input[start..end], start..end));
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

/// The operators, longest first so `<=` is not read as `<`.
const OPERATORS: [&str; 8] = ["!=", "<=", ">=", ":", "=", "<", ">", "~"];

fn parse_clause(
    token: &str,
    span: Range<usize>,
    table: FilterTable,
) -> Result<Clause, FilterError> {
    let error = |reason: String| FilterError {
        term: token.to_string(),
        span: span.clone(),
        reason,
    };
    let (negated, body) = match token.strip_prefix('-') {
        Some("") => return Err(error("`-` needs a term after it (-comm:sleep)".into())),
        Some(rest) => (true, rest),
        None => (false, token),
    };
    if let Some(quoted) = body.strip_prefix('"') {
        return Ok(Clause {
            negated,
            term: Term::Text(quoted.to_lowercase()),
        });
    }
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or(body.len());
    let rest = &body[name_len..];
    let operator = OPERATORS.into_iter().find(|op| rest.starts_with(op));
    let (Some(operator), true) = (operator, name_len > 0) else {
        return Ok(Clause {
            negated,
            term: Term::Text(body.to_lowercase()),
        });
    };
    let name = body[..name_len].to_ascii_lowercase();
    let value = &rest[operator.len()..];
    let fields = table.fields();
    let field = match Field::from_name(&name) {
        Some(field) if fields.contains(&name.as_str()) => field,
        _ => {
            return Err(error(format!(
                "unknown field `{name}` for {} (fields: {}; or quote the text)",
                table.name(),
                fields.join(", ")
            )))
        }
    };
    if value.is_empty() {
        return Err(error(format!("`{name}{operator}` needs a value")));
    }
    // `!=` is the negation of `=`.
    let (negated, operator) = match operator {
        "!=" => (!negated, "="),
        other => (negated, other),
    };
    let term = field_term(field, &name, operator, value, table).map_err(error)?;
    Ok(Clause { negated, term })
}

fn field_term(
    field: Field,
    name: &str,
    operator: &str,
    value: &str,
    table: FilterTable,
) -> Result<Term, String> {
    let kind = field.kind();
    match (kind, operator) {
        (Kind::Text, ":") => return Ok(Term::Contains(field, value.to_lowercase())),
        (Kind::Text, "=") => return Ok(Term::Equals(field, value.to_lowercase())),
        (Kind::Text, "~") => {
            return RegexBuilder::new(value)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map(|re| Term::Regex(field, Pattern(re)))
                .map_err(|e| format!("invalid regular expression: {}", regex_reason(&e)))
        }
        (Kind::Text, _) => {
            return Err(format!(
                "`{name}` is text: use `{name}:` (contains), `=`, `!=` or `~` (regex), not `{operator}`"
            ))
        }
        (_, "~") => {
            return Err(format!(
                "`~` (regex) works on text fields (comm, user, addr), not `{name}`"
            ))
        }
        (Kind::Named, ":" | "=") => return named_term(field, value, table),
        (Kind::Named, _) => {
            return Err(format!(
                "`{name}` takes `{name}:`, `=` or `!=`, not `{operator}`"
            ))
        }
        _ => {}
    }
    let op = match operator {
        ":" | "=" => CmpOp::Eq,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        ">=" => CmpOp::Ge,
        other => unreachable!("operator {other} handled above"),
    };
    let number = match kind {
        Kind::Count => parse_count(name, value, field)?,
        Kind::Percent => parse_percent(name, value)?,
        Kind::Bytes => parse_bytes(name, value)?,
        Kind::Duration => parse_duration(name, value)?,
        Kind::Text | Kind::Named => unreachable!("handled above"),
    };
    Ok(Term::Compare(field, op, number))
}

fn regex_reason(error: &regex::Error) -> String {
    // The syntax error's last line says what is wrong; the rest repeats the pattern.
    let text = error.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

fn parse_count(name: &str, value: &str, field: Field) -> Result<f64, String> {
    if field == Field::Nice {
        return match value.parse::<i64>() {
            Ok(n) if (-20..=19).contains(&n) => Ok(n as f64),
            _ => Err(format!(
                "{name} must be a nice value from -20 to 19, not `{value}`"
            )),
        };
    }
    let max = match field {
        Field::Port | Field::Sport | Field::Dport => u16::MAX as u64,
        Field::Exit => 255,
        _ => u32::MAX as u64,
    };
    match value.parse::<u64>() {
        Ok(n) if n <= max => Ok(n as f64),
        _ if max == u16::MAX as u64 => Err(format!(
            "{name} must be a number from 0 to 65535, not `{value}`"
        )),
        Ok(_) => Err(format!("{name} must be at most {max}, not `{value}`")),
        Err(_) => Err(format!("{name} must be a number, not `{value}`")),
    }
}

/// A non-negative decimal number at the start of `value`, and the rest.
fn split_number(value: &str) -> Option<(f64, &str)> {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let number = value[..end].parse::<f64>().ok()?;
    number.is_finite().then_some((number, &value[end..]))
}

fn parse_percent(name: &str, value: &str) -> Result<f64, String> {
    match split_number(value) {
        Some((n, "" | "%")) => Ok(n),
        _ => Err(format!(
            "{name} is a percentage: a number such as `5` or `2.5%`, not `{value}`"
        )),
    }
}

fn parse_bytes(name: &str, value: &str) -> Result<f64, String> {
    let Some((n, unit)) = split_number(value) else {
        return Err(format!(
            "{name} is bytes: a number with an optional K, M, G or T (1024-based), not `{value}`"
        ));
    };
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` for {name}: use K, M, G or T (1024-based), e.g. `1.5M`"
            ))
        }
    };
    Ok((n * scale as f64).round())
}

fn parse_duration(name: &str, value: &str) -> Result<f64, String> {
    let Some((n, unit)) = split_number(value) else {
        return Err(format!(
            "{name} is a duration: a number with ms, s, m, h or d, e.g. `10s`, not `{value}`"
        ));
    };
    let ns_per = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "" | "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` for {name}: use ns, us, ms, s, m, h or d, e.g. `10s`"
            ))
        }
    };
    Ok((n * ns_per).round())
}

fn named_term(field: Field, value: &str, table: FilterTable) -> Result<Term, String> {
    Ok(match (field, table) {
        (Field::State, FilterTable::Processes) => match value.to_ascii_lowercase().as_str() {
            "running" | "run" | "r" => Term::ProcessState(ProcessState::Running),
            "exited" | "exit" | "x" => Term::ProcessState(ProcessState::Exited),
            _ => {
                return Err(format!(
                    "process state must be `running` or `exited`, not `{value}`"
                ))
            }
        },
        (Field::State, FilterTable::Connections) => {
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
                return Err(format!(
                    "unknown TCP state `{value}` (states: {})",
                    TCP_STATES.join(", ")
                ));
            }
            Term::TcpStates(mask)
        }
        (Field::Family, _) => match value {
            "4" | "ipv4" | "inet" => Term::Family(4),
            "6" | "ipv6" | "inet6" => Term::Family(6),
            _ => return Err(format!("family must be 4 or 6, not `{value}`")),
        },
        _ => unreachable!("only state and family are named"),
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

    /// The clauses of a one-group filter.
    fn clauses(filter: Filter) -> Vec<Clause> {
        assert_eq!(filter.groups.len(), 1, "{filter:?}");
        filter.groups.into_iter().next().unwrap()
    }

    fn term(input: &str, table: FilterTable) -> Term {
        let mut c = clauses(parse(input, table).unwrap());
        assert_eq!(c.len(), 1);
        let clause = c.remove(0);
        assert!(!clause.negated);
        clause.term
    }

    fn yes(term: Term) -> Clause {
        Clause {
            negated: false,
            term,
        }
    }

    fn not(term: Term) -> Clause {
        Clause {
            negated: true,
            term,
        }
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
            clauses(f),
            vec![
                yes(Term::Contains(Field::Comm, "nginx".into())),
                yes(Term::Compare(Field::Pid, CmpOp::Eq, 123.0)),
                yes(Term::Text("worker".into()))
            ]
        );
    }

    #[test]
    fn digits_before_a_colon_stay_text() {
        let c = FilterTable::Connections;
        assert_eq!(term("10.0.0.1:443", c), Term::Text("10.0.0.1:443".into()));
        assert_eq!(term("[::1]:22", c), Term::Text("[::1]:22".into()));
    }

    #[test]
    fn quotes_group_text_and_bypass_fields() {
        assert_eq!(
            clauses(procs("\"Web Server\" \"comm:x\"").unwrap()),
            vec![
                yes(Term::Text("web server".into())),
                yes(Term::Text("comm:x".into()))
            ]
        );
        // An unclosed quote runs to the end.
        assert_eq!(
            term("\"half open", FilterTable::Processes),
            Term::Text("half open".into())
        );
    }

    #[test]
    fn every_operator_parses() {
        let p = FilterTable::Processes;
        for (input, op) in [
            ("pid=5", CmpOp::Eq),
            ("pid:5", CmpOp::Eq),
            ("pid<5", CmpOp::Lt),
            ("pid<=5", CmpOp::Le),
            ("pid>5", CmpOp::Gt),
            ("pid>=5", CmpOp::Ge),
        ] {
            assert_eq!(
                term(input, p),
                Term::Compare(Field::Pid, op, 5.0),
                "{input}"
            );
        }
        // `!=` is the negation of `=`, and `-` of `!=` is `=` again.
        assert_eq!(
            clauses(procs("pid!=5").unwrap()),
            vec![not(Term::Compare(Field::Pid, CmpOp::Eq, 5.0))]
        );
        assert_eq!(
            clauses(procs("-pid!=5").unwrap()),
            vec![yes(Term::Compare(Field::Pid, CmpOp::Eq, 5.0))]
        );
        assert_eq!(
            term("comm=Bash", p),
            Term::Equals(Field::Comm, "bash".into())
        );
        assert_eq!(
            clauses(procs("user!=root").unwrap()),
            vec![not(Term::Equals(Field::User, "root".into()))]
        );
        assert!(CmpOp::Le.holds(5.0, 5.0) && !CmpOp::Lt.holds(5.0, 5.0));
        assert!(CmpOp::Ge.holds(5.0, 5.0) && !CmpOp::Gt.holds(5.0, 5.0));
    }

    #[test]
    fn units_per_field() {
        let p = FilterTable::Processes;
        let c = FilterTable::Connections;
        assert_eq!(term("cpu>5", p), Term::Compare(Field::Cpu, CmpOp::Gt, 5.0));
        assert_eq!(
            term("cpu>=2.5%", p),
            Term::Compare(Field::Cpu, CmpOp::Ge, 2.5)
        );
        for (input, bytes) in [
            ("sent>=1M", 1048576.0),
            ("sent>=1m", 1048576.0),
            ("sent>=1MiB", 1048576.0),
            ("sent>=2K", 2048.0),
            ("sent>=1.5K", 1536.0),
            ("sent>=1G", 1073741824.0),
            ("sent>=100", 100.0),
        ] {
            assert_eq!(
                term(input, c),
                Term::Compare(Field::Sent, CmpOp::Ge, bytes),
                "{input}"
            );
        }
        assert_eq!(
            term("recv<100K", c),
            Term::Compare(Field::Recv, CmpOp::Lt, 102400.0)
        );
        for (input, ns) in [
            ("age>10s", 10e9),
            ("age>10", 10e9),
            ("age>500ms", 500e6),
            ("age>2m", 120e9),
            ("age>1h", 3600e9),
            ("age>1d", 86400e9),
        ] {
            assert_eq!(
                term(input, p),
                Term::Compare(Field::Age, CmpOp::Gt, ns),
                "{input}"
            );
        }
        assert_eq!(
            term("cpu_time>=1.5s", p),
            Term::Compare(Field::CpuTime, CmpOp::Ge, 1.5e9)
        );
        assert_eq!(
            term("port<1024", c),
            Term::Compare(Field::Port, CmpOp::Lt, 1024.0)
        );
        assert_eq!(
            term("dport=443", c),
            Term::Compare(Field::Dport, CmpOp::Eq, 443.0)
        );
    }

    #[test]
    fn bad_numbers_and_units_are_errors() {
        let e = procs("comm:sh pid:abc").unwrap_err();
        assert_eq!(e.term, "pid:abc");
        assert_eq!(e.span, 8..15);
        assert!(e.reason.contains("pid must be a number"), "{}", e.reason);
        let reason = |r: Result<Filter, FilterError>| r.unwrap_err().reason;
        assert!(reason(conns("port:70000")).contains("0 to 65535"));
        assert!(reason(conns("dport<x")).contains("0 to 65535"));
        assert!(reason(procs("exit=256")).contains("exit must be at most 255"));
        assert!(reason(conns("sent>1X")).contains("unknown unit `X` for sent"));
        assert!(reason(conns("sent>M")).contains("sent is bytes"));
        assert!(reason(procs("age>10y")).contains("unknown unit `y` for age"));
        assert!(reason(procs("cpu>lots")).contains("cpu is a percentage"));
        assert!(reason(procs("cpu>")).contains("`cpu>` needs a value"));
        assert!(reason(procs("comm<5")).contains("`comm` is text"));
        assert!(reason(procs("pid~1")).contains("`~` (regex) works on text fields"));
        assert!(reason(conns("state>LISTEN")).contains("`state` takes"));
    }

    #[test]
    fn regex_terms() {
        let Term::Regex(Field::Comm, pattern) = term("comm~^py", FilterTable::Processes) else {
            panic!("not a regex term");
        };
        assert!(pattern.0.is_match("python3"));
        assert!(
            pattern.0.is_match("PYTHON"),
            "case-insensitive like the rest"
        );
        assert!(!pattern.0.is_match("ipython"));
        let e = procs("comm~^(py").unwrap_err();
        assert_eq!(e.term, "comm~^(py");
        assert!(
            e.reason.starts_with("invalid regular expression: "),
            "{}",
            e.reason
        );
        assert!(e.reason.contains("unclosed group"), "{}", e.reason);
        // A `|` inside a regex is the regex's own alternation, not OR.
        let f = procs("comm~py|node").unwrap();
        assert_eq!(f.groups.len(), 1);
    }

    #[test]
    fn negation_of_any_term() {
        assert_eq!(
            clauses(procs("-comm:sleep -bash -\"two words\" -state:exited").unwrap()),
            vec![
                not(Term::Contains(Field::Comm, "sleep".into())),
                not(Term::Text("bash".into())),
                not(Term::Text("two words".into())),
                not(Term::ProcessState(ProcessState::Exited)),
            ]
        );
        let e = procs("comm:a -").unwrap_err();
        assert_eq!(e.span, 7..8);
        assert!(e.reason.contains("`-` needs a term"), "{}", e.reason);
    }

    #[test]
    fn or_separates_groups_and_and_binds_tighter() {
        let f = procs("comm:python pid>100 | comm:node").unwrap();
        assert_eq!(
            f.groups,
            vec![
                vec![
                    yes(Term::Contains(Field::Comm, "python".into())),
                    yes(Term::Compare(Field::Pid, CmpOp::Gt, 100.0)),
                ],
                vec![yes(Term::Contains(Field::Comm, "node".into()))],
            ]
        );
        for input in ["| comm:a", "comm:a |", "comm:a | | comm:b"] {
            let e = procs(input).unwrap_err();
            assert_eq!(e.term, "|", "{input}");
            assert!(e.reason.contains("both sides"), "{input}: {}", e.reason);
        }
    }

    #[test]
    fn unknown_fields_list_the_valid_ones_per_table() {
        let e = procs("port:443").unwrap_err();
        assert!(e.reason.contains("unknown field `port` for processes"));
        assert!(e
            .reason
            .contains("comm, cmd, pid, ppid, uid, user, state, cpu, cpu_time, age, exit, rss"));
        let e = conns("ppid>1").unwrap_err();
        assert!(e.reason.contains("unknown field `ppid` for connections"));
        assert!(e
            .reason
            .contains("comm, pid, state, port, sport, dport, addr, family, sent, recv, age"));
        // A field no table has.
        let e = procs("swap>100M").unwrap_err();
        assert!(e.reason.contains("unknown field `swap`"), "{}", e.reason);
        // The issue's examples parse, with units; nice takes negative values, in range.
        for ok in [
            "rss>100M",
            "virt>=1G",
            "mem>5",
            "nice<0",
            "nice=-20",
            "threads>4",
            "cmd~^py",
        ] {
            assert!(procs(ok).is_ok(), "{ok}");
        }
        assert!(procs("nice<-21").is_err() && procs("nice>x").is_err());
    }

    #[test]
    fn empty_values_are_errors() {
        assert!(procs("comm:").unwrap_err().reason.contains("needs a value"));
    }

    #[test]
    fn tcp_states_accept_names_and_prefixes() {
        let c = FilterTable::Connections;
        assert_eq!(term("state:established", c), Term::TcpStates(1 << 1));
        // CLOSE is exact even though CLOSE-WAIT and CLOSING start with it.
        assert_eq!(term("state=CLOSE", c), Term::TcpStates(1 << 7));
        assert_eq!(term("state:fin", c), Term::TcpStates((1 << 4) | (1 << 5)));
        assert_eq!(term("state:time_wait", c), Term::TcpStates(1 << 6));
        let e = conns("state:ESTABLISHD").unwrap_err();
        assert!(e.reason.contains("unknown TCP state"));
        assert!(e.reason.contains("LISTEN"));
        assert_eq!(
            clauses(conns("state!=listen").unwrap()),
            vec![not(Term::TcpStates(1 << 10))]
        );
    }

    #[test]
    fn process_states() {
        assert_eq!(
            term("state:Exited", FilterTable::Processes),
            Term::ProcessState(ProcessState::Exited)
        );
        assert!(procs("state:zombie")
            .unwrap_err()
            .reason
            .contains("`running` or `exited`"));
    }

    struct Fake {
        pid: u32,
        cpu: Option<f64>,
        text: &'static str,
    }

    impl FilterSubject for Fake {
        fn matches_named(&self, _: &Term) -> bool {
            false
        }
        fn contains_text(&self, needle: &str) -> bool {
            self.text.contains(needle)
        }
        fn texts(&self, field: Field) -> Vec<String> {
            match field {
                Field::Comm => vec![self.text.to_string()],
                _ => vec![],
            }
        }
        fn numbers(&self, field: Field) -> Vec<f64> {
            match field {
                Field::Pid => vec![self.pid as f64],
                Field::Cpu => self.cpu.into_iter().collect(),
                _ => vec![],
            }
        }
    }

    fn fake(pid: u32, text: &'static str) -> Fake {
        Fake {
            pid,
            cpu: Some(10.0),
            text,
        }
    }

    fn holds(input: &str, subject: &Fake) -> bool {
        procs(input).unwrap().matches(subject)
    }

    #[test]
    fn evaluation_and_or_not() {
        assert!(holds("pid:5 ngi", &fake(5, "nginx")));
        assert!(!holds("pid:5 ngi", &fake(6, "nginx")));
        assert!(!holds("pid:5 ngi", &fake(5, "sh")));
        assert!(Filter::default().matches(&fake(0, "")));
        // OR of AND groups.
        let f = "comm:py pid>100 | comm:node";
        assert!(holds(f, &fake(200, "python")));
        assert!(!holds(f, &fake(50, "python")), "AND binds tighter than OR");
        assert!(holds(f, &fake(50, "node")));
        assert!(!holds(f, &fake(200, "sh")));
        // Negation and `!=`.
        assert!(holds("-comm:sleep", &fake(1, "bash")));
        assert!(!holds("-comm:sleep", &fake(1, "sleep")));
        assert!(holds("pid!=5", &fake(6, "x")) && !holds("pid!=5", &fake(5, "x")));
        // Comparisons at the boundary.
        assert!(holds("pid<=5", &fake(5, "")) && !holds("pid<5", &fake(5, "")));
        assert!(holds("pid>=5", &fake(5, "")) && !holds("pid>5", &fake(5, "")));
        assert!(holds("cpu>5", &fake(1, "")) && !holds("cpu>10", &fake(1, "")));
        // Whole-value equality and regex.
        assert!(holds("comm=NGINX", &fake(1, "nginx")) && !holds("comm=ngin", &fake(1, "nginx")));
        assert!(holds("comm~^ng.*x$", &fake(1, "nginx")) && !holds("comm~^g", &fake(1, "nginx")));
        // An unknown value matches no comparison (and its negation does).
        let unknown = Fake {
            pid: 1,
            cpu: None,
            text: "",
        };
        assert!(!holds("cpu>=0", &unknown) && !holds("cpu<1", &unknown));
        assert!(holds("-cpu>=0", &unknown));
    }
}
