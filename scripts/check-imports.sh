#!/usr/bin/env bash
# Fails when a source file imports across the never-list, which keeps the trust boundaries in
# the code's shape: the supervisor never links the code that parses model output; a processor
# never links the database; an executor links neither. Usage: scripts/check-imports.sh [ROOT]
# (ROOT defaults to the repository; the test suite plants a violation in a copy to prove it fails).
set -euo pipefail
root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}

# folder under Sources/ | modules it must never import | why
rules=(
    "Supervisor|Processor OneoPrompt QueueManager API|the supervisor holds the master key and parses no untrusted content"
    "Processor|Supervisor OneoStore QueueManager API PostgresNIO|a processor has no database access and no supervisor internals"
    "QueueManager|Processor Supervisor OneoPrompt API|the queue manager moves jobs; it renders nothing and spawns nothing"
    "Tools|Processor Supervisor QueueManager API OneoStore PostgresNIO|an executor links the wire and its own C library, nothing else of ours"
    "OneoWire|OneoPrompt OneoStore OneoCore PostgresNIO NIOSSL CHiredis Crypto|the wire is what an executor links: frames and messages only"
    "OneoPrompt|OneoStore PostgresNIO|rendering a prompt reads no database"
    "OneoRedis|OneoStore OneoCore OneoPrompt PostgresNIO NIOSSL Crypto|the cache connection is hiredis and the wire: a processor links it without the database"
)

violations=0
for rule in "${rules[@]}"; do
    IFS='|' read -r folder forbidden why <<<"$rule"
    dir="$root/Sources/$folder"
    [ -d "$dir" ] || continue
    for module in $forbidden; do
        # `import X`, `public import X`, `@testable import X`, `import struct X.Y`, `internal import X`
        hits=$(grep -rnE "^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*((public|package|internal|private|fileprivate)[[:space:]]+)?import[[:space:]]+((struct|class|enum|protocol|func|var|let|typealias)[[:space:]]+)?$module([.[:space:]]|$)" "$dir" --include='*.swift' || true)
        if [ -n "$hits" ]; then
            while IFS= read -r hit; do
                echo "import across the never-list: ${hit#"$root/"}" >&2
                echo "    Sources/$folder must not import $module: $why" >&2
            done <<<"$hits"
            violations=$((violations + 1))
        fi
    done
done

if [ "$violations" -gt 0 ]; then
    echo "check-imports: $violations violation(s)" >&2
    exit 1
fi
echo "check-imports: no import crosses the never-list"
