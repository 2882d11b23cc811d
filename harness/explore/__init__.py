"""`harness explore`: Hypothesis draws fault schedules from the fault catalogue, each runs
against the real system under test and is judged by the usual checks, and a confirmed
failure is shrunk to a minimal schedule stored as a replayable scenario file
(docs/explore.md)."""
