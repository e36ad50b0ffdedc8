//! `bridge::map_batch` against real BPF maps on the running kernel (needs root / CAP_BPF).
//!
//! Without the privilege the tests print why and pass, unless `CI=true`, where a skip fails.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use bridge::map_batch::test_support::{
    create_hash_map_for_tests, create_map, delete_elem, update_elem,
};
use bridge::map_batch::{
    dump_map, dump_map_typed, map_fd_memlock_bytes, DumpPath, DumpStrategy, MapDump, MapDumpError,
    BPF_F_NO_PREALLOC, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH,
};
use probe_common::{ProcKey, ProcState};

const KEY_SIZE: usize = 16;
const VALUE_SIZE: usize = std::mem::size_of::<ProcState>();
const MAX_ENTRIES: u32 = 16384;

type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// Create a map, or explain the skip (`None`). Panics instead of skipping when `CI=true`.
fn create_or_skip(map_type: u32, flags: u32, test: &str) -> Option<OwnedFd> {
    match create_map(
        map_type,
        KEY_SIZE as u32,
        VALUE_SIZE as u32,
        MAX_ENTRIES,
        flags,
    ) {
        Ok(fd) => Some(fd),
        Err(e) if e.is_permission_denied() => {
            let reason = format!(
                "SKIP {test}: bpf(BPF_MAP_CREATE) refused ({e}); run as root or with CAP_BPF"
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{reason} (CI=true: skipping is not allowed)");
            }
            eprintln!("{reason}");
            None
        }
        Err(e) => panic!("{test}: BPF_MAP_CREATE failed: {e}"),
    }
}

/// Deterministic key/value for entry `i`, laid out as `ProcKey` / `ProcState`.
fn entry(i: u32) -> (ProcKey, ProcState) {
    let key = ProcKey {
        tgid: i.wrapping_mul(2_654_435_761) ^ 0x5a5a,
        pad: 0,
        start_ns: u64::from(i) * 1_000_003 + 17,
    };
    let mut comm = [0u8; 16];
    let name = format!("proc-{i}");
    comm[..name.len()].copy_from_slice(name.as_bytes());
    let state = ProcState {
        ppid: i / 3,
        uid: i % 1000,
        exit_code: i % 256,
        flags: i % 4,
        start_ns: key.start_ns,
        exit_ns: u64::from(i) << 20,
        cpu_ns: u64::from(i) * 12_345,
        sampled_ns: u64::from(i) * 7,
        last_emit_ns: !u64::from(i),
        poll_seq: u64::from(i) + 1,
        task_addr: u64::from(i) << 12,
        task_state: i % 3,
        exit_state: i % 2,
        exit_tid: i,
        retry_cycle: i / 5,
        threads: 1 + i % 7,
        nice: (i % 40) as i32 - 20,
        comm,
        rss_bytes: u64::from(i) << 16,
        virt_bytes: u64::from(i) << 18,
        cgroup_id: u64::from(i) + 2,
    };
    (key, state)
}

fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: ProcKey / ProcState are repr(C) with explicit padding (no uninitialised bytes).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// A fresh map of `map_type` holding entries `0..n` with what was inserted, or the skip
/// (`None`) of [`create_or_skip`].
fn filled_or_skip(map_type: u32, n: u32, test: &str) -> Option<(OwnedFd, Entries)> {
    let fd = create_or_skip(map_type, 0, test)?;
    let inserted = fill(&fd, n);
    Some((fd, inserted))
}

fn fill(fd: &OwnedFd, n: u32) -> Entries {
    let mut inserted = Entries::new();
    for i in 0..n {
        let (k, v) = entry(i);
        update_elem(fd.as_fd(), bytes_of(&k), bytes_of(&v)).expect("BPF_MAP_UPDATE_ELEM");
        inserted.insert(bytes_of(&k).to_vec(), bytes_of(&v).to_vec());
    }
    inserted
}

/// Dump with `strategy`, check the reported path, and return the entries as a set, asserting
/// that no key came twice.
fn dump_set(fd: &OwnedFd, strategy: DumpStrategy, out: &mut MapDump) -> Entries {
    let path = dump_map(fd.as_fd(), KEY_SIZE, VALUE_SIZE, strategy, out).expect("dump_map");
    let want = match strategy {
        DumpStrategy::IterateOnly => DumpPath::KeyIteration,
        // Our kernel (6.18) supports batch lookup on hash maps, so Auto must pick it.
        DumpStrategy::BatchOnly | DumpStrategy::Auto => DumpPath::Batch,
    };
    assert_eq!(path, want, "{strategy:?}");
    assert_eq!(out.iter().len(), out.len());
    assert_eq!(out.keys().len(), out.len() * KEY_SIZE);
    assert_eq!(out.values().len(), out.len() * VALUE_SIZE);
    let mut set = Entries::new();
    for (k, v) in out.iter() {
        assert_eq!((k.len(), v.len()), (KEY_SIZE, VALUE_SIZE));
        assert!(
            set.insert(k.to_vec(), v.to_vec()).is_none(),
            "duplicate key"
        );
    }
    set
}

/// Fill a fresh map of `map_type` with each size and compare every path with what was inserted.
fn check_all_paths(map_type: u32, flags: u32, test: &str) {
    for n in [0u32, 1, 999, 10_000] {
        let Some(fd) = create_or_skip(map_type, flags, test) else {
            return;
        };
        let inserted = fill(&fd, n);
        let mut out = MapDump::new();
        let batch = dump_set(&fd, DumpStrategy::BatchOnly, &mut out);
        let iter = dump_set(&fd, DumpStrategy::IterateOnly, &mut out);
        let auto = dump_set(&fd, DumpStrategy::Auto, &mut out);
        assert_eq!(batch.len(), n as usize, "{test}: batch count for {n}");
        assert_eq!(iter.len(), n as usize, "{test}: iteration count for {n}");
        assert!(batch == inserted, "{test}: batch != inserted for {n}");
        assert!(iter == inserted, "{test}: iteration != inserted for {n}");
        assert!(auto == batch, "{test}: auto != batch for {n}");
        // A 1-entry chunk forces ENOSPC on every bucket holding 2+ entries: the chunk must grow
        // and the result stay exact.
        let mut tiny = MapDump::with_batch_entries(1);
        let small = dump_set(&fd, DumpStrategy::BatchOnly, &mut tiny);
        assert!(
            small == inserted,
            "{test}: 1-entry chunks != inserted for {n}"
        );
        eprintln!(
            "{test}: {n} entries OK (batch, iteration, auto, chunk 1 -> grew to {})",
            tiny.batch_entries()
        );
    }
}

#[test]
fn hash_batch_and_iteration_agree() {
    check_all_paths(BPF_MAP_TYPE_HASH, 0, "hash_batch_and_iteration_agree");
}

#[test]
fn hash_no_prealloc_batch_and_iteration_agree() {
    check_all_paths(
        BPF_MAP_TYPE_HASH,
        BPF_F_NO_PREALLOC,
        "hash_no_prealloc_batch_and_iteration_agree",
    );
}

#[test]
fn lru_hash_batch_and_iteration_agree() {
    check_all_paths(
        BPF_MAP_TYPE_LRU_HASH,
        0,
        "lru_hash_batch_and_iteration_agree",
    );
}

#[test]
fn sparse_map_and_buffer_reuse() {
    // 16384 buckets, 3 entries: the batch walk must cross many empty buckets and end on ENOENT.
    let Some((fd, mut inserted)) =
        filled_or_skip(BPF_MAP_TYPE_HASH, 3, "sparse_map_and_buffer_reuse")
    else {
        return;
    };
    let mut out = MapDump::new();
    assert!(dump_set(&fd, DumpStrategy::Auto, &mut out) == inserted);

    // Grow, then shrink: the same buffer reports only the current entries.
    inserted = fill(&fd, 5000);
    assert!(dump_set(&fd, DumpStrategy::Auto, &mut out) == inserted);
    assert!(dump_set(&fd, DumpStrategy::IterateOnly, &mut out) == inserted);
    let allocated = out.allocated_bytes();
    for i in 10..5000 {
        let (k, _) = entry(i);
        delete_elem(fd.as_fd(), bytes_of(&k)).expect("BPF_MAP_DELETE_ELEM");
        inserted.remove(bytes_of(&k));
    }
    assert_eq!(inserted.len(), 10);
    assert!(dump_set(&fd, DumpStrategy::BatchOnly, &mut out) == inserted);
    assert!(dump_set(&fd, DumpStrategy::IterateOnly, &mut out) == inserted);
    assert_eq!(
        out.allocated_bytes(),
        allocated,
        "a smaller dump must not reallocate"
    );

    // Updating a value in place shows up in the next dump.
    let (k, mut v) = entry(3);
    v.cpu_ns = 42;
    update_elem(fd.as_fd(), bytes_of(&k), bytes_of(&v)).unwrap();
    inserted.insert(bytes_of(&k).to_vec(), bytes_of(&v).to_vec());
    assert!(dump_set(&fd, DumpStrategy::Auto, &mut out) == inserted);
}

#[test]
fn typed_dump_matches_inserted() {
    let Some((fd, _)) = filled_or_skip(BPF_MAP_TYPE_LRU_HASH, 999, "typed_dump_matches_inserted")
    else {
        return;
    };
    let mut scratch = MapDump::new();
    for strategy in [DumpStrategy::Auto, DumpStrategy::IterateOnly] {
        let (mut got, path) =
            dump_map_typed::<ProcKey, ProcState>(fd.as_fd(), strategy, &mut scratch).unwrap();
        assert_eq!(
            path,
            if strategy == DumpStrategy::Auto {
                DumpPath::Batch
            } else {
                DumpPath::KeyIteration
            }
        );
        got.sort_by_key(|(k, _)| *k);
        let mut want: Vec<_> = (0..999).map(entry).collect();
        want.sort_by_key(|(k, _)| *k);
        assert_eq!(got, want);
        // The scratch buffer holds the same entries, readable without copying them out.
        assert_eq!(
            scratch.iter_typed::<ProcKey, ProcState>().unwrap().len(),
            999
        );
    }
}

#[test]
fn wrong_sizes_and_types_are_typed_errors() {
    let Some((fd, _)) = filled_or_skip(
        BPF_MAP_TYPE_HASH,
        10,
        "wrong_sizes_and_types_are_typed_errors",
    ) else {
        return;
    };
    let mut out = MapDump::new();
    let e = dump_map(fd.as_fd(), 8, VALUE_SIZE, DumpStrategy::Auto, &mut out).unwrap_err();
    assert!(
        matches!(
            e,
            MapDumpError::KeySizeMismatch {
                expected: 8,
                actual: 16
            }
        ),
        "{e:?}"
    );
    let e = dump_map(
        fd.as_fd(),
        KEY_SIZE,
        VALUE_SIZE + 8,
        DumpStrategy::Auto,
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(e, MapDumpError::ValueSizeMismatch { .. }), "{e:?}");
    assert!(out.is_empty());
    let e = dump_map_typed::<u64, ProcState>(fd.as_fd(), DumpStrategy::Auto, &mut out).unwrap_err();
    assert!(matches!(e, MapDumpError::KeySizeMismatch { .. }), "{e:?}");

    // Typed view over a dump with other sizes is refused, not misread.
    dump_map(
        fd.as_fd(),
        KEY_SIZE,
        VALUE_SIZE,
        DumpStrategy::Auto,
        &mut out,
    )
    .unwrap();
    assert!(out.iter_typed::<ProcKey, [u8; 8]>().is_err());

    // An array map is not a hash map.
    let arr = create_map(BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0).expect("create array map");
    let e = dump_map(arr.as_fd(), 4, 8, DumpStrategy::Auto, &mut out).unwrap_err();
    assert!(
        matches!(e, MapDumpError::UnsupportedMapType { map_type: 2 }),
        "{e:?}"
    );

    // A non-BPF fd: the kernel's answer comes back with its command and errno.
    let file = std::fs::File::open("/proc/self/status").unwrap();
    let e = dump_map(
        file.as_fd(),
        KEY_SIZE,
        VALUE_SIZE,
        DumpStrategy::Auto,
        &mut out,
    )
    .unwrap_err();
    assert_eq!(
        e.cmd(),
        Some(bridge::map_batch::BpfCmd::ObjGetInfoByFd),
        "{e:?}"
    );
    assert!(e.errno().is_some(), "{e:?}");
    eprintln!("non-BPF fd: {e}");
}

#[test]
fn memlock_of_real_map_fd() {
    let test = "memlock_of_real_map_fd";
    let Some(fd) = create_or_skip(BPF_MAP_TYPE_HASH, 0, test) else {
        return;
    };
    let bytes = map_fd_memlock_bytes(fd.as_fd()).expect("memlock from fdinfo");
    eprintln!(
        "{test}: hash map 16 B key / {VALUE_SIZE} B value / 16384 entries: memlock {bytes} bytes"
    );
    // Preallocated: at least key + value for every possible entry.
    assert!(
        bytes >= u64::from(MAX_ENTRIES) * (KEY_SIZE + VALUE_SIZE) as u64,
        "{bytes}"
    );
    let small = create_hash_map_for_tests(16, VALUE_SIZE as u32, 16).unwrap();
    assert!(map_fd_memlock_bytes(small.as_fd()).unwrap() < bytes);
    // Not a BPF fd: an error, no panic.
    let file = std::fs::File::open("/proc/self/status").unwrap();
    assert!(map_fd_memlock_bytes(file.as_fd()).is_err());
}

/// Not an assertion (timings are machine-dependent): prints batch vs key iteration for 10,000
/// entries so the difference is visible with `--nocapture`.
#[test]
fn timing_batch_vs_iteration_10k() {
    let test = "timing_batch_vs_iteration_10k";
    let Some((fd, _)) = filled_or_skip(BPF_MAP_TYPE_HASH, 10_000, test) else {
        return;
    };
    let time = |strategy: DumpStrategy, chunk: u32| -> Duration {
        let mut out = MapDump::with_batch_entries(chunk);
        // Warm-up (also sizes the buffer), then the median of 7 runs.
        dump_map(fd.as_fd(), KEY_SIZE, VALUE_SIZE, strategy, &mut out).unwrap();
        let mut runs: Vec<Duration> = (0..7)
            .map(|_| {
                let t = Instant::now();
                dump_map(fd.as_fd(), KEY_SIZE, VALUE_SIZE, strategy, &mut out).unwrap();
                let d = t.elapsed();
                assert_eq!(out.len(), 10_000);
                d
            })
            .collect();
        runs.sort();
        runs[runs.len() / 2]
    };
    let batch = time(
        DumpStrategy::BatchOnly,
        bridge::map_batch::DEFAULT_BATCH_ENTRIES,
    );
    let iter = time(DumpStrategy::IterateOnly, 1);
    let big = time(DumpStrategy::BatchOnly, 16_384);
    eprintln!(
        "{test}: 10,000 entries (16 B key, {VALUE_SIZE} B value), median of 7: batch {:?} ({:.0} ns/entry), \
         key iteration {:?} ({:.0} ns/entry), ratio {:.1}x; batch with 16384-entry chunks {:?}",
        batch,
        batch.as_nanos() as f64 / 10_000.0,
        iter,
        iter.as_nanos() as f64 / 10_000.0,
        iter.as_secs_f64() / batch.as_secs_f64().max(1e-9),
        big,
    );
}

/// Dumps while another thread deletes and re-inserts a disjoint set of keys: no error, no panic,
/// every stable entry present with its value, nothing unknown; the batch path also never
/// repeats a key. (Key iteration may repeat keys or, in theory, give up with `IterationLimit`.)
#[test]
fn dump_under_concurrent_churn() {
    let test = "dump_under_concurrent_churn";
    let Some((fd, stable)) = filled_or_skip(BPF_MAP_TYPE_HASH, 2000, test) else {
        return;
    };
    let churn: Vec<(ProcKey, ProcState)> = (100_000..102_000).map(entry).collect();
    let known: Entries = stable
        .clone()
        .into_iter()
        .chain(
            churn
                .iter()
                .map(|(k, v)| (bytes_of(k).to_vec(), bytes_of(v).to_vec())),
        )
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (k, v) in &churn {
                    update_elem(fd.as_fd(), bytes_of(k), bytes_of(v)).unwrap();
                }
                for (k, _) in &churn {
                    delete_elem(fd.as_fd(), bytes_of(k)).unwrap();
                }
            }
        });
        let mut out = MapDump::new();
        let (mut iter_ok, mut iter_gave_up, mut max_dupes) = (0, 0, 0usize);
        for round in 0..40 {
            let strategy = if round % 2 == 0 {
                DumpStrategy::BatchOnly
            } else {
                DumpStrategy::IterateOnly
            };
            match dump_map(fd.as_fd(), KEY_SIZE, VALUE_SIZE, strategy, &mut out) {
                Ok(_) => {}
                Err(MapDumpError::IterationLimit { .. }) if strategy != DumpStrategy::BatchOnly => {
                    iter_gave_up += 1;
                    continue;
                }
                Err(e) => panic!("{strategy:?} under churn: {e}"),
            }
            let mut seen = Entries::new();
            let mut dupes = 0;
            for (k, v) in out.iter() {
                assert_eq!(known.get(k).map(Vec::as_slice), Some(v), "unknown entry");
                if seen.insert(k.to_vec(), v.to_vec()).is_some() {
                    dupes += 1;
                }
            }
            if strategy == DumpStrategy::BatchOnly {
                assert_eq!(dupes, 0, "batch repeated a key");
            } else {
                iter_ok += 1;
                max_dupes = max_dupes.max(dupes);
            }
            for k in stable.keys() {
                assert!(seen.contains_key(k), "{strategy:?} missed a stable entry");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "{test}: 20 batch dumps exact on the stable set; key iteration: {iter_ok} ok \
             (at most {max_dupes} repeated keys), {iter_gave_up} gave up"
        );
    });
}

#[test]
fn delete_keys_removes_the_listed_keys_and_skips_the_absent_ones() {
    let test = "delete_keys_removes_the_listed_keys_and_skips_the_absent_ones";
    let Some((fd, _)) = filled_or_skip(BPF_MAP_TYPE_HASH, 1000, test) else {
        return;
    };
    // Every third entry, with two keys that are not in the map (one first, one in the middle)
    // and one listed twice: the batch stops at each and must go on after it.
    let mut keys: Vec<ProcKey> = vec![entry(5000).0];
    keys.extend((0..1000).step_by(3).map(|i| entry(i).0));
    keys.insert(100, entry(7000).0);
    keys.push(entry(3).0);
    let removed = bridge::map_batch::delete_keys(fd.as_fd(), &keys).unwrap();
    let listed_present = (0..1000).step_by(3).count();
    assert_eq!(
        removed, listed_present,
        "removed {removed}, expected {listed_present}"
    );
    let left = dump_set(&fd, DumpStrategy::Auto, &mut MapDump::new());
    let expected: Entries = (0..1000u32)
        .filter(|i| i % 3 != 0)
        .map(|i| {
            let (k, v) = entry(i);
            (bytes_of(&k).to_vec(), bytes_of(&v).to_vec())
        })
        .collect();
    assert_eq!(
        left.len(),
        expected.len(),
        "entries left: {} vs {}",
        left.len(),
        expected.len()
    );
    assert!(
        left == expected,
        "the entries left are not the unlisted ones"
    );
    // A key of the wrong size is refused before anything is removed.
    let err = bridge::map_batch::delete_keys(fd.as_fd(), &[0u64; 3]).unwrap_err();
    assert!(matches!(err, MapDumpError::KeySizeMismatch { .. }), "{err}");
    assert_eq!(
        dump_set(&fd, DumpStrategy::Auto, &mut MapDump::new()).len(),
        expected.len()
    );
}
