# Sourced by scripts/demo and scripts/test: create or update the project's virtual
# environment in .venv, reinstalling only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
    # What a bare Debian lacks to make the environment and build uWSGI.
    PYTHON="$PY" "$ROOT/scripts/install-system-deps" build
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtual environment in .venv"
    "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ]; then
    echo "installing the project and its dev dependencies into .venv"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]"
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
