"""Entry point for ``python -m harness.faultproxy``."""

from __future__ import annotations

from harness.faultproxy.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
