#!/usr/bin/env bash
# CI: build the Debian package (cargo xtask deb), install it on this machine, run the installed
# binary, check what it installed, then purge it and check that nothing of it is left.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "ci-deb: $*" >&2; exit 1; }

if dpkg-query -W -f='${Status}' bpftop-ordered 2>/dev/null | grep -q "install ok installed"; then
  dpkg --purge bpftop-ordered
fi
# On a CI machine (fresh), start without the group, to see postinst create it.
if [ "${CI:-}" = true ] && getent group bpftop >/dev/null && [ -z "$(getent group bpftop | cut -d: -f4)" ]; then
  groupdel bpftop
fi
cargo xtask deb
deb=$(ls -t target/debian/bpftop-ordered_*.deb | head -1)
dpkg -i "$deb"

/usr/bin/bpftop-ordered --version
getent group bpftop >/dev/null || fail "postinst did not create group bpftop"
for f in /usr/share/man/man1/bpftop-ordered.1.gz /usr/share/man/man1/bpftop-ordered-serve.1.gz \
         /usr/share/bash-completion/completions/bpftop-ordered \
         /usr/share/zsh/vendor-completions/_bpftop-ordered \
         /usr/share/fish/vendor_completions.d/bpftop-ordered.fish \
         /lib/systemd/system/bpftop-ordered.service; do
  [ -s "$f" ] || fail "$f missing or empty"
done
grep -q '^ExecStart=/usr/bin/bpftop-ordered serve' /lib/systemd/system/bpftop-ordered.service \
  || fail "the unit does not start /usr/bin/bpftop-ordered"

# The installed binary loads its embedded probes: a short dump sees this shell's processes,
# with a kernel-fed row for a process started under the probes.
out=$(mktemp)
( sleep 1; sh -c 'exit 7' ) &
/usr/bin/bpftop-ordered dump --mode ring --table processes --format json --duration 2s >"$out"
wait
rows=$(grep -c '"pid"' "$out" || true)
[ "$rows" -gt 10 ] || fail "installed dump printed $rows process rows"
grep -q '"exit_code":7' "$out" || fail "installed dump did not see the process that exited with 7"
echo "ci-deb: installed dump printed $rows process rows, the exit-7 process among them"
rm -f "$out"

dpkg --purge bpftop-ordered
[ ! -e /usr/bin/bpftop-ordered ] || fail "/usr/bin/bpftop-ordered left after purge"
[ ! -e /lib/systemd/system/bpftop-ordered.service ] || fail "the unit left after purge"
[ ! -e /usr/share/doc/bpftop-ordered ] || fail "the docs left after purge"
if dpkg-query -W bpftop-ordered >/dev/null 2>&1 && dpkg-query -W -f='${Status}' bpftop-ordered | grep -qv "not-installed"; then
  fail "dpkg still knows bpftop-ordered: $(dpkg-query -W -f='${Status}' bpftop-ordered)"
fi
echo "ci-deb: built, installed, ran and purged $deb"
