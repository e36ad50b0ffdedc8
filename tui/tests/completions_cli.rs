//! `bpftop-ordered completions SHELL` (docs/contract.md "Command line"): a script for bash, zsh
//! and fish that knows the subcommands; an unknown shell is a usage error (exit 2, clap's message).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bpftop-ordered");

fn completions(shell: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["completions", shell])
        .output()
        .expect("run bpftop-ordered")
}

#[test]
fn each_shell_gets_a_script_that_names_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = completions(shell);
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).expect("UTF-8 script");
        assert!(!script.trim().is_empty(), "{shell}: empty script");
        for word in ["dump", "serve", "bench", "completions", "--duration"] {
            assert!(script.contains(word), "{shell}: script lacks {word:?}");
        }
        assert!(out.stderr.is_empty(), "{shell}: stderr {:?}", out.stderr);
    }
    // Each is in the shell's own syntax.
    let bash = String::from_utf8(completions("bash").stdout).unwrap();
    assert!(bash.contains("complete -F"), "bash: no `complete -F`");
    let zsh = String::from_utf8(completions("zsh").stdout).unwrap();
    assert!(
        zsh.starts_with("#compdef bpftop-ordered"),
        "zsh: no #compdef"
    );
    let fish = String::from_utf8(completions("fish").stdout).unwrap();
    assert!(
        fish.contains("complete -c bpftop-ordered"),
        "fish: no `complete -c`"
    );
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = completions("tcsh");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'tcsh'") && stderr.contains("bash, zsh, fish"),
        "{stderr}"
    );
    let missing = Command::new(BIN).arg("completions").output().unwrap();
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
}
