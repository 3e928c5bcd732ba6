#!/usr/bin/env bash
# CI: Debian's chromium, for tests/test_tape_browser.py (headless; no network needed by the tests).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
apt-get update -qq && apt-get install -y -qq chromium
