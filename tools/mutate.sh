#!/usr/bin/env bash
# Mutation-test one module against the tests that cover it, in a scratch copy of the checkout.
#   tools/mutate.sh vlx/verbalize/format.py tests/test_verbalize.py [more tests ...]
# Prints mutmut's survivors and a summary line "MODULE: K killed / N mutants (S survived, T timeout, X other)".
# Runs from any checkout of vlx (cwd's git top level); PY picks the interpreter (default: that checkout's .venv).
# Tests marked slow are skipped (-m "not slow"); torch runs one thread per worker (fork-safe).
set -euo pipefail
mod=${1:?usage: tools/mutate.sh MODULE.py TEST_FILE...}; shift
[ $# -gt 0 ] || { echo "give the test files that cover $mod" >&2; exit 2; }
root=$(git rev-parse --show-toplevel)
py=${PY:-$root/.venv/bin/python}
work=${MUTATE_DIR:-$root/out/mutate}/$(echo "${mod%.py}" | tr / .)
rm -rf "$work"; mkdir -p "$work"
(cd "$root" && git ls-files -co --exclude-standard | grep -v '^out/' | tar -cf - -T -) | (cd "$work" && tar -xf -)
{
  echo "[mutmut]"
  echo "source_paths=vlx"
  echo "only_mutate=$mod"
  echo "pytest_add_cli_args_test_selection=$1"; shift
  for t in "$@"; do echo "    $t"; done
  printf 'also_copy=prompts\n    examples\n    docs\n'
  printf 'process_isolation=forkserver\nforkserver_warmup=none\n'
  printf 'pytest_add_cli_args=-m\n    not slow\n    -p\n    no:cacheprovider\n'
} > "$work/setup.cfg"
rm -f "$work/pyproject.toml.mutmut"
cd "$work"
export PYTHONPATH= OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
nice "$py" -m mutmut run --max-children "${MUTATE_CHILDREN:-2}" > mutmut-run.log 2>&1 || true
"$py" -m mutmut results > results.txt 2>&1 || true
cat results.txt
total=$(grep -c "__mutmut_" results.txt || true)
killed_n=$("$py" -m mutmut results --all true 2>/dev/null | grep -c ": killed" || true)
surv=$(grep -c ": survived" results.txt || true)
tout=$(grep -c ": timeout" results.txt || true)
all=$("$py" -m mutmut results --all true 2>/dev/null | grep -c "__mutmut_" || true)
echo "$mod: $killed_n killed / $all mutants ($surv survived, $tout timeout, $((all - killed_n - surv - tout)) other); log: $work/mutmut-run.log"
