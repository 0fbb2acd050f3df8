#!/usr/bin/env bash
# Sets up .venv from the project's own files, then runs the demo, the tests or the linters.
#   ./dev.sh demo [campaigner demo options]
#   ./dev.sh test [pytest options]
#   ./dev.sh lint
#   ./dev.sh bench [benchmark options]   (see benchmarks/throughput.py)
set -euo pipefail
cd "$(dirname "$0")"

venv="${VENV_DIR:-.venv}"

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "campaigner needs Python 3.11 or newer" >&2
    exit 3
}

install() {
    if [ ! -x "$venv/bin/python" ]; then
        python="$(find_python)"
        if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
            echo "$python cannot create virtual environments; install its venv module" \
                "(on Debian and Ubuntu: apt-get install python3-venv)" >&2
            exit 3
        fi
        "$python" -m venv "$venv"
    fi
    # Reinstall only when the declared dependencies changed.
    digest="$("$venv/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' pyproject.toml)"
    stamp="$venv/.installed-$digest"
    if [ ! -e "$stamp" ]; then
        "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
        "$venv/bin/python" -m pip install --quiet -e '.[dev]' >&2
        rm -f "$venv"/.installed-*
        touch "$stamp"
    fi
}

command="${1:-}"
shift || true
case "$command" in
    demo)
        install
        exec "$venv/bin/campaigner" demo "$@"
        ;;
    test)
        install
        exec "$venv/bin/python" -m pytest "$@"
        ;;
    bench)
        install
        exec "$venv/bin/python" -m benchmarks.throughput "$@"
        ;;
    lint)
        install
        "$venv/bin/ruff" check campaigner tests benchmarks
        "$venv/bin/ruff" format --check campaigner tests benchmarks
        exec "$venv/bin/mypy"
        ;;
    *)
        echo "usage: ./dev.sh demo|test|lint|bench [options]" >&2
        exit 2
        ;;
esac
