#!/usr/bin/env bash
# Re-check the mutants a finished `tools/mutate.sh` run left alive (survived or reached by no test) against the
# current tests, in that run's scratch copy: far cheaper than a fresh run. Refuses when the module itself changed
# since the run (its mutants would differ: run tools/mutate.sh again), unless MUTATE_AGAIN_STALE=1.
#   tools/mutate-again.sh vlx/regions/select.py tests/test_regions.py [more tests ...]
# Prints the same summary line as tools/mutate.sh.
set -euo pipefail
mod=${1:?usage: tools/mutate-again.sh MODULE.py TEST_FILE...}; shift
[ $# -gt 0 ] || { echo "give the test files that cover $mod" >&2; exit 2; }
root=$(git rev-parse --show-toplevel)
py=${PY:-$root/.venv/bin/python}
work=${MUTATE_DIR:-$root/out/mutate}/$(echo "${mod%.py}" | tr / .)
[ -f "$work/results.txt" ] || { echo "no finished run in $work: run tools/mutate.sh first" >&2; exit 2; }
# MUTATE_AGAIN_STALE=1 re-checks the run's own copy of a module that changed since (say so when quoting the figure)
stale=""
if ! cmp -s "$root/$mod" "$work/$mod"; then
  [ -n "${MUTATE_AGAIN_STALE:-}" ] || { echo "$mod changed since the run in $work: run tools/mutate.sh again" >&2; exit 3; }
  stale="; the run's copy of the module, which has changed since"
fi
for d in "$work/tests" "$work/mutants/tests"; do rm -rf "$d"; cp -r "$root/tests" "$d"; done
{
  sed -n '1,/^pytest_add_cli_args_test_selection=/p' "$work/setup.cfg" | sed '$d'
  echo "pytest_add_cli_args_test_selection=$1"; shift
  for t in "$@"; do echo "    $t"; done
  sed -n '/^also_copy=/,$p' "$work/setup.cfg"
} > "$work/setup.cfg.new" && mv "$work/setup.cfg.new" "$work/setup.cfg"
# statuses so far: status.txt from an earlier re-check, else this run's own results; mutmut forgets the verdicts it
# did not re-run when the test selection changes, so the merged table is kept here
[ -f "$work/status.txt" ] || (cd "$work" && "$py" -m mutmut results --all true 2>/dev/null | grep "__mutmut_" | sed 's/^ *//' > status.txt)
names=$(grep -E ": (survived|no tests)$" "$work/status.txt" | cut -d: -f1)
cd "$work"
export PYTHONPATH= OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if [ -n "$names" ]; then
  # shellcheck disable=SC2086
  nice "$py" -m mutmut run --max-children "${MUTATE_CHILDREN:-2}" $names > mutmut-again.log 2>&1 || true
fi
"$py" -m mutmut results --all true 2>/dev/null | grep "__mutmut_" | sed 's/^ *//' > now.txt || true
echo "$names" | tr ' ' '\n' | grep . | while read -r n; do
  new=$(grep -F "$n: " now.txt | head -n 1 | cut -d: -f2- | sed 's/^ *//')
  [ -z "$new" ] || [ "$new" = "not checked" ] || sed -i "s|^$n: .*|$n: $new|" status.txt
done
grep -E ": (survived|no tests|timeout)$" status.txt || true
count() { grep -c ": $1$" status.txt || true; }
all=$(grep -c "__mutmut_" status.txt || true)
k=$(count killed); surv=$(count survived); tout=$(count timeout)
echo "$mod: $k killed / $all mutants ($surv survived, $tout timeout, $((all - k - surv - tout)) other; re-checked$stale); log: $work/mutmut-again.log"
