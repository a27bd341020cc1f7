# SPDX-License-Identifier: Apache-2.0
# PASS/FAIL rows for the GPU scripts (sourced by run.sh and compat.sh). The caller sets LOGS
# (a folder for the steps' logs) and BUDGET (seconds for the whole script) before sourcing.
#   record NAME STATUS FIGURES        one row (PASS, FAIL, SKIP or INFO), printed at once
#   run_step NAME TIMEOUT CMD...      CMD's stdout in LOGS/NAME.log, stderr in LOGS/NAME.err;
#                                     PASS iff it exits 0; figures = its last "SUMMARY: " line
#   print_rows TITLE                  the table, last; exit status 0 iff no row failed
NAMES=()
STATUS=()
FIGS=()
record() {  # name status figures
  NAMES+=("$1")
  STATUS+=("$2")
  FIGS+=("$3")
  printf '[%-4s] %-30s %s\n' "$2" "$1" "$3"
}

# Seconds left for the next step's timeout: min(wanted, budget left), at least 5.
tmo() {
  local want=$1 left=$((BUDGET - SECONDS))
  ((left < 5)) && left=5
  ((want < left)) && echo "$want" || echo "$left"
}
over_budget() { ((SECONDS >= BUDGET)); }

run_step() {
  local name=$1 t=$2
  shift 2
  if over_budget; then
    record "$name" SKIP "time budget (${BUDGET}s) used up"
    return 1
  fi
  local log=$LOGS/$name.log err=$LOGS/$name.err rc
  {
    echo "# $(date -Is) $name"
    printf '# cmd:'
    printf ' %q' "$@"
    echo
  } >"$log"
  timeout -k 5 "$(tmo "$t")" "$@" >>"$log" 2>"$err" </dev/null
  rc=$?
  local figs
  figs=$(grep -a '^SUMMARY: ' "$log" | tail -n1 | cut -c10-)
  [[ -z $figs ]] && figs="(no SUMMARY line)"
  local st=PASS
  if ((rc == 124 || rc == 137)); then
    st=FAIL
    figs="TIMEOUT; $figs"
  elif ((rc != 0)); then
    st=FAIL
    figs="rc=$rc; $figs"
  fi
  record "$name" "$st" "$figs"
  if [[ $st != PASS ]]; then
    grep -a '^CHECK FAIL' "$log" | sed 's/^/        /' | head -n 20
    if ! grep -qa '^CHECK' "$log"; then
      tail -n 5 "$err" | sed 's/^/        stderr: /'
    fi
  fi
  return $rc
}

print_rows() {
  local npass=0 nfail=0 ninfo=0 s
  {
    echo
    echo "================ $1 (${SECONDS}s; logs: $LOGS) ================"
    printf '%-30s %-5s %s\n' CHECK RESULT "MEASURED"
    for i in "${!NAMES[@]}"; do
      printf '%-30s %-5s %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${FIGS[$i]}"
    done
  } | tee "$LOGS/summary.txt"
  for s in "${STATUS[@]}"; do
    if [[ $s == PASS ]]; then
      npass=$((npass + 1))
    elif [[ $s == INFO ]]; then
      ninfo=$((ninfo + 1))
    else
      nfail=$((nfail + 1))
    fi
  done
  echo "TOTAL: $npass passed, $nfail failed/skipped, $ninfo informational (not graded)" | tee -a "$LOGS/summary.txt"
  ((nfail == 0))
}
