//! Resolution of [`KernelOffsets`] from the kernel's BTF.
//!
//! The probes are written in Rust and have no CO-RE relocations, so they read kernel memory with
//! `bpf_probe_read_kernel` at byte offsets that user space looks up here, in the BTF of the
//! running kernel (`/sys/kernel/btf/vmlinux`), and writes into the probe's `OFFSETS` global
//! before loading it.
//!
//! Members are searched by name, descending into anonymous (nameless) struct and union members
//! as C does (e.g. `sock_common.skc_daddr` lives in an anonymous struct inside an anonymous
//! union). Besides the offsets, the layout facts the probes rely on are checked: field sizes,
//! pointer members being pointers, `sock.__sk_common` at offset 0, `atomic_t.counter` and
//! `kuid_t.val` at offset 0 of their wrappers. Any surprise is a typed [`OffsetsError`] naming
//! the struct and member, rather than a probe silently reading the wrong bytes.
//!
//! Bitfields are recognised from the member encoding of structs with `kind_flag` set, which is
//! how pahole encodes every struct that has bitfields. The legacy encoding (width carried by a
//! dedicated `int` type, which `btf-rs` does not expose) is only caught when the member is not
//! byte aligned.

use std::fmt;
use std::path::{Path, PathBuf};

use btf_rs::{Backend, Btf, BtfType, Member, Struct, Type};
use probe_common::KernelOffsets;

/// Where the running kernel exposes its BTF (needs `CONFIG_DEBUG_INFO_BTF=y`).
pub const RUNNING_KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Size in bytes of a kernel pointer as the probes read it (BPF is a 64-bit target).
const POINTER_SIZE: usize = 8;

/// How deep type chains (typedef, const, ...) and nested anonymous members are followed before
/// the BTF is declared malformed (guards against reference loops).
const MAX_DEPTH: usize = 32;

/// Why [`resolve_kernel_offsets`] failed. Every variant carries the BTF path; member-level
/// variants name the struct (without the `struct` keyword) and the member (`live.counter` for a
/// field of a member's type).
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// The BTF file does not exist or cannot be read.
    #[error(
        "cannot read kernel BTF at {}: {source}; the kernel must be built with \
         CONFIG_DEBUG_INFO_BTF=y (and sysfs mounted) for the probes to find kernel struct \
         offsets",
        path.display()
    )]
    BtfUnavailable {
        /// The BTF file that was tried.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not valid BTF (or uses features `btf-rs` does not parse).
    #[error("kernel BTF at {} cannot be parsed: {source}", path.display())]
    InvalidBtf {
        /// The BTF file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: btf_rs::Error,
    },
    /// A lookup in otherwise parsed BTF failed (dangling type id, unnamed string, type loop).
    #[error("kernel BTF at {} is malformed: {detail}", path.display())]
    MalformedBtf {
        /// The BTF file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The BTF has no struct of that name.
    #[error("kernel BTF at {} has no `struct {strukt}`", path.display())]
    MissingStruct {
        /// The BTF file.
        path: PathBuf,
        /// The struct looked for.
        strukt: &'static str,
    },
    /// The struct has no member of that name (directly or in an anonymous struct/union).
    #[error("kernel BTF at {} has no member `{member}` in `struct {strukt}`", path.display())]
    MissingMember {
        /// The BTF file.
        path: PathBuf,
        /// The struct searched.
        strukt: &'static str,
        /// The member looked for.
        member: String,
    },
    /// The member is a bitfield; the probes can only read whole bytes.
    #[error(
        "kernel BTF at {}: `struct {strukt}` member `{member}` is a {bits}-bit bitfield at bit \
         offset {bit_offset}; the probe needs a byte-addressable field",
        path.display()
    )]
    Bitfield {
        /// The BTF file.
        path: PathBuf,
        /// The struct.
        strukt: &'static str,
        /// The member.
        member: String,
        /// Width of the bitfield in bits.
        bits: u32,
        /// Offset from the start of the struct, in bits.
        bit_offset: u64,
    },
    /// The member does not start on a byte boundary.
    #[error(
        "kernel BTF at {}: `struct {strukt}` member `{member}` is at bit offset {bit_offset}, \
         which is not byte aligned",
        path.display()
    )]
    Unaligned {
        /// The BTF file.
        path: PathBuf,
        /// The struct.
        strukt: &'static str,
        /// The member.
        member: String,
        /// Offset from the start of the struct, in bits.
        bit_offset: u64,
    },
    /// The member has a size other than the one the probe reads.
    #[error(
        "kernel BTF at {}: `{strukt}.{member}` is {found} bytes, the probe expects {expected}",
        path.display()
    )]
    SizeMismatch {
        /// The BTF file.
        path: PathBuf,
        /// The struct.
        strukt: &'static str,
        /// The member.
        member: String,
        /// Size the probe relies on, in bytes.
        expected: usize,
        /// Size found in the BTF, in bytes.
        found: usize,
    },
    /// The member is at an offset other than a fixed one the probe relies on.
    #[error(
        "kernel BTF at {}: `{strukt}.{member}` is at byte offset {found}, the probe expects \
         {expected}",
        path.display()
    )]
    OffsetMismatch {
        /// The BTF file.
        path: PathBuf,
        /// The struct.
        strukt: &'static str,
        /// The member.
        member: String,
        /// Offset the probe relies on, in bytes.
        expected: u32,
        /// Offset found in the BTF, in bytes.
        found: u32,
    },
    /// The member has a different kind of type than the probe assumes (e.g. not a pointer).
    #[error(
        "kernel BTF at {}: `{strukt}.{member}` is {found}, the probe expects {expected}",
        path.display()
    )]
    UnexpectedType {
        /// The BTF file.
        path: PathBuf,
        /// The struct.
        strukt: &'static str,
        /// The member.
        member: String,
        /// What the probe needs, e.g. "a pointer".
        expected: &'static str,
        /// What the BTF has, e.g. "a struct of 4 bytes".
        found: String,
    },
}

/// Resolves every field of [`KernelOffsets`] from the BTF file at `btf_path` (normally
/// [`RUNNING_KERNEL_BTF`]) and sets `valid = 1`.
///
/// Each field is the byte offset of the named member in its struct, found through anonymous
/// struct/union members where needed; the sizes and layout facts the probes depend on are
/// verified too (see the module documentation).
pub fn resolve_kernel_offsets(btf_path: &Path) -> Result<KernelOffsets, OffsetsError> {
    let btf = load_btf(btf_path)?;
    Resolver {
        btf: &btf,
        path: btf_path,
    }
    .resolve()
}

/// log2 of the page size (`sysconf(_SC_PAGESIZE)`), 12 if it cannot be read.
fn page_shift() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 && (size as u64).is_power_of_two() {
        (size as u64).trailing_zeros()
    } else {
        12
    }
}

/// Opens the BTF at `path`: memory-mapped when possible (a few ms for vmlinux: only the types
/// looked up are decoded), else read and parsed in full (~0.1 s in release builds). Mapping
/// `/sys/kernel/btf/vmlinux` needs a recent kernel; the fallback covers older ones, and also
/// gives the error classification (unreadable file vs. invalid BTF).
fn load_btf(path: &Path) -> Result<Btf, OffsetsError> {
    match Btf::from_file_with_backend(path, Backend::Mmap) {
        Ok(btf) => return Ok(btf),
        Err(e) => log::debug!(
            "mapping BTF at {} failed ({e}); reading it instead",
            path.display()
        ),
    }
    let bytes = std::fs::read(path).map_err(|source| OffsetsError::BtfUnavailable {
        path: path.to_path_buf(),
        source,
    })?;
    Btf::from_bytes(&bytes).map_err(|source| OffsetsError::InvalidBtf {
        path: path.to_path_buf(),
        source,
    })
}

/// [`resolve_kernel_offsets`] on the running kernel's BTF, [`RUNNING_KERNEL_BTF`].
pub fn resolve_running_kernel_offsets() -> Result<KernelOffsets, OffsetsError> {
    resolve_kernel_offsets(Path::new(RUNNING_KERNEL_BTF))
}

/// A member found by name: its absolute bit offset in the outer struct and its BTF description.
struct Found {
    bit_offset: u64,
    member: Member,
}

/// What a member's type must be, beyond its size.
#[derive(Clone, Copy)]
enum Expect {
    /// Only the size matters (or nothing, with `None`).
    Size(Option<usize>),
    /// A pointer (of [`POINTER_SIZE`] bytes).
    Pointer,
    /// A struct (possibly behind typedefs, like `atomic_t` and `kuid_t`) whose member `.0` is at
    /// offset 0 and `.1` bytes wide.
    Wrapper(&'static str, usize),
}

/// A struct looked up by name, with the name kept for error messages.
/// Binds `$var` to the [`Composite`] of `struct $name` looked up in the BTF (the looked-up
/// struct is bound under the same name first, so it lives as long as the caller's scope).
macro_rules! composite {
    ($resolver:ident, $var:ident, $name:literal) => {
        let $var = $resolver.lookup_struct($name)?;
        let $var = Composite::new($name, &$var);
    };
}

struct Composite<'a> {
    name: &'static str,
    ty: &'a Struct,
}

impl<'a> Composite<'a> {
    fn new(name: &'static str, ty: &'a Struct) -> Self {
        Composite { name, ty }
    }
}

struct Resolver<'a> {
    btf: &'a Btf,
    path: &'a Path,
}

impl Resolver<'_> {
    fn resolve(&self) -> Result<KernelOffsets, OffsetsError> {
        let task = self.lookup_struct("task_struct")?;
        let signal = self.lookup_struct("signal_struct")?;
        let cred = self.lookup_struct("cred")?;
        let sock = self.lookup_struct("sock")?;
        let skc = self.lookup_struct("sock_common")?;
        let task = Composite::new("task_struct", &task);
        let signal = Composite::new("signal_struct", &signal);
        let cred = Composite::new("cred", &cred);
        let sock = Composite::new("sock", &sock);
        let skc = Composite::new("sock_common", &skc);

        // The probe casts a `struct sock *` to `struct sock_common *`: `__sk_common` must be the
        // struct sock_common at offset 0.
        let sk_common = self.offset(&sock, "__sk_common", Expect::Size(None))?;
        if sk_common != 0 {
            return Err(OffsetsError::OffsetMismatch {
                path: self.path.to_path_buf(),
                strukt: sock.name,
                member: "__sk_common".into(),
                expected: 0,
                found: sk_common,
            });
        }
        let found = self.find(&sock, "__sk_common")?;
        match self.peel(found.member.get_type_id().unwrap_or(0))? {
            Type::Struct(s) if self.name_of(&s)? == "sock_common" => {}
            other => {
                return Err(self.unexpected(&sock, "__sk_common", "`struct sock_common`", &other))
            }
        }

        let size = |n| Expect::Size(Some(n));
        composite!(self, sched_entity, "sched_entity");
        composite!(self, inet_sock, "inet_sock");
        composite!(self, tcp_sock, "tcp_sock");
        // The probes cast a `struct sock *` to `struct inet_sock *` and `struct tcp_sock *`:
        // each must begin with the one before (tcp_sock → inet_connection_sock → inet_sock →
        // sock), which the first-member checks below establish.
        self.expect_first_member(&inet_sock, "sk", "sock")?;
        composite!(self, icsk, "inet_connection_sock");
        self.expect_first_member(&icsk, "icsk_inet", "inet_sock")?;
        self.expect_first_member(&tcp_sock, "inet_conn", "inet_connection_sock")?;
        let task_se = self.offset(&task, "se", Expect::Size(None))?;
        let rss = self.rss_stat_offsets()?;
        composite!(self, mm, "mm_struct");
        let sum_exec = self.offset(&sched_entity, "sum_exec_runtime", size(8))?;
        composite!(self, css_set, "css_set");
        composite!(self, cgroup, "cgroup");
        composite!(self, kernfs_node, "kernfs_node");
        Ok(KernelOffsets {
            task_pid: self.offset(&task, "pid", size(4))?,
            task_tgid: self.offset(&task, "tgid", size(4))?,
            task_start_time: self.offset(&task, "start_time", size(8))?,
            task_real_parent: self.offset(&task, "real_parent", Expect::Pointer)?,
            task_group_leader: self.offset(&task, "group_leader", Expect::Pointer)?,
            task_comm: self.offset(&task, "comm", size(probe_common::COMM_LEN))?,
            task_exit_code: self.offset(&task, "exit_code", size(4))?,
            task_signal: self.offset(&task, "signal", Expect::Pointer)?,
            task_real_cred: self.offset(&task, "real_cred", Expect::Pointer)?,
            signal_live: self.offset(&signal, "live", Expect::Wrapper("counter", 4))?,
            cred_uid: self.offset(&cred, "uid", Expect::Wrapper("val", 4))?,
            sock_protocol: self.offset(&sock, "sk_protocol", size(2))?,
            skc_family: self.offset(&skc, "skc_family", size(2))?,
            skc_num: self.offset(&skc, "skc_num", size(2))?,
            skc_dport: self.offset(&skc, "skc_dport", size(2))?,
            skc_daddr: self.offset(&skc, "skc_daddr", size(4))?,
            skc_rcv_saddr: self.offset(&skc, "skc_rcv_saddr", size(4))?,
            skc_v6_daddr: self.offset(&skc, "skc_v6_daddr", size(16))?,
            skc_v6_rcv_saddr: self.offset(&skc, "skc_v6_rcv_saddr", size(16))?,
            skc_state: self.offset(&skc, "skc_state", size(1))?,
            task_sum_exec_runtime: task_se + sum_exec,
            task_state: self.offset(&task, "__state", size(4))?,
            task_exit_state: self.offset(&task, "exit_state", size(4))?,
            task_flags: self.offset(&task, "flags", size(4))?,
            task_thread_node: self.offset(&task, "thread_node", size(16))?,
            task_children: self.offset(&task, "children", size(16))?,
            task_sibling: self.offset(&task, "sibling", size(16))?,
            signal_thread_head: self.offset(&signal, "thread_head", size(16))?,
            signal_sum_sched_runtime: self.offset(&signal, "sum_sched_runtime", size(8))?,
            signal_nr_threads: self.offset(&signal, "nr_threads", size(4))?,
            inet_sport: self.offset(&inet_sock, "inet_sport", size(2))?,
            tcp_bytes_sent: self.offset(&tcp_sock, "bytes_sent", size(8))?,
            tcp_bytes_retrans: self.offset(&tcp_sock, "bytes_retrans", size(8))?,
            tcp_bytes_received: self.offset(&tcp_sock, "bytes_received", size(8))?,
            skc_flags: self.offset(&skc, "skc_flags", size(8))?,
            sock_done_bit: self.enum_value("sock_flags", "SOCK_DONE")?,
            tcp_snd_una: self.offset(&tcp_sock, "snd_una", size(4))?,
            tcp_write_seq: self.offset(&tcp_sock, "write_seq", size(4))?,
            task_static_prio: self.offset(&task, "static_prio", size(4))?,
            task_mm: self.offset(&task, "mm", Expect::Pointer)?,
            mm_rss_file: rss[0],
            mm_rss_anon: rss[1],
            mm_rss_shmem: rss[2],
            page_shift: page_shift(),
            mm_arg_start: self.offset(&mm, "arg_start", size(8))?,
            mm_arg_end: self.offset(&mm, "arg_end", size(8))?,
            mm_total_vm: self.offset(&mm, "total_vm", size(8))?,
            task_cgroups: self.offset(&task, "cgroups", Expect::Pointer)?,
            css_set_dfl_cgrp: self.offset(&css_set, "dfl_cgrp", Expect::Pointer)?,
            cgroup_kn: self.offset(&cgroup, "kn", Expect::Pointer)?,
            kernfs_node_id: self.offset(&kernfs_node, "id", size(8))?,
            valid: 1,
        })
    }

    /// Offsets in `struct mm_struct` of `rss_stat[i].count` for i = `MM_FILEPAGES`,
    /// `MM_ANONPAGES`, `MM_SHMEMPAGES` (in that order). `rss_stat` must be an array of
    /// `struct percpu_counter` (kernels since 6.2) whose `count` is an s64.
    fn rss_stat_offsets(&self) -> Result<[u32; 3], OffsetsError> {
        composite!(self, mm, "mm_struct");
        let found = self.find(&mm, "rss_stat")?;
        let base = self.byte_offset(&mm, "rss_stat", &found)?;
        let ty = self.peel(found.member.get_type_id().unwrap_or(0))?;
        let Type::Array(array) = &ty else {
            return Err(self.unexpected(
                &mm,
                "rss_stat",
                "an array of `struct percpu_counter`",
                &ty,
            ));
        };
        let elem = self.peel(array.get_type_id().unwrap_or(0))?;
        let counter = match &elem {
            Type::Struct(s) if self.name_of(s)? == "percpu_counter" => s.clone(),
            other => {
                return Err(self.unexpected(
                    &mm,
                    "rss_stat",
                    "an array of `struct percpu_counter`",
                    other,
                ))
            }
        };
        let elem_size = counter.size();
        let counter = Composite::new("percpu_counter", &counter);
        let count = self.offset(&counter, "count", Expect::Size(Some(8)))?;
        let names = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"];
        let indices = self.mm_counter_indices()?;
        let mut out = [0u32; 3];
        for (slot, (name, index)) in names.into_iter().zip(indices).enumerate() {
            if index as usize >= array.len() {
                return Err(self.malformed(format!(
                    "`{name}` is {index}, beyond `mm_struct.rss_stat[{}]`",
                    array.len()
                )));
            }
            let offset = u64::from(base) + u64::from(index) * elem_size as u64 + u64::from(count);
            out[slot] = u32::try_from(offset)
                .map_err(|_| self.malformed("offset of `mm_struct.rss_stat` overflows"))?;
        }
        Ok(out)
    }

    /// Values of `MM_FILEPAGES`, `MM_ANONPAGES`, `MM_SHMEMPAGES`: enumerators of the kernel's
    /// anonymous `enum { MM_FILEPAGES, ... NR_MM_COUNTERS }`, found by scanning the enums in
    /// type order up to the first one that has `MM_FILEPAGES` (early in vmlinux).
    fn mm_counter_indices(&self) -> Result<[u32; 3], OffsetsError> {
        const NAMES: [&str; 3] = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"];
        // Type ids are dense from 1; the first failing lookup is the end of the BTF.
        for id in 1u32.. {
            let Ok(ty) = self.btf.resolve_type_by_id(id) else {
                break;
            };
            let Type::Enum(e) = ty else { continue };
            let mut values = [None; 3];
            let mut has_file = false;
            for m in &e.members {
                let name = self.name_of(m)?;
                if let Some(i) = NAMES.iter().position(|n| *n == name) {
                    values[i] = Some(m.val());
                    has_file |= i == 0;
                }
            }
            if !has_file {
                continue;
            }
            let mut out = [0u32; 3];
            for (i, v) in values.into_iter().enumerate() {
                out[i] = v.ok_or_else(|| OffsetsError::MissingMember {
                    path: self.path.to_path_buf(),
                    strukt: "enum (anon) with MM_FILEPAGES",
                    member: NAMES[i].to_string(),
                })?;
            }
            return Ok(out);
        }
        Err(OffsetsError::MissingMember {
            path: self.path.to_path_buf(),
            strukt: "enum (anon)",
            member: "MM_FILEPAGES".into(),
        })
    }

    /// The value of `member` in `enum name` (a bit number the probes test), at most 63.
    fn enum_value(&self, name: &'static str, member: &str) -> Result<u32, OffsetsError> {
        let types = self
            .btf
            .resolve_types_by_name(name)
            .map_err(|e| self.malformed(format!("looking up `enum {name}`: {e}")))?;
        for ty in types {
            if let Type::Enum(e) = ty {
                for m in &e.members {
                    if self.name_of(m)? == member {
                        let value = m.val();
                        if value > 63 {
                            return Err(self.malformed(format!(
                                "`{name}::{member}` is {value}, not a bit of a u64"
                            )));
                        }
                        return Ok(value);
                    }
                }
                return Err(OffsetsError::MissingMember {
                    path: self.path.to_path_buf(),
                    strukt: name,
                    member: member.to_string(),
                });
            }
        }
        Err(OffsetsError::MissingStruct {
            path: self.path.to_path_buf(),
            strukt: name,
        })
    }

    /// Checks that `outer` begins with member `member` of type `struct inner` (at offset 0), so
    /// a pointer to `inner` may be read as a pointer to `outer`.
    fn expect_first_member(
        &self,
        outer: &Composite<'_>,
        member: &'static str,
        inner: &str,
    ) -> Result<(), OffsetsError> {
        let found = self.find(outer, member)?;
        if found.bit_offset != 0 {
            return Err(OffsetsError::OffsetMismatch {
                path: self.path.to_path_buf(),
                strukt: outer.name,
                member: member.into(),
                expected: 0,
                found: u32::try_from(found.bit_offset / 8).unwrap_or(u32::MAX),
            });
        }
        match self.peel(found.member.get_type_id().unwrap_or(0))? {
            Type::Struct(s) if self.name_of(&s)? == inner => Ok(()),
            other => Err(self.unexpected(outer, member, "the embedded base struct", &other)),
        }
    }

    fn malformed(&self, detail: impl fmt::Display) -> OffsetsError {
        OffsetsError::MalformedBtf {
            path: self.path.to_path_buf(),
            detail: detail.to_string(),
        }
    }

    fn unexpected(
        &self,
        outer: &Composite<'_>,
        member: &str,
        expected: &'static str,
        found: &Type,
    ) -> OffsetsError {
        let found = match (found, self.size_of_type(found)) {
            (Type::Struct(s) | Type::Union(s), _) => {
                let name = self.name_of(s).unwrap_or_default();
                let name = if name.is_empty() { "(anon)" } else { &name };
                format!("`{} {name}` of {} bytes", found.name(), s.size())
            }
            (_, Ok(n)) => format!("a {} of {n} bytes", found.name()),
            (_, Err(_)) => format!("a {}", found.name()),
        };
        OffsetsError::UnexpectedType {
            path: self.path.to_path_buf(),
            strukt: outer.name,
            member: member.to_string(),
            expected,
            found,
        }
    }

    fn name_of(&self, ty: &dyn BtfType) -> Result<String, OffsetsError> {
        self.btf
            .resolve_name(ty)
            .map_err(|e| self.malformed(format!("name lookup failed: {e}")))
    }

    /// The first struct (not forward declaration) named `name`.
    fn lookup_struct(&self, name: &'static str) -> Result<Struct, OffsetsError> {
        let types = self
            .btf
            .resolve_types_by_name(name)
            .map_err(|e| self.malformed(format!("looking up `struct {name}`: {e}")))?;
        types
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) => Some(s),
                _ => None,
            })
            .ok_or_else(|| OffsetsError::MissingStruct {
                path: self.path.to_path_buf(),
                strukt: name,
            })
    }

    fn type_by_id(&self, id: u32) -> Result<Type, OffsetsError> {
        self.btf
            .resolve_type_by_id(id)
            .map_err(|e| self.malformed(format!("type id {id}: {e}")))
    }

    /// Follows typedefs and qualifiers (const, volatile, restrict, type tags) from type `id`.
    fn peel(&self, id: u32) -> Result<Type, OffsetsError> {
        let mut ty = self.type_by_id(id)?;
        for _ in 0..MAX_DEPTH {
            ty = match &ty {
                Type::Typedef(t) => self.chained(t)?,
                Type::Const(t) | Type::Volatile(t) | Type::Restrict(t) => self.chained(t)?,
                Type::TypeTag(t) => self.chained(t)?,
                _ => return Ok(ty),
            };
        }
        Err(self.malformed(format!("type chain from id {id} is too deep")))
    }

    fn chained(&self, ty: &dyn BtfType) -> Result<Type, OffsetsError> {
        let id = ty
            .get_type_id()
            .ok_or_else(|| self.malformed("reference type without a target"))?;
        self.type_by_id(id)
    }

    /// Size in bytes of a type, through typedefs, qualifiers and arrays.
    fn size_of_type(&self, ty: &Type) -> Result<usize, OffsetsError> {
        let mut ty = ty.clone();
        let mut count: usize = 1;
        for _ in 0..MAX_DEPTH {
            let elem = match &ty {
                Type::Int(t) => return Ok(count * t.size()),
                Type::Ptr(_) => return Ok(count * POINTER_SIZE),
                Type::Struct(t) | Type::Union(t) => return Ok(count * t.size()),
                Type::Enum(t) => return Ok(count * t.size()),
                Type::Enum64(t) => return Ok(count * t.size()),
                Type::Float(t) => return Ok(count * t.size()),
                Type::Array(a) => {
                    count = count
                        .checked_mul(a.len())
                        .ok_or_else(|| self.malformed("array size overflows"))?;
                    self.chained(a)?
                }
                Type::Typedef(t) => self.chained(t)?,
                Type::Const(t) | Type::Volatile(t) | Type::Restrict(t) => self.chained(t)?,
                Type::TypeTag(t) => self.chained(t)?,
                other => {
                    return Err(self.malformed(format!("a {} has no size", other.name())));
                }
            };
            ty = elem;
        }
        Err(self.malformed("type chain is too deep"))
    }

    /// Finds `name` in `outer`, descending into anonymous struct/union members.
    fn find(&self, outer: &Composite<'_>, name: &str) -> Result<Found, OffsetsError> {
        self.find_in(outer.ty, name, 0, 0)?
            .ok_or_else(|| OffsetsError::MissingMember {
                path: self.path.to_path_buf(),
                strukt: outer.name,
                member: name.to_string(),
            })
    }

    fn find_in(
        &self,
        ty: &Struct,
        name: &str,
        base_bits: u64,
        depth: usize,
    ) -> Result<Option<Found>, OffsetsError> {
        if depth > MAX_DEPTH {
            return Err(self.malformed("anonymous members nested too deep"));
        }
        for member in &ty.members {
            let bit_offset = base_bits + u64::from(member.bit_offset());
            let member_name = self.name_of(member)?;
            if member_name == name {
                return Ok(Some(Found {
                    bit_offset,
                    member: member.clone(),
                }));
            }
            if member_name.is_empty() {
                let inner = self.peel(member.get_type_id().unwrap_or(0))?;
                if let Type::Struct(s) | Type::Union(s) = &inner {
                    if let Some(found) = self.find_in(s, name, bit_offset, depth + 1)? {
                        return Ok(Some(found));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Byte offset of `outer.member`, checked against `expect`.
    fn offset(
        &self,
        outer: &Composite<'_>,
        member: &str,
        expect: Expect,
    ) -> Result<u32, OffsetsError> {
        let found = self.find(outer, member)?;
        let offset = self.byte_offset(outer, member, &found)?;
        let ty = self.peel(found.member.get_type_id().unwrap_or(0))?;
        match expect {
            Expect::Size(None) => {}
            Expect::Size(Some(expected)) => {
                self.check_size(outer, member.to_string(), &ty, expected)?
            }
            Expect::Pointer => {
                if !matches!(ty, Type::Ptr(_)) {
                    return Err(self.unexpected(outer, member, "a pointer", &ty));
                }
                self.check_size(outer, member.to_string(), &ty, POINTER_SIZE)?;
            }
            Expect::Wrapper(field, width) => {
                self.check_wrapper(outer, member, &found, &ty, field, width)?
            }
        }
        Ok(offset)
    }

    /// The byte offset of `found` (`outer.member`): an error for a bitfield, an offset that is
    /// not a whole byte, or one that does not fit a `u32`.
    fn byte_offset(
        &self,
        outer: &Composite<'_>,
        member: &str,
        found: &Found,
    ) -> Result<u32, OffsetsError> {
        if let Some(bits) = found.member.bitfield_size().filter(|b| *b != 0) {
            return Err(OffsetsError::Bitfield {
                path: self.path.to_path_buf(),
                strukt: outer.name,
                member: member.to_string(),
                bits,
                bit_offset: found.bit_offset,
            });
        }
        if !found.bit_offset.is_multiple_of(8) {
            return Err(OffsetsError::Unaligned {
                path: self.path.to_path_buf(),
                strukt: outer.name,
                member: member.to_string(),
                bit_offset: found.bit_offset,
            });
        }
        u32::try_from(found.bit_offset / 8)
            .map_err(|_| self.malformed(format!("offset of `{}.{member}` overflows", outer.name)))
    }

    /// `SizeMismatch` unless the (peeled) type `ty` of `outer.member` is `expected` bytes.
    fn check_size(
        &self,
        outer: &Composite<'_>,
        member: String,
        ty: &Type,
        expected: usize,
    ) -> Result<(), OffsetsError> {
        let found = self.size_of_type(ty)?;
        if found != expected {
            return Err(OffsetsError::SizeMismatch {
                path: self.path.to_path_buf(),
                strukt: outer.name,
                member,
                expected,
                found,
            });
        }
        Ok(())
    }

    /// Checks that `outer.member` (found as `found`, of peeled type `ty`) is a one-field wrapper
    /// struct such as `atomic_t` or `kuid_t`: `field` at offset 0, not a bitfield, `width` bytes.
    fn check_wrapper(
        &self,
        outer: &Composite<'_>,
        member: &str,
        found: &Found,
        ty: &Type,
        field: &'static str,
        width: usize,
    ) -> Result<(), OffsetsError> {
        let Type::Struct(inner) = ty else {
            return Err(self.unexpected(
                outer,
                member,
                "a struct (such as `atomic_t` or `kuid_t`)",
                ty,
            ));
        };
        let member_path = format!("{member}.{field}");
        let inner_found =
            self.find_in(inner, field, 0, 0)?
                .ok_or_else(|| OffsetsError::MissingMember {
                    path: self.path.to_path_buf(),
                    strukt: outer.name,
                    member: member_path.clone(),
                })?;
        if let Some(bits) = inner_found.member.bitfield_size().filter(|b| *b != 0) {
            return Err(OffsetsError::Bitfield {
                path: self.path.to_path_buf(),
                strukt: outer.name,
                member: member_path,
                bits,
                bit_offset: found.bit_offset + inner_found.bit_offset,
            });
        }
        if inner_found.bit_offset != 0 {
            return Err(OffsetsError::OffsetMismatch {
                path: self.path.to_path_buf(),
                strukt: outer.name,
                member: member_path,
                expected: 0,
                found: u32::try_from(inner_found.bit_offset / 8).unwrap_or(u32::MAX),
            });
        }
        let field_ty = self.peel(inner_found.member.get_type_id().unwrap_or(0))?;
        self.check_size(outer, member_path, &field_ty, width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Instant;

    /// The running kernel's BTF, or `None` (with the reason printed) when it is absent.
    fn running_btf() -> Option<&'static Path> {
        let path = Path::new(RUNNING_KERNEL_BTF);
        if path.exists() {
            Some(path)
        } else {
            eprintln!("skipped: {RUNNING_KERNEL_BTF} is missing (kernel without BTF?)");
            None
        }
    }

    fn with_resolver<T>(f: impl FnOnce(&Resolver<'_>) -> T) -> Option<T> {
        let path = running_btf()?;
        let btf = load_btf(path).expect("load BTF");
        Some(f(&Resolver { btf: &btf, path }))
    }

    #[test]
    fn kernel_offsets_of_running_kernel_are_plausible() {
        let Some(path) = running_btf() else { return };
        let start = Instant::now();
        let o = resolve_kernel_offsets(path).expect("resolve offsets");
        eprintln!(
            "kernel_offsets: resolved from {} in {:?}: {o:#?}",
            path.display(),
            start.elapsed()
        );
        // Same through the convenience wrapper.
        assert_eq!(resolve_running_kernel_offsets().unwrap(), o);

        assert_eq!(o.valid, 1);
        let nonzero = [
            ("task_pid", o.task_pid),
            ("task_tgid", o.task_tgid),
            ("task_start_time", o.task_start_time),
            ("task_real_parent", o.task_real_parent),
            ("task_group_leader", o.task_group_leader),
            ("task_comm", o.task_comm),
            ("task_exit_code", o.task_exit_code),
            ("task_signal", o.task_signal),
            ("task_real_cred", o.task_real_cred),
            ("signal_live", o.signal_live),
            ("cred_uid", o.cred_uid),
            ("sock_protocol", o.sock_protocol),
            ("skc_family", o.skc_family),
            ("skc_num", o.skc_num),
            ("skc_dport", o.skc_dport),
            ("skc_rcv_saddr", o.skc_rcv_saddr),
            ("skc_v6_daddr", o.skc_v6_daddr),
            ("skc_v6_rcv_saddr", o.skc_v6_rcv_saddr),
            ("skc_state", o.skc_state),
            ("task_sum_exec_runtime", o.task_sum_exec_runtime),
            ("task_state", o.task_state),
            ("task_exit_state", o.task_exit_state),
            ("task_flags", o.task_flags),
            ("task_thread_node", o.task_thread_node),
            ("task_children", o.task_children),
            ("task_sibling", o.task_sibling),
            ("signal_thread_head", o.signal_thread_head),
            ("signal_sum_sched_runtime", o.signal_sum_sched_runtime),
            ("signal_nr_threads", o.signal_nr_threads),
            ("inet_sport", o.inet_sport),
            ("tcp_bytes_sent", o.tcp_bytes_sent),
            ("tcp_bytes_retrans", o.tcp_bytes_retrans),
            ("tcp_bytes_received", o.tcp_bytes_received),
            ("tcp_snd_una", o.tcp_snd_una),
            ("tcp_write_seq", o.tcp_write_seq),
            ("task_static_prio", o.task_static_prio),
            ("task_mm", o.task_mm),
            ("mm_rss_file", o.mm_rss_file),
            ("mm_total_vm", o.mm_total_vm),
            ("task_cgroups", o.task_cgroups),
        ];
        for (name, value) in nonzero {
            assert_ne!(value, 0, "{name} resolved to 0");
            assert!(value < 16 * 1024, "{name} = {value} is implausibly large");
        }
        // rss_stat[MM_FILEPAGES, MM_ANONPAGES, .., MM_SHMEMPAGES]: equal strides.
        let stride = o.mm_rss_anon - o.mm_rss_file;
        assert!(stride >= 16, "percpu_counter stride {stride}");
        assert_eq!(o.mm_rss_shmem, o.mm_rss_file + 3 * stride);
        assert_eq!(
            1u64 << o.page_shift,
            unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
        );
        // The children list is followed by the sibling link (both list_heads).
        assert_eq!(o.task_sibling, o.task_children + 16);
        // SOCK_DEAD is 0, SOCK_DONE 1 since the enum exists.
        assert_eq!(o.sock_done_bit, 1);
        // Layout facts of 6.x kernels (daddr/rcv_saddr pair, dport/num pair, adjacent pid/tgid).
        assert_eq!(o.skc_rcv_saddr, o.skc_daddr + 4);
        assert_eq!(o.skc_num, o.skc_dport + 2);
        assert_eq!(o.skc_v6_rcv_saddr, o.skc_v6_daddr + 16);
        assert_eq!(o.task_tgid, o.task_pid + 4);
        assert_eq!(o.skc_state, o.skc_family + 2);
        // The whole of sock_common (which ends after skc_v6_rcv_saddr) precedes sk_protocol.
        assert!(o.sock_protocol > o.skc_v6_rcv_saddr);
    }

    #[test]
    fn kernel_offsets_mapped_and_parsed_btf_agree() {
        let Some(path) = running_btf() else { return };
        let start = Instant::now();
        let mapped = resolve_kernel_offsets(path).expect("resolve offsets");
        let mapped_time = start.elapsed();
        // The fallback path: whole file read and parsed (`Backend::Cache`).
        let start = Instant::now();
        let bytes = std::fs::read(path).expect("read BTF");
        let btf = Btf::from_bytes(&bytes).expect("parse BTF");
        let parsed = Resolver { btf: &btf, path }
            .resolve()
            .expect("resolve offsets");
        let parsed_time = start.elapsed();
        eprintln!(
            "kernel_offsets: mmap backend (with fallback) {mapped_time:?}, read+parse backend \
             {parsed_time:?}"
        );
        assert_eq!(mapped, parsed);
    }

    /// Members of the structs and unions in `bpftool btf dump file <path>` (raw format):
    /// type id -> [(member name, member type id, bit offset, is bitfield)].
    type RawMembers = HashMap<u32, Vec<(String, u32, u64, bool)>>;

    /// Parses bpftool's raw dump into struct ids by name and members by struct/union id.
    fn parse_bpftool_raw(dump: &str) -> (HashMap<String, u32>, RawMembers) {
        let mut structs = HashMap::new();
        let mut members: RawMembers = HashMap::new();
        let mut current: Option<u32> = None;
        for line in dump.lines() {
            if let Some(rest) = line.strip_prefix('[') {
                // `[114] STRUCT 'task_struct' size=3264 vlen=248`
                current = None;
                let (id, rest) = rest.split_once("] ").expect("type line");
                let id: u32 = id.parse().expect("type id");
                let mut words = rest.split_whitespace();
                let kind = words.next().unwrap_or_default();
                if kind == "STRUCT" || kind == "UNION" {
                    let name = words.next().unwrap_or_default().trim_matches('\'');
                    if kind == "STRUCT" && name != "(anon)" {
                        structs.entry(name.to_string()).or_insert(id);
                    }
                    current = Some(id);
                    members.insert(id, Vec::new());
                }
            } else if let (Some(id), Some(rest)) = (current, line.strip_prefix("\t'")) {
                // `\t'pid' type_id=68 bits_offset=10112[ bitfield_size=N]`
                let (name, rest) = rest.split_once('\'').expect("member name");
                let field = |key: &str| {
                    rest.split_whitespace()
                        .find_map(|w| w.strip_prefix(key))
                        .map(|v| v.parse::<u64>().expect("number"))
                };
                let name = if name == "(anon)" { "" } else { name };
                members.get_mut(&id).unwrap().push((
                    name.to_string(),
                    field("type_id=").expect("type_id") as u32,
                    field("bits_offset=").expect("bits_offset"),
                    field("bitfield_size=").is_some_and(|b| b != 0),
                ));
            }
        }
        (structs, members)
    }

    /// Bit offset of `name` in type `id` of the raw dump, through anonymous members.
    fn raw_bit_offset(members: &RawMembers, id: u32, name: &str) -> Option<u64> {
        for (member, type_id, bits, _) in members.get(&id)? {
            if member == name {
                return Some(*bits);
            }
            if member.is_empty() {
                if let Some(inner) = raw_bit_offset(members, *type_id, name) {
                    return Some(bits + inner);
                }
            }
        }
        None
    }

    #[test]
    fn kernel_offsets_match_bpftool() {
        let Some(path) = running_btf() else { return };
        let bpftool = [
            "/usr/sbin/bpftool",
            "/usr/bin/bpftool",
            "/usr/local/sbin/bpftool",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists());
        let Some(bpftool) = bpftool else {
            eprintln!("skipped: bpftool not installed, cannot cross-check offsets");
            return;
        };
        let out = std::process::Command::new(bpftool)
            .args(["btf", "dump", "file"])
            .arg(path)
            .output()
            .expect("run bpftool");
        if !out.status.success() {
            eprintln!(
                "skipped: `{bpftool} btf dump file {}` failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        let (structs, members) = parse_bpftool_raw(&String::from_utf8_lossy(&out.stdout));
        let bytes = |strukt: &str, member: &str| -> u32 {
            let id = structs[strukt];
            let bits = raw_bit_offset(&members, id, member)
                .unwrap_or_else(|| panic!("bpftool shows no {strukt}.{member}"));
            assert_eq!(bits % 8, 0, "{strukt}.{member} not byte aligned in bpftool");
            (bits / 8) as u32
        };

        let o = resolve_kernel_offsets(path).expect("resolve offsets");
        let checks = [
            ("task_struct", "pid", o.task_pid),
            ("task_struct", "tgid", o.task_tgid),
            ("task_struct", "start_time", o.task_start_time),
            ("task_struct", "real_parent", o.task_real_parent),
            ("task_struct", "group_leader", o.task_group_leader),
            ("task_struct", "comm", o.task_comm),
            ("task_struct", "exit_code", o.task_exit_code),
            ("task_struct", "signal", o.task_signal),
            ("task_struct", "real_cred", o.task_real_cred),
            ("signal_struct", "live", o.signal_live),
            ("cred", "uid", o.cred_uid),
            ("sock", "sk_protocol", o.sock_protocol),
            ("sock", "__sk_common", 0),
            ("sock_common", "skc_family", o.skc_family),
            ("sock_common", "skc_num", o.skc_num),
            ("sock_common", "skc_dport", o.skc_dport),
            ("sock_common", "skc_daddr", o.skc_daddr),
            ("sock_common", "skc_rcv_saddr", o.skc_rcv_saddr),
            ("sock_common", "skc_v6_daddr", o.skc_v6_daddr),
            ("sock_common", "skc_v6_rcv_saddr", o.skc_v6_rcv_saddr),
            ("sock_common", "skc_state", o.skc_state),
            ("task_struct", "static_prio", o.task_static_prio),
            ("task_struct", "mm", o.task_mm),
            ("mm_struct", "arg_start", o.mm_arg_start),
            ("mm_struct", "arg_end", o.mm_arg_end),
            ("mm_struct", "total_vm", o.mm_total_vm),
            ("task_struct", "cgroups", o.task_cgroups),
            ("css_set", "dfl_cgrp", o.css_set_dfl_cgrp),
            ("cgroup", "kn", o.cgroup_kn),
            ("kernfs_node", "id", o.kernfs_node_id),
            // MM_FILEPAGES is 0: rss_stat[0].count is rss_stat + offsetof(count).
            (
                "mm_struct",
                "rss_stat",
                o.mm_rss_file - bytes("percpu_counter", "count"),
            ),
        ];
        for (strukt, member, ours) in checks {
            assert_eq!(ours, bytes(strukt, member), "{strukt}.{member}");
        }
        eprintln!(
            "kernel_offsets: {} offsets agree with bpftool",
            checks.len()
        );
    }

    #[test]
    fn kernel_offsets_missing_btf_file_is_a_typed_error() {
        let path = Path::new("/nonexistent/kernel_offsets_test/vmlinux");
        let err = resolve_kernel_offsets(path).unwrap_err();
        assert!(
            matches!(err, OffsetsError::BtfUnavailable { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/kernel_offsets_test/vmlinux"),
            "{msg}"
        );
        assert!(msg.contains("CONFIG_DEBUG_INFO_BTF=y"), "{msg}");
    }

    #[test]
    fn kernel_offsets_garbage_btf_file_is_a_typed_error() {
        let path = std::env::temp_dir().join(format!(
            "bridge-kernel-offsets-garbage-{}.btf",
            std::process::id()
        ));
        std::fs::write(&path, b"this is not BTF, not even close to it").unwrap();
        let err = resolve_kernel_offsets(&path).unwrap_err();
        std::fs::remove_file(&path).ok();
        assert!(matches!(err, OffsetsError::InvalidBtf { .. }), "{err:?}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }

    #[test]
    fn kernel_offsets_error_paths_on_running_kernel() {
        with_resolver(|r| {
            let task = r.lookup_struct("task_struct").unwrap();
            let task = Composite::new("task_struct", &task);
            let skc = r.lookup_struct("sock_common").unwrap();
            let skc = Composite::new("sock_common", &skc);

            let err = r
                .offset(&task, "no_such_member", Expect::Size(None))
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "kernel BTF at /sys/kernel/btf/vmlinux has no member `no_such_member` in \
                 `struct task_struct`"
            );

            let err = r.lookup_struct("no_such_struct_xyz").unwrap_err();
            assert!(matches!(err, OffsetsError::MissingStruct { .. }), "{err:?}");

            // skc_reuse is `unsigned char skc_reuse:4`.
            let err = r.offset(&skc, "skc_reuse", Expect::Size(None)).unwrap_err();
            assert!(
                matches!(err, OffsetsError::Bitfield { bits: 4, .. }),
                "{err:?}"
            );

            let err = r.offset(&task, "pid", Expect::Size(Some(8))).unwrap_err();
            assert!(
                matches!(
                    err,
                    OffsetsError::SizeMismatch {
                        expected: 8,
                        found: 4,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                "kernel BTF at /sys/kernel/btf/vmlinux: `task_struct.pid` is 4 bytes, the probe \
                 expects 8"
            );

            let err = r.offset(&task, "pid", Expect::Pointer).unwrap_err();
            assert!(
                matches!(err, OffsetsError::UnexpectedType { .. }),
                "{err:?}"
            );

            // `comm` is a char array, not an atomic_t-like wrapper.
            let err = r
                .offset(&task, "comm", Expect::Wrapper("counter", 4))
                .unwrap_err();
            assert!(
                matches!(err, OffsetsError::UnexpectedType { .. }),
                "{err:?}"
            );

            // The anonymous enum of rss_stat indices, as in include/linux/mm_types_task.h.
            assert_eq!(r.mm_counter_indices().unwrap(), [0, 1, 3]);
        });
    }
}
