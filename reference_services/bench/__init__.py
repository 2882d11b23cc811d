"""Benchmarks of the reference services' own internals (integrity SQL, resync, the relay's
publisher against the fault proxy), run through `harness bench`."""
