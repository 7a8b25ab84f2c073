#!/bin/bash
# Fails (non-zero) if any C file differs from what clang-format makes of it
# with the repository's .clang-format. Fix with ci/format.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
mapfile -t files < <(ci/format-files.sh)
if [ "${#files[@]}" -eq 0 ]; then
	echo "format-check: no C files found" >&2
	exit 1
fi
echo "format-check: $("$CLANG_FORMAT" --version | head -n1), ${#files[@]} files"
if ! "$CLANG_FORMAT" --dry-run -Werror --style=file "${files[@]}"; then
	echo >&2
	echo "format-check: FAILED. Run ci/format.sh (or clang-format -i FILE) and commit." >&2
	exit 1
fi
echo "format-check: OK"
