#!/usr/bin/env bash
# Prints the interpreter that `make` builds .venv with, unless PYTHON=... is given.
#
# The operating system's own python3 (Debian's /usr/bin/python3, for one) comes first when it is
# 3.11 or newer and can make virtual environments: distributions build it with profile-guided and
# link-time optimisation and link it statically, which runs the collector's hot path markedly
# faster than a plain source build such as pyenv's default (see docs/benchmarks.md). Otherwise
# the first python3 on PATH.
set -u
is_usable() {
  "$1" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}
for candidate in /usr/bin/python3; do
  if [[ -x $candidate ]] && is_usable "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done
echo python3
