"""Independent observers: what the harness sees for itself, never through the code under
test.

- `tap`: the harness's own subscription to the event stream (a broker tap), recording
  every event that reached the broker;
- `replica_db`: a consumer's replica read straight from its database file;
- `sampler`: that replica sampled while the load and the faults run.

The checkers in harness/checkers/observed.py judge the services' testimony against them.
"""

from harness.errors import ObservationError

__all__ = ["ObservationError"]
