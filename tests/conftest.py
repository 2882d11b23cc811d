"""Settings every test shares."""

from __future__ import annotations

import os

# `harness run` picks its runtime itself (containers when a Docker engine answers): tests
# that do not name one run in local processes, whatever the machine offers. Tests of the
# containers runtime ask for it with --runtime containers.
os.environ.setdefault("RCH_RUNTIME", "processes")
