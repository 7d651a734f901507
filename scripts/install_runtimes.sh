#!/usr/bin/env bash
# Install the language runtimes (and the test libraries their benchmark tests use) that MultiPL-E's
# tasks run programs with, inside the sandbox: Node.js, Lua 5.4 + luaunit, Ruby + test-unit, PHP,
# Perl + Test::Deep, Bash. Idempotent: does nothing when all are there. Debian/Ubuntu (apt-get) only.
set -euo pipefail

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v lua5.4 >/dev/null 2>&1 || missing+=(lua5.4)
{ command -v lua5.4 >/dev/null 2>&1 && lua5.4 -e "require('luaunit')" >/dev/null 2>&1; } || missing+=(lua-unit)
command -v ruby >/dev/null 2>&1 || missing+=(ruby)
{ command -v ruby >/dev/null 2>&1 && ruby -e "require 'test/unit'; Test::Unit::AutoRunner.need_auto_run = false" \
    >/dev/null 2>&1; } || missing+=(ruby-test-unit)
command -v php >/dev/null 2>&1 || missing+=(php-cli)
perl -MTest::Deep -e 1 >/dev/null 2>&1 || missing+=(libtest-deep-perl)

if [ ${#missing[@]} -eq 0 ]; then
    echo "language runtimes already installed (node, lua5.4, ruby, php, perl, bash)"
    exit 0
fi
source "$(dirname "${BASH_SOURCE[0]}")/apt_install.sh"
apt_install "the MultiPL-E runtimes" "${missing[@]}"
echo "language runtimes installed: ${missing[*]}"
