"""Benchmarks of the harness's own (no service internals): figures set against the raw
part measured in the same run, on the same machine (`harness bench lag`, and
`harness bench proxy --broker kafka`)."""
