#!/bin/bash
# Reformats C files in place with the repository's .clang-format.
#   ci/format.sh            every file that ci/format-check.sh checks
#   ci/format.sh FILE...    only these files
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}

if [ "$#" -gt 0 ]; then
	exec "$CLANG_FORMAT" -i --style=file "$@"
fi
cd "$root"
mapfile -t files < <(ci/format-files.sh)
"$CLANG_FORMAT" -i --style=file "${files[@]}"
echo "format: ${#files[@]} files formatted"
