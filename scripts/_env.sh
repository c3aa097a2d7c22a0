# Sourced by scripts/*.sh: a project virtualenv (.venv) with the package
# built from source by maturin.  EXTRAS picks the optional dependencies.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv ($("$py" --version))"
  "$py" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip "maturin>=1.9.4,<2"
echo "== building polygram (Rust release build) and installing [${EXTRAS}]"
python -m pip install --quiet -e ".[${EXTRAS}]"
