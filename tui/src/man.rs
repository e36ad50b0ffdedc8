//! Man pages (clap_mangen) from the clap definition: `bpftop-ordered.1` and one page per
//! subcommand (`bpftop-ordered-dump.1`, ...), checked into `dist/man/`.
//!
//! Only the test below uses this: it fails when the checked-in pages differ from what the
//! current command line generates, and rewrites them instead under `BPFTOP_BLESS_MAN=1`, which
//! is what `cargo xtask man` sets.

use clap::CommandFactory;

use crate::cli::Cli;

/// Every page as (file name, roff bytes): the top-level command first, then its non-hidden
/// subcommands, recursively (clap's `help` subcommand left out, as `clap_mangen::generate_to`).
pub fn pages() -> Vec<(String, Vec<u8>)> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) {
        let man = clap_mangen::Man::new(cmd.clone());
        let mut roff = Vec::new();
        man.render(&mut roff)
            .expect("rendering into memory cannot fail");
        out.push((man.get_filename(), roff));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub.clone(), out);
        }
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::{fs, path::Path};

    use super::pages;

    /// The checked-in man pages are what the current command line generates (no stale page,
    /// none missing, none left over); `BPFTOP_BLESS_MAN=1` rewrites them (`cargo xtask man`).
    #[test]
    fn checked_in_man_pages_are_current() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/man");
        let pages = pages();
        let bless = std::env::var_os("BPFTOP_BLESS_MAN").is_some_and(|v| v == "1");
        if bless {
            if dir.exists() {
                for entry in fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.extension().is_some_and(|e| e == "1") {
                        fs::remove_file(&path).unwrap();
                    }
                }
            }
            fs::create_dir_all(&dir).unwrap();
            for (name, roff) in &pages {
                fs::write(dir.join(name), roff).unwrap();
                eprintln!("wrote dist/man/{name}");
            }
            return;
        }
        let mut on_disk: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask man`", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".1"))
            .collect();
        on_disk.sort();
        let mut expected: Vec<String> = pages.iter().map(|(n, _)| n.clone()).collect();
        expected.sort();
        assert_eq!(
            on_disk, expected,
            "dist/man/ has other pages than the CLI generates; run `cargo xtask man`"
        );
        for (name, roff) in &pages {
            let committed = fs::read(dir.join(name)).unwrap();
            assert!(
                committed == *roff,
                "dist/man/{name} is stale; run `cargo xtask man` and commit the result"
            );
        }
    }
}
