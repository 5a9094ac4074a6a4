#!/bin/bash
# Assembles scripts/exec-stub.S and prints its code as the Rust byte array of src/process/exec_stub.rs (CODE).
# Needs GNU binutils (as, objcopy). The unit test `code_matches_its_assembly_source` checks the two agree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --64 -o "$tmp/stub.o" "$here/exec-stub.S"
objcopy -O binary -j .text "$tmp/stub.o" "$tmp/stub.bin"
len=$(stat -c %s "$tmp/stub.bin")
echo "const CODE: [u8; $len] = ["
od -An -v -tx1 -w16 "$tmp/stub.bin" | sed 's/ \([0-9a-f][0-9a-f]\)/ 0x\1,/g; s/^ /    /'
echo "];"
