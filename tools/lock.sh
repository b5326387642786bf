#!/usr/bin/env bash
# Regenerates the pinned installs, one pair per supported Python, from the bounds in
# requirements.txt, requirements-tf.txt, requirements-gcs.txt, requirements-test.txt and
# requirements-demo.txt:
#
#   requirements/lock-py3XX.txt       runtime + tf + gcs (what the README's training set-up installs)
#   requirements/lock-test-py3XX.txt  runtime + tf + test + demo (what CI and the tests install)
#
# The runtime lock is compiled under the test lock as a constraint, so both pin the
# same versions. The locks are for Linux x86-64 (the machines we test on).
#
# Usage:  bash tools/lock.sh            # keep pinned versions that still satisfy the bounds
#         bash tools/lock.sh --upgrade  # move every pin to the newest allowed version
# Needs `uv` (pip install uv) and network access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || { echo "tools/lock.sh: needs uv (pip install uv)" >&2; exit 1; }
upgrade=()
[[ "${1:-}" == "--upgrade" ]] && upgrade=(--upgrade)
for py in 3.11 3.12 3.13; do
  tag="py${py/./}"
  common=(--quiet --python-version "$py" --python-platform x86_64-manylinux_2_28
          --index-url https://pypi.org/simple --annotation-style line)
  test_lock="requirements/lock-test-$tag.txt"
  runtime_lock="requirements/lock-$tag.txt"
  uv pip compile "${common[@]}" "${upgrade[@]}" \
    requirements.txt requirements-tf.txt requirements-gcs.txt requirements-test.txt \
    requirements-demo.txt -o "$test_lock"
  uv pip compile "${common[@]}" -c "$test_lock" requirements.txt requirements-tf.txt \
    requirements-gcs.txt -o "$runtime_lock"
  echo "wrote $test_lock ($(grep -c '==' "$test_lock") pins), $runtime_lock ($(grep -c '==' "$runtime_lock") pins)"
done
