#!/usr/bin/env bash
# The Debian package, installed on this machine: build it (scripts/package.sh),
# check it with lintian, install it with apt-get (dependencies resolved), run
# the archive / backup / restore demo with the installed binaries, the
# installed configuration file, postgresql.conf snippet and units (each
# timer's ExecStart run once by hand, as its User=, since systemctl may not
# work in a container), restore and compare, then purge the package and check
# that nothing is left.
#
#   tests/package/install_demo.sh
#
# Installs system-wide, so it is not a ctest test: .ci/run runs it as a step
# of its own after the gcc tests. Needs root (exit 77, skipped, otherwise).
# Refuses to run when ue-wal is already installed (it would purge it).
#
# Environment: UW_DEB=FILE (test this .deb instead of building one),
# UW_PORT_BASE (default 26940), UW_KEEP=1 (keep the test directory).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=install_demo

if [[ $(id -u) -ne 0 ]]; then
    echo "[$NAME] SKIPPED: needs root (installs the package system-wide)" >&2
    exit 77
fi
if dpkg-query -W -f='${Status}' ue-wal 2>/dev/null | grep -q ' installed$'; then
    echo "[$NAME] FAIL: ue-wal is already installed on this machine; this test" \
        "installs and purges it: remove it first (dpkg --purge ue-wal)" >&2
    exit 1
fi

# apt-get waits for another apt or dpkg to finish (dpkg itself would fail).
apt_get=(env DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get -o DPkg::Lock::Timeout=600)
deb=${UW_DEB:-}
if [[ -z "$deb" ]]; then
    echo "[$NAME] building the package (scripts/package.sh)"
    deb=$(bash "$ROOT/scripts/package.sh" | tail -n 1)
fi
deb=$(realpath "$deb")
[[ -f "$deb" ]] || { echo "[$NAME] FAIL: no package at '$deb'" >&2; exit 1; }

# Whatever happens from here on, the machine is left without the package.
purge_package() {
    dpkg-query -W ue-wal >/dev/null 2>&1 || return 0
    "${apt_get[@]}" purge -y -qq ue-wal >/dev/null 2>&1 || true
}
trap purge_package EXIT

echo "[$NAME] installing $deb"
"${apt_get[@]}" install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confold "$deb" >"/tmp/$NAME.apt.log" 2>&1 ||
    { cat "/tmp/$NAME.apt.log" >&2; echo "[$NAME] FAIL: apt-get install $deb" >&2; exit 1; }
rm -f "/tmp/$NAME.apt.log"

# From here on the helpers of tests/lib.sh, with the installed binaries.
export UW_BIN_DIR=/usr/bin UW_SRC_DIR=$ROOT UW_TEST_NAME=$NAME
export UW_PORT_BASE=${UW_PORT_BASE:-26940}
# shellcheck source=../lib.sh
source "$ROOT/tests/lib.sh"
at_exit purge_package
PUSH=/usr/bin/ue-wal-push
FETCH=/usr/bin/ue-wal-fetch
PITR=/usr/bin/ue-pitr
BASEBACKUP=/usr/bin/ue-basebackup
CONF=/etc/ue-wal/ue-wal.conf
STANZA=main # the stanza of the installed postgresql.conf snippet
P=$UW_PORT_BASE
UNITS=/lib/systemd/system
DOC=/usr/share/doc/ue-wal

# ------------------------------------------------------------- the package --
note "lintian $(basename "$deb")"
lintian --pedantic "$deb" 2>&1 | grep -v '^running with root privileges' >"$T/out/lintian" || true
sed 's/^/    | /' "$T/out/lintian"
! grep -q '^E: ' "$T/out/lintian" || die "lintian reports errors (above)"
ok "lintian: no errors ($(grep -c '^W: ' "$T/out/lintian" || true) warnings)"

depends=$(dpkg-query -W -f='${Depends}' ue-wal)
for d in libcurl4 libpq5 postgresql-common libssl3 libzstd1 libuv1 libc6; do
    [[ ", $depends," == *", $d"[\ ,]* ]] || die "Depends lacks $d: $depends"
done
ok "Depends: $depends"

for b in ue-wal-push ue-wal-fetch ue-basebackup ue-pitr; do
    [[ $(command -v "$b") == /usr/bin/$b ]] || die "$b is not /usr/bin/$b on PATH"
done
ok "binaries in /usr/bin"

dpkg-query -W -f='${Conffiles}\n' ue-wal | grep -q "^ $CONF " || die "$CONF is not a conffile"
assert_eq "640 root postgres" "$(stat -c '%a %U %G' "$CONF")" "$CONF: mode and owner"
for d in /var/spool/ue-wal /var/log/ue-wal; do
    assert_eq "postgres" "$(stat -c %U "$d")" "$d: owner"
done

# The alert rules and dashboards: every file of packaging/prometheus/ and
# packaging/grafana/ (but READMEs and promtool's *.test.yml), unchanged,
# under /usr/share/ue-wal/.
shipped=0
for dir in prometheus grafana; do
    [[ -d "$ROOT/packaging/$dir" ]] || continue
    while IFS= read -r f; do
        cmp -s "$ROOT/packaging/$dir/$f" "/usr/share/ue-wal/$dir/$f" ||
            die "packaging/$dir/$f is not installed as /usr/share/ue-wal/$dir/$f"
        shipped=$((shipped + 1))
    done < <(cd "$ROOT/packaging/$dir" && find . -type f ! -name 'README*' ! -name '*.test.y*ml' -printf '%P\n')
done
ok "alert rules and dashboards: $shipped files in /usr/share/ue-wal"

# A page for every binary and every subcommand ue-pitr lists, rendered by
# man without a warning.
mapfile -t subcommands < <(ue-pitr --help | awk '/^Commands:/ { on = 1; next }
    on && /^[[:space:]]*$/ { exit } on && /^  [a-z][a-z0-9-]*  +[^ ]/ { print $1 }')
((${#subcommands[@]})) || die "no subcommands under 'Commands:' in ue-pitr --help"
pages=(ue-wal-push ue-wal-fetch ue-basebackup ue-pitr "${subcommands[@]/#/ue-pitr-}")
for p in "${pages[@]}"; do
    f=/usr/share/man/man1/$p.1.gz
    [[ -f "$f" ]] || die "no man page $f"
    MANWIDTH=80 man --warnings -l "$f" >"$T/out/man.$p" 2>"$T/out/man.$p.err"
    [[ ! -s "$T/out/man.$p.err" ]] || { cat "$T/out/man.$p.err" >&2; die "man $p: warnings"; }
    grep -q "^NAME" "$T/out/man.$p" || die "man $p: no NAME section"
done
ok "man pages: ${pages[*]}"

# --------------------------------------------------------------- the units --
# Each timer's service: User=, Environment= and ExecStart= of its [Service]
# section, %i being the stanza. The order runs a full backup first.
timers=()
for j in backup-full backup-incr expire metrics drill; do
    [[ -f "$UNITS/ue-wal-$j@.timer" ]] || die "no $UNITS/ue-wal-$j@.timer"
    timers+=("ue-wal-$j")
done
for t in "$UNITS"/ue-wal-*@.timer; do # and any other timer the package has
    t=$(basename "$t" @.timer)
    [[ " ${timers[*]} " == *" $t "* ]] || timers+=("$t")
done

# unit_key UNIT KEY: the values of KEY= in UNIT's file, one per line.
unit_key() {
    sed -n "s/^$2=//p" "$UNITS/$1"
}

# unit_subcommand UNIT: the ue-pitr subcommand UNIT's ExecStart runs (none
# for another binary): the first word after ue-pitr that is neither an
# option nor the stanza.
unit_subcommand() {
    local w words
    read -ra words <<<"$(unit_key "$1" ExecStart)"
    [[ "${words[0]}" == /usr/bin/ue-pitr ]] || return 0
    for w in "${words[@]:1}"; do
        [[ "$w" == --* || "$w" == %i ]] || { echo "$w"; return 0; }
    done
}
# Subcommands that other branches add: a unit that runs one this build lacks
# is said loudly and not run (after the merge, every unit runs).
missing=()
for t in "${timers[@]}"; do
    sub=$(unit_subcommand "$t@.service")
    [[ -z "$sub" || " ${subcommands[*]} " == *" $sub "* ]] || missing+=("$sub")
done

if command -v systemd-analyze >/dev/null; then
    instances=()
    for t in "${timers[@]}"; do instances+=("$t@$STANZA.service" "$t@$STANZA.timer"); done
    # verify: unit syntax, ExecStart executable, Documentation= man pages
    # (but those of the missing subcommands).
    (cd "$UNITS" && systemd-analyze verify "${instances[@]}") >"$T/out/verify" 2>&1 || true
    for sub in "${missing[@]}"; do
        sed -i "/Command 'man ue-pitr-$sub(1)' failed/d" "$T/out/verify"
    done
    [[ ! -s "$T/out/verify" ]] || { cat "$T/out/verify" >&2; die "systemd-analyze verify: the units have problems"; }
    ok "systemd-analyze verify: ${#instances[@]} units"
else
    note "NOT RUN: systemd-analyze verify (no systemd-analyze on this machine)"
fi

# The runbook's schedule (UTC).
declare -A want_calendar=(
    [ue-wal-backup-full]='*-*-* 04:00:00 UTC'
    [ue-wal-backup-incr]='*-*-* 00,06,12,18:00:00 UTC'
    [ue-wal-drill]='Sun *-*-* 04:00:00 UTC'
    [ue-wal-metrics]='*-*-* *:*:00'
)
for t in "${!want_calendar[@]}"; do
    assert_eq "${want_calendar[$t]}" "$(unit_key "$t@.timer" OnCalendar)" "$t@.timer: OnCalendar"
done
[[ -n "$(unit_key ue-wal-expire@.timer OnCalendar)" ]] || die "ue-wal-expire@.timer: no OnCalendar"

# ---------------------------------------------------------------- the demo --
# The source cluster, archiving with the installed postgresql.conf snippet,
# asynchronously through the spool directory postinst created.
pg_init src "$P"
cat "$DOC/examples/postgresql.conf" >>"$T/src/postgresql.conf"
pg_start src
# With retention options in this build (ue-pitr expire), a count policy that
# keeps both backups, so that the expire unit has a policy to apply.
policy=()
if { ue-pitr --help; ue-pitr expire --help; } 2>/dev/null | grep -q -- '--retention-full'; then
    policy=(retention-full=2)
fi
write_config -f "$T/ue-wal.conf" -s "$STANZA" archive-async=y process-max=2 "${policy[@]}"
# An administrator's edit of the conffile: its mode and owner stay.
cat "$T/ue-wal.conf" >"$CONF"
assert_eq "640 root postgres" "$(stat -c '%a %U %G' "$CONF")" "$CONF after editing: mode and owner"
as_pg test -r "$CONF" || die "the postgres user cannot read $CONF"
assert_exit_pg 0 ue-pitr --stanza "$STANZA" stanza-create
ok "stanza-create with the default configuration file"

q "$P" "create table demo(id int primary key, note text)" >/dev/null
q "$P" "insert into demo select g, 'before the backups' from generate_series(1, 1000) g" >/dev/null
seg=$(switch_wal "$P")
wait_archived "$P" "$seg" 120
[[ -n "$(find /var/spool/ue-wal -mindepth 1 -print -quit)" ]] ||
    die "asynchronous archiving left nothing in /var/spool/ue-wal"
ok "archived $seg through the installed snippet (archive-async, spool /var/spool/ue-wal)"

# run_unit TIMER: its service's ExecStart, once, as its User=, with its
# Environment= (TEXTFILE_DIR overridden, as a drop-in would).
pg_dir "$T/textfile" 755
not_run=()
backup_ids=()
run_unit() {
    local svc=$1@.service user env=() line cmd=() w sub
    user=$(unit_key "$svc" User)
    [[ "$user" == postgres ]] || die "$svc: User=$user, not postgres"
    while IFS= read -r line; do env+=("$line"); done < <(unit_key "$svc" Environment)
    env+=("TEXTFILE_DIR=$T/textfile")
    line=$(unit_key "$svc" ExecStart)
    [[ -n "$line" && "$line" != *$'\n'* ]] || die "$svc: not one ExecStart= line"
    for w in $line; do
        w=${w//%i/$STANZA}
        [[ "$w" =~ ^\$\{([A-Z_]+)\}$ ]] && w=$(env "${env[@]}" printenv "${BASH_REMATCH[1]}")
        cmd+=("$w")
    done
    sub=$(unit_subcommand "$svc")
    if [[ -n "$sub" && " ${missing[*]} " == *" $sub "* ]]; then
        note "NOT RUN: $svc: this ue-pitr has no '$sub' command (${cmd[*]})"
        not_run+=("$1")
        return 0
    fi
    local t0
    t0=$(now)
    assert_exit 0 runuser -u "$user" -- env "${env[@]}" "${cmd[@]}"
    ! grep -q 'is not a known option' "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "$svc: its environment holds what the command takes for an unknown option"; }
    ok "$svc: ${cmd[*]} ($(elapsed "$t0") s)"
    if [[ "${cmd[0]}" == /usr/bin/ue-basebackup ]]; then
        backup_ids+=("$(tail -n 1 "$LAST_OUT")")
    fi
}

for t in "${timers[@]}"; do
    run_unit "$t"
    if [[ "$t" == ue-wal-backup-full ]]; then
        # Changes for the incremental backup to carry.
        q "$P" "insert into demo select g, 'after the full backup' from generate_series(1001, 2000) g" >/dev/null
    fi
done
if [[ " ${timers[*]} " == *" ue-wal-metrics "* && " ${not_run[*]} " != *" ue-wal-metrics "* ]]; then
    [[ -n "$(find "$T/textfile" -name '*.prom' -size +0 -print -quit)" ]] ||
        die "ue-wal-metrics wrote no .prom file into its textfile directory"
    ok "metrics written: $(find "$T/textfile" -name '*.prom' -printf '%f ')"
fi
assert_exit_pg 0 ue-pitr --stanza "$STANZA" info
[[ "${backup_ids[*]}" =~ ^[0-9]{8}-[0-9]{6}F\ [0-9]{8}-[0-9]{6}F_[0-9]{8}-[0-9]{6}I$ ]] ||
    die "the backup units printed '${backup_ids[*]}', not a full and an incremental backup id"
for id in "${backup_ids[@]}"; do
    grep -qF "$id" "$LAST_OUT" || { cat "$LAST_OUT" >&2; die "info does not list backup $id"; }
done
ok "info lists the full and the incremental backup: ${backup_ids[*]}"

# The cron alternative runs the same commands: each unit's ExecStart, with
# the stanza and the textfile directory as its variables, is in the crontab.
for t in "${timers[@]}"; do
    line=$(unit_key "$t@.service" ExecStart)
    line=${line#/usr/bin/}
    line=${line//%i/\"\$UE_WAL_STANZA\"}
    line=${line//\$\{TEXTFILE_DIR\}/\"\$TEXTFILE_DIR\"}
    grep -qF -- "$line" "$DOC/examples/ue-wal.cron" || die "$DOC/examples/ue-wal.cron lacks '$line' ($t)"
done
ok "the cron example runs the units' commands"

# The 3-2-1 example is a valid configuration: with its placeholders filled
# and its local repository in an empty directory, info on that repository
# fails for the missing stanza (exit 6), not for an option (exit 2).
pg_dir "$T/repo321" 750
sed -e 's|^repo2-azure-key=.*|repo2-azure-key=dGVzdA==|' -e 's|^cipher-pass=.*|cipher-pass=test passphrase|' \
    -e "s|^repo1-path=.*|repo1-path=$T/repo321|" -e "s|^spool-path=.*|spool-path=$T/spool321|" \
    "$DOC/examples/ue-wal-3-2-1.conf" >"$T/3-2-1.conf"
pg_file "$T/3-2-1.conf" 600
assert_exit_pg 6 ue-pitr --config "$T/3-2-1.conf" --stanza main --repo 1 info
ok "ue-wal-3-2-1.conf parses (info on its empty local repository: no stanza, exit 6)"

# Changes after the backups, archived by the installed archive module, then
# a restore to the end of the archive with the installed binaries. The
# module is found by name alone, in PostgreSQL 15's $libdir; archive_command
# fails from here on, so a segment archived now went through the module.
module=$("$PGBIN/pg_config" --pkglibdir)/ue_wal_archive.so
dpkg -L ue-wal | grep -qx "$module" || die "the package does not install $module"
pg_conf src "archive_library = 'ue_wal_archive'" "archive_command = '/bin/false'" \
    "ue_wal_archive.config = '$CONF'" "ue_wal_archive.stanza = '$STANZA'"
pg_reload src
deadline=$((SECONDS + 120))
until [[ "$(q "$P" "show archive_library")" == ue_wal_archive ]]; do
    ((SECONDS < deadline)) || die "archive_library not reloaded"
    sleep 0.2
done
q "$P" "insert into demo select g, 'after the backups' from generate_series(2001, 2500) g" >/dev/null
seg=$(switch_wal "$P")
wait_archived "$P" "$seg" 120
ok "archived $seg through $module"
restore_to restored --start --port $((P + 1))
wait_promoted $((P + 1)) 120
assert_eq "$(table_checksum "$P")" "$(table_checksum $((P + 1)))" "restored cluster matches the source"
pg_stop restored
pg_stop src

# ---------------------------------------------------------------- removal --
note "apt-get purge ue-wal (dpkg --purge)"
"${apt_get[@]}" purge -y -qq ue-wal >"$T/out/purge" 2>&1 || { cat "$T/out/purge" >&2; die "apt-get purge failed"; }
left=()
for f in /etc/ue-wal /var/spool/ue-wal /var/log/ue-wal /var/lib/ue-wal /usr/share/doc/ue-wal \
    /usr/bin/ue-wal-push /usr/bin/ue-wal-fetch /usr/bin/ue-basebackup /usr/bin/ue-pitr "$module"; do
    [[ ! -e "$f" ]] || left+=("$f")
done
mapfile -t -O "${#left[@]}" left < <(find "$UNITS" /usr/share/man/man1 -name 'ue-wal*' -o -name 'ue-pitr*' -o -name 'ue-basebackup*')
((${#left[@]} == 0)) || die "left after purge: ${left[*]}"
ok "purged: nothing left"
((${#not_run[@]} == 0)) || note "units whose command this build lacks (not run): ${not_run[*]}"
