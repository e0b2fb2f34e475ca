#!/usr/bin/env bash
# Fail if any tracked file refers to the team's reading folder beside the project.
#
#   scripts/check-self-contained.sh [repository-dir]
#
# That folder is reading material for the people who build Waypost, not part of the product: a
# user's clone has no such folder, so nothing here may read, import or cite it. Facts the code
# needs live in docs/ (our own words, citing Meta) and test data in tests/fixtures/.
set -euo pipefail
cd "${1:-.}"
# Built from pieces so that this script does not match itself.
folder="sh""ared"
pattern="(\.\./${folder}|(^|[^[:alnum:]_.-])${folder}/|meta-cloud-api\.md|perf-notes\.md)"
if hits=$(git grep -nIE "$pattern" -- . 2>/dev/null); then
    echo "These lines refer to files outside the repository (a clone has no ../${folder}):" >&2
    echo "$hits" >&2
    exit 1
fi
