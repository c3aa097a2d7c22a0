#!/usr/bin/env bash
# Every test: Rust format/lint/unit tests, Python lint and types, the pytest suite.
EXTRAS="dev,plot,opt,sae,behavioural,regrow"
. "$(dirname "$0")/_env.sh"
echo "== cargo fmt / clippy / test"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test -p polygram-core --locked
echo "== ruff / mypy"
ruff check python tests benches examples
ruff format --check python tests benches examples
mypy python/polygram
echo "== pytest"
python -m pytest -q "$@"
