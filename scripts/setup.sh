#!/usr/bin/env bash
# Create .venv with CPU torch first, then rlcore, every first-party plugin and every contrib
# package (editable).
# Usage: bash scripts/setup.sh        (re-running is cheap: pip skips what is installed)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}   # a CPU build; override, e.g. TORCH_SPEC='torch>=2.4'

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# pip's output shows except the harmless "WARNING: Location ..." lines; a failed install stops setup.
pip() {
  .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; } \
    || { echo "setup.sh: 'pip $*' failed; pip's error is above" >&2; return 1; }
}

# torch first: asked for later as a dependency, an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || pip install "$TORCH_SPEC"
plugin_args=()
for plugin in plugins/*/; do plugin_args+=(-e "$plugin"); done
pip install -e ".[dev]" "${plugin_args[@]}"
contrib_args=(); for package in contrib/*/; do contrib_args+=(-e "$package"); done
pip install "${contrib_args[@]}"
.venv/bin/python -c "import torch, rlcore; print(f'rlcore {rlcore.__version__} ready (torch {torch.__version__})')"
