# Shared by the launch scripts: dry runs, quoting, errors.
# shellcheck shell=bash

DRY_RUN=0

# run CMD ARGS...: print the command (quoted so it can be pasted), then run it unless --dry_run.
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [[ "${DRY_RUN}" -eq 0 ]]; then
    "$@"
  fi
}

die() {
  echo "error: $*" >&2
  exit 2
}
