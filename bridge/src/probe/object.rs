//! The embedded eBPF object, its programs and how they attach, and the capability check.
//!
//! The object is built by `cargo xtask build-ebpf` and committed under `ebpf-probe/`, so
//! running needs no eBPF toolchain.

use aya::{
    programs::{BtfTracePoint, RawTracePoint},
    Btf, Ebpf, EbpfLoader,
};

use super::errors::{classify, describe, errno_in_chain, LoadError};
use crate::sys::errno::is_permission_denied;

/// The eBPF object built from `ebpf-probe/` (see `cargo xtask build-ebpf`).
pub static PROBE_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ebpf-probe/bpftop-probe.bpf.o"
));

/// Programs loaded as BTF tracepoints (`tp_btf`: the kernel types their arguments from its BTF,
/// so they read the socket by plain loads); every other program is a raw tracepoint.
pub(crate) const BTF_PROGRAMS: &[&str] = &[
    "sched_switch",
    "inet_sock_set_state",
    "sock_send_length",
    "sock_recv_length",
];

/// (program name in the object, tracepoint it attaches to, required?). Optional probes that fail
/// to attach degrade with a note instead of failing the session.
pub(crate) const PROGRAMS: &[(&str, &str, bool)] = &[
    ("sched_process_fork", "sched_process_fork", true),
    ("sched_process_exec", "sched_process_exec", true),
    ("sched_process_exit", "sched_process_exit", true),
    ("sched_switch", "sched_switch", true),
    ("task_rename", "task_rename", true),
    ("inet_sock_set_state", "inet_sock_set_state", true),
    ("sock_send_length", "sock_send_length", false),
    ("sock_recv_length", "sock_recv_length", false),
];

/// The flush program: loaded, never attached; run with `BPF_PROG_TEST_RUN`.
pub(crate) const FLUSH_PROGRAM: &str = "flush_dirty";

/// Finds the raw tracepoint program `program` in `ebpf` and loads it into the kernel.
fn load_raw_tracepoint<'e>(
    ebpf: &'e mut Ebpf,
    program: &str,
) -> Result<&'e mut RawTracePoint, LoadError> {
    let prog: &mut RawTracePoint = ebpf
        .program_mut(program)
        .ok_or_else(|| LoadError::Refused(format!("program `{program}` missing")))?
        .try_into()
        .map_err(|e| classify("loading a program", "CAP_BPF", &e))?;
    prog.load()
        .map_err(|e| classify(&format!("loading program `{program}`"), "CAP_BPF", &e))?;
    Ok(prog)
}

/// Loads `program` from `ebpf` and attaches it to the raw tracepoint `tracepoint`. EPERM/EACCES
/// are missing privileges; any other attach failure means this kernel lacks the tracepoint.
pub fn attach_raw_tracepoint(
    ebpf: &mut Ebpf,
    program: &str,
    tracepoint: &'static str,
) -> Result<(), LoadError> {
    let prog = load_raw_tracepoint(ebpf, program)?;
    prog.attach(tracepoint)
        .map(|_| ())
        .map_err(|e| attach_error(tracepoint, &e))
}

/// Loads the BTF tracepoint `program` for `tracepoint` (typed by the kernel's `btf`) and
/// attaches it. A kernel without the tracepoint has no `btf_trace_<tracepoint>` type: that is
/// a [`LoadError::MissingTracepoint`], as for a raw tracepoint.
pub fn attach_btf_tracepoint(
    ebpf: &mut Ebpf,
    program: &str,
    tracepoint: &'static str,
    btf: &Btf,
) -> Result<(), LoadError> {
    load_btf_tracepoint(ebpf, program, tracepoint, btf)?
        .attach()
        .map(|_| ())
        .map_err(|e| attach_error(tracepoint, &e))
}

/// Loads the BTF tracepoint `program` for `tracepoint` (typed by the kernel's `btf`), not
/// attached. No `btf_trace_<tracepoint>` type is a [`LoadError::MissingTracepoint`].
fn load_btf_tracepoint<'e>(
    ebpf: &'e mut Ebpf,
    program: &str,
    tracepoint: &'static str,
    btf: &Btf,
) -> Result<&'e mut BtfTracePoint, LoadError> {
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(program)
        .ok_or_else(|| LoadError::Refused(format!("program `{program}` missing")))?
        .try_into()
        .map_err(|e| classify("loading a program", "CAP_BPF", &e))?;
    prog.load(tracepoint, btf).map_err(|e| match e {
        // No `btf_trace_<tracepoint>` type: this kernel lacks the tracepoint.
        aya::programs::ProgramError::Btf(_) => LoadError::MissingTracepoint {
            tracepoint,
            detail: describe(&e),
        },
        e => classify(&format!("loading program `{program}`"), "CAP_BPF", &e),
    })?;
    Ok(prog)
}

/// Attaches `program` as its kind requires ([`BTF_PROGRAMS`]); `btf` is read on first need.
pub(crate) fn attach_program(
    ebpf: &mut Ebpf,
    program: &str,
    tracepoint: &'static str,
    btf: &mut Option<Btf>,
) -> Result<(), LoadError> {
    if !BTF_PROGRAMS.contains(&program) {
        return attach_raw_tracepoint(ebpf, program, tracepoint);
    }
    if btf.is_none() {
        *btf = Some(Btf::from_sys_fs().map_err(|e| {
            LoadError::Refused(format!(
                "reading the kernel's BTF (/sys/kernel/btf/vmlinux): {e}"
            ))
        })?);
    }
    attach_btf_tracepoint(ebpf, program, tracepoint, btf.as_ref().expect("just read"))
}

fn attach_error(tracepoint: &'static str, e: &(dyn std::error::Error + 'static)) -> LoadError {
    match errno_in_chain(e) {
        Some(errno) if is_permission_denied(errno) => LoadError::Privilege {
            what: format!("attaching to tracepoint `{tracepoint}`"),
            capability: "CAP_PERFMON",
            detail: describe(e),
        },
        _ => LoadError::MissingTracepoint {
            tracepoint,
            detail: describe(e),
        },
    }
}

/// Loads `program` without attaching it and returns its fd (for `BPF_PROG_TEST_RUN`).
pub(crate) fn load_unattached(
    ebpf: &mut Ebpf,
    program: &str,
) -> Result<aya::programs::ProgramFd, LoadError> {
    let prog = load_raw_tracepoint(ebpf, program)?;
    let fd = prog
        .fd()
        .map_err(|e| classify(&format!("program `{program}`"), "CAP_BPF", &e))?;
    fd.try_clone()
        .map_err(|e| LoadError::Refused(format!("duplicating the fd of `{program}`: {e}")))
}

/// Loads the embedded object (probes inert: no offsets) and attaches `program` to
/// `tracepoint` alone, then detaches everything. Answers "would this attach here?" with the
/// same typed error a session would get.
pub fn check_tracepoint(program: &str, tracepoint: &'static str) -> Result<(), LoadError> {
    check_capabilities()?;
    let mut ebpf = EbpfLoader::new()
        .load(PROBE_OBJECT)
        .map_err(|e| classify("loading the eBPF object", "CAP_BPF", &e))?;
    attach_program(&mut ebpf, program, tracepoint, &mut None)
}

/// Effective capability bits of this process (from /proc/self/status `CapEff`).
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Checks CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN) before touching the kernel, so the message
/// names the capability instead of a bare EPERM.
pub fn check_capabilities() -> Result<(), LoadError> {
    let Some(caps) = effective_capabilities() else {
        return Ok(()); // cannot tell; let the kernel decide
    };
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if has(CAP_SYS_ADMIN) {
        return Ok(());
    }
    for (bit, name) in [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")] {
        if !has(bit) {
            return Err(LoadError::Privilege {
                what: "loading eBPF probes".into(),
                capability: name,
                detail: format!("effective capabilities are {caps:#x}"),
            });
        }
    }
    Ok(())
}

/// Test helpers over the embedded object (feature `test-support`).
#[cfg(feature = "test-support")]
pub mod test_support {
    use aya::{Btf, EbpfLoader};

    use super::{load_btf_tracepoint, load_raw_tracepoint, BTF_PROGRAMS, PROBE_OBJECT};
    use crate::probe::errors::{classify, describe, LoadError};

    /// Loads every program of the embedded object into the running kernel, with this kernel's
    /// offsets (so the verifier walks the real code paths) and without attaching anything.
    /// Returns each program's name and how many instructions the verifier processed (of its
    /// budget of 1,000,000), in the object's order; the first program the kernel refuses is the
    /// error (a [`LoadError::Verifier`] names its reason).
    pub fn verified_instruction_counts() -> Result<Vec<(String, u32)>, LoadError> {
        super::check_capabilities()?;
        let offsets = crate::probe::offsets::resolve_running_kernel_offsets()?;
        let mut ebpf = EbpfLoader::new()
            .override_global("OFFSETS", &offsets, true)
            .load(PROBE_OBJECT)
            .map_err(|e| classify("loading the eBPF object", "CAP_BPF", &e))?;
        let btf = Btf::from_sys_fs()
            .map_err(|e| LoadError::Refused(format!("reading the kernel BTF: {}", describe(&e))))?;
        let names: Vec<String> = ebpf.programs().map(|(n, _)| n.to_string()).collect();
        let mut counts = Vec::new();
        for name in names {
            let what = format!("program `{name}`");
            match BTF_PROGRAMS.iter().find(|p| **p == name) {
                Some(tracepoint) => {
                    load_btf_tracepoint(&mut ebpf, &name, tracepoint, &btf)?;
                }
                None => {
                    load_raw_tracepoint(&mut ebpf, &name)?;
                }
            }
            let info = ebpf
                .program(&name)
                .expect("just loaded")
                .info()
                .map_err(|e| classify(&format!("reading {what}'s info"), "CAP_BPF", &e))?;
            counts.push((name, info.verified_instruction_count().unwrap_or(0)));
        }
        Ok(counts)
    }
}
