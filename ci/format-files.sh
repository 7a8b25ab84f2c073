#!/bin/bash
# Lists the C sources and headers that clang-format owns, one per line:
# every tracked or new (not ignored) *.c / *.h, except the fuzz corpora
# (binary seeds that may happen to end in .c or .h). Sourced by
# format-check.sh and format.sh; runs from the repository root.
set -euo pipefail

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files --cached --others --exclude-standard -- '*.c' '*.h'
else
	# A tarball without .git: same rule, build trees excluded.
	find . -type f \( -name '*.c' -o -name '*.h' \) -not -path './build*' -not -path './.git/*' |
		sed 's|^\./||'
fi | grep -v '^fuzz/corpus' | while read -r f; do
	[ -f "$f" ] && printf '%s\n' "$f" # skip files deleted but not yet staged
done | sort -u
