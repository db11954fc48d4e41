#!/usr/bin/env bash
# The Debian package, end to end (called by scripts/test.sh; CI runs as root on a fresh Debian
# machine). It installs into the real system, so it runs only as root with dpkg, and refuses to
# touch a kbi-advice installation it did not make itself.
#
#   1. build the package (scripts/build-deb.sh: release binary, man pages, completions, cargo deb)
#   2. lintian: no error, no warning that is not overridden with a reason
#   3. the unit: systemd-analyze verify; systemd-analyze security --offline=true, exposure <= 2.0
#   4. man pages render, bash completion loads and completes the subcommands
#   5. dpkg -i: user, directories and modes, conffiles
#   6. the installed binary started exactly as the unit's ExecStart, as user kbi-advice with the
#      unit's umask, no new privileges and no capabilities, on the installed configuration
#      switched to the development profile and the demo snapshot in /var/cache/kbi-advice:
#      it answers, audits under /var/lib/kbi-advice, and cannot write to /etc/kbi-advice
#   7. upgrade to a second package version: the edited conffile stays, a link the service user
#      planted in /var/lib/kbi-advice is not followed, the service is restarted exactly once (deb-systemd-invoke recorded in a private mount namespace faking systemd)
#   8. dpkg -r keeps the audit log; dpkg --purge keeps it too and removes the rest
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "$(id -u)" -ne 0 ] || ! command -v dpkg >/dev/null 2>&1; then
    echo "################################################################################"
    echo "## SKIPPED scripts/test-debian-package.sh: needs root and dpkg (CI has both)."
    echo "################################################################################"
    exit 0
fi
MARKER=/var/lib/kbi-advice/.package-test
if { dpkg-query -W kbi-advice >/dev/null 2>&1 || [ -d /var/lib/kbi-advice ]; } && [ ! -e "$MARKER" ]; then
    echo "################################################################################"
    echo "## SKIPPED scripts/test-debian-package.sh: this machine has a kbi-advice"
    echo "## installation or state the test did not make; it will not purge it."
    echo "################################################################################"
    exit 0
fi

fail() { echo "FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }
WORK=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step "clean slate (a previous run's package and state)"
dpkg --purge kbi-advice >/dev/null 2>&1 || true
rm -rf /var/lib/kbi-advice

step "build the package"
ARCH=$(dpkg --print-architecture)
if [ -n "${KBI_DEB:-}" ]; then
    # A package built before (e.g. by a release job); the checks are the same.
    DEB=$KBI_DEB
    echo "using $DEB (KBI_DEB)"
else
    bash scripts/build-deb.sh >/dev/null
    VERSION=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
    DEB=target/debian/kbi-advice_${VERSION}-1_${ARCH}.deb
fi
[ -f "$DEB" ] || fail "no package $DEB"
V1=$(dpkg-deb -f "$DEB" Version)
UPSTREAM=${V1%-*}
dpkg-deb --info "$DEB" | sed -n '/Package:/,$p'
dpkg-deb -x "$DEB" "$WORK/tree"
dpkg-deb -e "$DEB" "$WORK/control"

step "lintian"
# Overrides live in the package (/usr/share/lintian/overrides/kbi-advice), each with a reason.
# Exit 1 is lintian failing to run; 2 is a tag at or above --fail-on, which --show-overrides
# also gives for overridden tags (lintian 2.116): the E:/W: lines decide.
rc=0
lintian --fail-on error,warning --show-overrides --info "$DEB" >"$WORK/lintian.txt" 2>&1 || rc=$?
grep -v '^N:' "$WORK/lintian.txt" || true
[ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "lintian did not run (exit $rc)"
if grep -q '^[EW]:' "$WORK/lintian.txt"; then
    grep -A30 '^[EW]:' "$WORK/lintian.txt"
    fail "lintian reported errors or warnings (above)"
fi
echo "lintian: $(grep -c '^E:' "$WORK/lintian.txt" || true) errors, $(grep -c '^W:' "$WORK/lintian.txt" || true) warnings, $(grep -c '^O:' "$WORK/lintian.txt" || true) overridden"

step "the systemd unit"
UNIT="$WORK/tree/usr/lib/systemd/system/kbi-advice.service"
[ -f "$UNIT" ] || fail "no kbi-advice.service in the package"
systemd-analyze security --offline=true --no-pager "$UNIT" | tee "$WORK/security.txt"
EXPOSURE=$(sed -n 's/.*Overall exposure level for kbi-advice.service: \([0-9.]*\).*/\1/p' "$WORK/security.txt")
[ -n "$EXPOSURE" ] || fail "no overall exposure in the systemd-analyze output"
python3 -c "import sys; sys.exit(0 if float('$EXPOSURE') <= 2.0 else 1)" \
    || fail "overall exposure $EXPOSURE is above 2.0"
echo "overall exposure: $EXPOSURE (<= 2.0)"

step "man pages render"
PAGES=$(ls "$WORK"/tree/usr/share/man/man1/*.1.gz)
for sub in kbi-advice kbi-advice-serve kbi-advice-check kbi-advice-snapshot kbi-advice-snapshot-validate \
    kbi-advice-snapshot-publish kbi-advice-premium-list kbi-advice-audit kbi-advice-audit-verify; do
    page="$WORK/tree/usr/share/man/man1/$sub.1.gz"
    [ -f "$page" ] || fail "no man page $sub.1.gz (have: $PAGES)"
    text=$(MANWIDTH=100 man -l "$page" 2>"$WORK/man.err")
    [ ! -s "$WORK/man.err" ] || fail "man -l $sub.1.gz: $(cat "$WORK/man.err")"
    grep -q "^NAME" <<<"$text" || fail "$sub.1.gz has no NAME section"
    grep -q "$sub" <<<"$text" || fail "$sub.1.gz does not name $sub"
done
man -l "$WORK/tree/usr/share/man/man1/kbi-advice-serve.1.gz" | grep -q -- "--ops-listen" \
    || fail "kbi-advice-serve(1) does not document --ops-listen"
echo "$(wc -w <<<"$PAGES") man pages; the nine checked render without warnings"

step "bash completion"
[ -f "$WORK/tree/usr/share/zsh/vendor-completions/_kbi-advice" ] || fail "no zsh completion"
[ -f "$WORK/tree/usr/share/fish/vendor_completions.d/kbi-advice.fish" ] || fail "no fish completion"
COMPLETION="$WORK/tree/usr/share/bash-completion/completions/kbi-advice"
bash -c "
    set -e
    source /usr/share/bash-completion/bash_completion 2>/dev/null || true
    source '$COMPLETION'
    complete -p kbi-advice
    fn=\$(complete -p kbi-advice | sed -n 's/.*-F \([^ ]*\).*/\1/p')
    COMP_WORDS=(kbi-advice s); COMP_CWORD=1; COMP_LINE='kbi-advice s'; COMP_POINT=\${#COMP_LINE}
    \"\$fn\" kbi-advice s kbi-advice
    printf '%s\n' \"\${COMPREPLY[@]}\" | sort | tr '\n' ' ' > '$WORK/completed'
" || fail "the bash completion does not load"
grep -q "serve" "$WORK/completed" && grep -q "snapshot" "$WORK/completed" \
    || fail "'kbi-advice s<TAB>' completes to '$(cat "$WORK/completed")', not serve and snapshot"
echo "kbi-advice s<TAB>: $(cat "$WORK/completed")"

# The maintainer scripts act on the unit only where systemd runs (/run/systemd/system exists).
# Each dpkg call below runs in a private mount namespace where that directory exists, and where
# systemctl and deb-systemd-invoke only record how they were called: what the scripts would do
# to a running service is checked without systemd (and without touching the host's /run).
mkdir -p "$WORK/shims" /run/systemd
for tool in systemctl deb-systemd-invoke; do
    printf '#!/bin/sh\necho "%s $*" >> %s/calls\n' "$tool" "$WORK" > "$WORK/shims/$tool"
    chmod +x "$WORK/shims/$tool"
done
with_fake_systemd() {
    : > "$WORK/calls"
    unshare --mount sh -c "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system &&
        PATH='$WORK/shims':\$PATH \"\$@\"" sh "$@"
}
invoked() { grep -c "^deb-systemd-invoke $1 kbi-advice.service" "$WORK/calls" || true; }
invocations() { grep -c "^deb-systemd-invoke " "$WORK/calls" || true; }

step "dpkg -i"
with_fake_systemd dpkg -i "$DEB"
[ "$(invocations)" = 0 ] || fail "the first installation started the service: $(cat "$WORK/calls")"
touch "$MARKER"
getent passwd kbi-advice | grep -q ':/usr/sbin/nologin$' || fail "no system user kbi-advice with nologin"
uid=$(id -u kbi-advice); [ "$uid" -lt 1000 ] || fail "kbi-advice is not a system user (uid $uid)"
getent group kbi-advice >/dev/null || fail "no group kbi-advice"
check_stat() { # path expected "owner:group mode"
    actual=$(stat -c '%U:%G %a' "$1")
    [ "$actual" = "$2" ] || fail "$1 is $actual, expected $2"
}
check_stat /var/lib/kbi-advice "kbi-advice:kbi-advice 750"
check_stat /var/lib/kbi-advice/audit "kbi-advice:kbi-advice 700"
check_stat /var/lib/kbi-advice/premium "kbi-advice:kbi-advice 700"
check_stat /var/cache/kbi-advice "kbi-advice:kbi-advice 750"
check_stat /etc/kbi-advice/tls "root:kbi-advice 750"
check_stat /etc/kbi-advice/kbi-advice.toml "root:kbi-advice 640"
check_stat /etc/kbi-advice/clients.toml "root:kbi-advice 640"
CONFFILES=$(dpkg-query -W -f='${Conffiles}' kbi-advice)
grep -q " /etc/kbi-advice/kbi-advice.toml " <<<"$CONFFILES" || fail "kbi-advice.toml is not a conffile"
grep -q " /etc/kbi-advice/clients.toml " <<<"$CONFFILES" || fail "clients.toml is not a conffile"
/usr/bin/kbi-advice --version
echo "user, group, directories, modes and conffiles as documented"

step "systemd-analyze verify on the installed unit"
# It also checks that ExecStart exists and that the Documentation= man page opens (unless the
# host's dpkg excludes man pages, as slim container images do).
MAN=yes
[ -f /usr/share/man/man1/kbi-advice-serve.1.gz ] || { MAN=no; echo "(man pages excluded by dpkg here: --man=no)"; }
if ! systemd-analyze verify --man=$MAN /usr/lib/systemd/system/kbi-advice.service >"$WORK/verify.txt" 2>&1 \
    || [ -s "$WORK/verify.txt" ]; then
    cat "$WORK/verify.txt"
    fail "systemd-analyze verify complained about kbi-advice.service"
fi
echo "systemd-analyze verify: no complaint"

step "the installed service, started as its unit's ExecStart"
EXEC=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/kbi-advice.service)
[[ "$EXEC" == "/usr/bin/kbi-advice serve --config /etc/kbi-advice/kbi-advice.toml" ]] \
    || fail "unexpected ExecStart: $EXEC"
UMASK=$(sed -n 's/^UMask=//p' /usr/lib/systemd/system/kbi-advice.service)
# As systemd would run it: the unit's user and group, its umask, no new privileges, no
# capabilities (CapabilityBoundingSet= and AmbientCapabilities= empty), an empty environment.
# Call it in a subshell: it execs.
as_unit() {
    umask "$UMASK"
    exec setpriv --reuid=kbi-advice --regid=kbi-advice --init-groups \
        --no-new-privs --inh-caps=-all --bounding-set=-all \
        env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
}
# As installed, the production profile is read and accepted (no unknown setting), and the start
# stops at the first thing README.Debian asks the operator to provide: the clients.
if (as_unit $EXEC) >"$WORK/first.log" 2>&1; then fail "the service started without clients"; fi
grep -q "no \[\[client\]\] is defined" "$WORK/first.log" \
    || { cat "$WORK/first.log"; fail "the installed production profile does not stop at the empty registry"; }
echo "as installed: refuses to start, $(grep -o 'no \[\[client\]\] is defined' "$WORK/first.log")"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); OPS_PORT=$(free_port)
# The development profile on the installed files: plain HTTP on loopback, the demo registry,
# the demo snapshot where the production profile expects the daily extract.
zstd -q -f "$ROOT/data/demo-snapshot.jsonl" -o /var/cache/kbi-advice/snapshot.jsonl.zst
chown kbi-advice:kbi-advice /var/cache/kbi-advice/snapshot.jsonl.zst
chmod 0640 /var/cache/kbi-advice/snapshot.jsonl.zst
sed -i -e "s|^listen = \"0.0.0.0:8443\"|listen = \"127.0.0.1:$PORT\"|" \
    -e 's|^plain_http = false|plain_http = true|' \
    -e "s|^listen = \"127.0.0.1:9090\"|listen = \"127.0.0.1:$OPS_PORT\"|" \
    -e 's|^max_age_seconds = .*|max_age_seconds = 0|' \
    -e 's|^certificate = .*|certificate = ""|' -e 's|^key = .*|key = ""|' -e 's|^client_ca = .*|client_ca = ""|' \
    /etc/kbi-advice/kbi-advice.toml
sed -i '/^\[\[client\]\]/,$d' /etc/kbi-advice/clients.toml
sed -n '/^\[\[client\]\]/,$p' config/clients.toml >> /etc/kbi-advice/clients.toml
# The demo client asks under the development protocol `demo`, which the package does not install.
install -m 0644 config/protocols/demo.toml /etc/kbi-advice/protocols/demo.toml
(as_unit $EXEC) >"$WORK/service.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
    curl --noproxy '*' -sf -o /dev/null "http://127.0.0.1:$OPS_PORT/health/ready" && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/service.log"; fail "the installed service exited at start"; }
    sleep 0.1
done
curl --noproxy '*' -sf -o /dev/null "http://127.0.0.1:$OPS_PORT/health/ready" || { cat "$WORK/service.log"; fail "not ready"; }
ANSWER=$(curl --noproxy '*' -sf -H 'X-Client-Id: demo' "http://127.0.0.1:$PORT/v1/integration-obligation/90011510383?date=2026-01-01") \
    || fail "the REST question was not answered"
grep -q '"NIET_AANGEMELD"' <<<"$ANSWER" || fail "unexpected answer: $ANSWER"
grep -q '"snapshot_id":"demo-2026-11-01"' <<<"$ANSWER" || fail "not the demo snapshot from /var/cache: $ANSWER"
echo "answer: $ANSWER"
# MemoryDenyWriteExecute=yes refuses writable+executable memory; a serving process that has
# such a mapping would not survive under the unit.
if grep -q ' rwx' "/proc/$PID/maps"; then
    grep ' rwx' "/proc/$PID/maps"
    fail "the service maps memory writable and executable (MemoryDenyWriteExecute would kill it)"
fi
AUDIT=$(ls /var/lib/kbi-advice/audit/audit-*.jsonl)
grep -q '"insz":"90011510383"' $AUDIT || fail "the question is not in the audit log"
check_stat "$AUDIT" "kbi-advice:kbi-advice 600"
kill -TERM "$PID"; wait "$PID" || true; PID=""
echo "audited in $AUDIT (kbi-advice, 0600)"
# Nowhere else: pointed at /etc/kbi-advice for its audit log, it refuses to start.
if (as_unit KBI_ADVICE__AUDIT__DIR=/etc/kbi-advice/audit $EXEC) >"$WORK/refused.log" 2>&1; then
    fail "the service started with its audit log in /etc/kbi-advice"
fi
grep -q "cannot open the audit log in /etc/kbi-advice/audit" "$WORK/refused.log" \
    || { cat "$WORK/refused.log"; fail "no clear error for an unwritable audit directory"; }
[ ! -e /etc/kbi-advice/audit ] || fail "the service created /etc/kbi-advice/audit"
(as_unit /bin/sh -c 'touch /usr/bin/kbi-advice-test 2>/dev/null') && fail "the service user can write /usr/bin"
echo "as kbi-advice it cannot write /etc/kbi-advice or /usr/bin"

step "upgrade to a second package version"
# The same package as a later Debian revision: unpacked, version raised, packed again.
dpkg-deb -R "$DEB" "$WORK/v2"
sed -i "s/^Version: .*/Version: ${UPSTREAM}-99/" "$WORK/v2/DEBIAN/control"
DEB2="$WORK/kbi-advice_${UPSTREAM}-99_${ARCH}.deb"
dpkg-deb --root-owner-group -Zgzip -z1 -b "$WORK/v2" "$DEB2" >/dev/null
# The service user owns /var/lib/kbi-advice: it replaces premium/ by a link to a root directory
# (issue 24, item 8). The upgrade's postinst must not follow it.
mv /var/lib/kbi-advice/premium "$WORK/premium.saved"
mkdir -m 0755 "$WORK/root-only"
setpriv --reuid=kbi-advice --regid=kbi-advice --init-groups ln -s "$WORK/root-only" /var/lib/kbi-advice/premium
with_fake_systemd dpkg -i "$DEB2" || fail "the upgrade failed"
check_stat "$WORK/root-only" "root:root 755"
rm /var/lib/kbi-advice/premium
mv "$WORK/premium.saved" /var/lib/kbi-advice/premium
echo "a link planted in /var/lib/kbi-advice was not followed by the postinst"
cat "$WORK/calls"
[ "$(invocations)" = 1 ] && [ "$(invoked try-restart)" = 1 ] \
    || fail "the upgrade did not try-restart the service exactly once (and nothing else)"
[ "$(dpkg-query -W -f='${Version}' kbi-advice)" = "${UPSTREAM}-99" ] || fail "not upgraded"
grep -q '^plain_http = true' /etc/kbi-advice/kbi-advice.toml || fail "the upgrade lost the edited conffile"
grep -q '^id = "demo"' /etc/kbi-advice/clients.toml || fail "the upgrade lost the edited registry"
[ -f "$AUDIT" ] || fail "the upgrade lost the audit log"
echo "upgraded to ${UPSTREAM}-99: edited conffiles kept, one try-restart"

step "rollback to the first version"
with_fake_systemd dpkg -i "$DEB" || fail "the downgrade failed"
[ "$(invocations)" = 1 ] && [ "$(invoked try-restart)" = 1 ] \
    || fail "the rollback did not try-restart the service exactly once: $(cat "$WORK/calls")"
[ "$(dpkg-query -W -f='${Version}' kbi-advice)" = "$V1" ] || fail "not rolled back"
grep -q '^plain_http = true' /etc/kbi-advice/kbi-advice.toml || fail "the rollback lost the edited conffile"
[ -f "$AUDIT" ] || fail "the rollback lost the audit log"
echo "rolled back to $V1: edited conffiles kept, one try-restart"

step "dpkg -r keeps the audit log"
with_fake_systemd dpkg -r kbi-advice
[ "$(invocations)" = 1 ] && [ "$(invoked stop)" = 1 ] || fail "dpkg -r did not stop the service once"
[ ! -e /usr/bin/kbi-advice ] || fail "dpkg -r left /usr/bin/kbi-advice"
[ -f "$AUDIT" ] || fail "dpkg -r removed the audit log"
[ -f /etc/kbi-advice/kbi-advice.toml ] || fail "dpkg -r removed a conffile (only purge may)"

step "dpkg --purge keeps the audit log and removes the rest"
with_fake_systemd dpkg --purge kbi-advice 2>&1 | tee "$WORK/purge.txt"
grep -q "purge keeps /var/lib/kbi-advice" "$WORK/purge.txt" || fail "purge does not say it keeps /var/lib/kbi-advice"
[ -f "$AUDIT" ] || fail "dpkg --purge removed the audit log"
grep -q '"insz":"90011510383"' "$AUDIT" || fail "the audit log changed"
[ ! -e /etc/kbi-advice ] || fail "dpkg --purge left /etc/kbi-advice"
[ ! -e /var/cache/kbi-advice ] || fail "dpkg --purge left /var/cache/kbi-advice"
getent passwd kbi-advice >/dev/null || fail "purge removed the user that owns the audit log"
echo "purged: /var/lib/kbi-advice and the user kept, /etc/kbi-advice and /var/cache/kbi-advice gone"

# This run's state, so that the next run starts clean (a real installation's never gets here).
rm -rf /var/lib/kbi-advice
echo "== the Debian package: all checks passed"
