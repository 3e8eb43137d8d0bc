#!/usr/bin/env bash
# Man pages from the binaries' own --help, which prints the one option table
# (common/core/options.def): the pages cannot drift from the options.
#
#   packaging/gen-man.sh BINDIR OUTDIR
#
# Writes OUTDIR/<binary>.1.gz for the four binaries and OUTDIR/ue-pitr-<cmd>.1.gz
# for every subcommand that `ue-pitr --help` lists under "Commands:" (so a new
# subcommand gets its page without touching this script), from
# `ue-pitr <cmd> --help`. help2man does the roff; gzip -9n as Debian wants.
# Called by the `man` target of packaging/package.cmake.
set -euo pipefail

bindir=$(realpath "$1")
out=$2
command -v help2man >/dev/null || {
    echo "gen-man: help2man not found (apt-get install help2man)" >&2
    exit 1
}
mkdir -p "$out"
rm -f "$out"/*.1 "$out"/*.1.gz "$out/stamp"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The subcommands and their one-line descriptions: the "Commands:" block of
# `ue-pitr --help` ("  NAME   TEXT" lines; deeper-indented lines continue
# the text and are left out) up to the first blank line.
"$bindir/ue-pitr" --help >"$work/pitr.help"
awk '/^Commands:/ { on = 1; next }
     on && /^[[:space:]]*$/ { exit }
     on && /^  [a-z][a-z0-9-]*  +[^ ]/ { name = $1; $1 = ""; sub(/^ +/, ""); print name "\t" $0 }' \
    "$work/pitr.help" >"$work/subcommands"
[[ -s "$work/subcommands" ]] || {
    echo "gen-man: no subcommands found under 'Commands:' in 'ue-pitr --help'" >&2
    exit 1
}

# Every binary prints "ue-wal VERSION".
version=$("$bindir/ue-pitr" --version | awk '{ print $NF; exit }')

pages=(ue-wal-push ue-wal-fetch ue-basebackup ue-pitr)
while IFS=$'\t' read -r cmd _; do pages+=("ue-pitr-$cmd"); done <"$work/subcommands"

# SEE ALSO lists every page; FILES and EXIT STATUS are the same for all.
{
    echo "[FILES]"
    echo ".TP"
    echo ".I /etc/ue-wal/ue-wal.conf"
    echo "the default configuration file (--config, UE_WAL_CONFIG)"
    echo ".TP"
    echo ".I /usr/share/doc/ue-wal/examples/"
    echo "a configuration with a local and a cloud repository, a postgresql.conf snippet, a crontab"
    echo "[EXIT STATUS]"
    echo "0 on success; the codes and their meaning are listed in the section"
    echo "\"Exit codes\" of /usr/share/doc/ue-wal/README.md."
    echo "[SEE ALSO]"
    printf '%s\n' "${pages[@]}" | sort | sed 's/$/(1)/' | paste -sd, | sed 's/,/, /g'
} >"$work/include"

# page NAME DESCRIPTION PROGRAM: help2man over PROGRAM --help (the version is
# given, so that the page is named after PROGRAM, not after "ue-wal").
page() {
    help2man --no-info --section 1 --name "$2" --include "$work/include" \
        --version-string "$version" --source "ue-wal $version" --manual "ue-wal" \
        --output "$out/$1.1" "$3"
    gzip -9n "$out/$1.1"
}

# The description of a binary: the first paragraph after its usage line.
describe() {
    "$bindir/$1" --help | awk 'NR > 1 && NF { sub(/ \(.*$/, ""); sub(/\.$/, ""); print; exit }'
}
for b in ue-wal-push ue-wal-fetch ue-basebackup; do
    page "$b" "$(describe "$b")" "$bindir/$b"
done
page ue-pitr "backups, restores and repository management of ue-wal" "$bindir/ue-pitr"

# A subcommand's page comes from a program named after the page, so that its
# title and NAME read ue-pitr-<cmd>.
while IFS=$'\t' read -r cmd text; do
    printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$bindir/ue-pitr" "$cmd" >"$work/ue-pitr-$cmd"
    chmod +x "$work/ue-pitr-$cmd"
    page "ue-pitr-$cmd" "$text" "$work/ue-pitr-$cmd"
done <"$work/subcommands"

echo "${#pages[@]} pages: ${pages[*]}" >"$out/stamp"
echo "gen-man: $(cat "$out/stamp")"
