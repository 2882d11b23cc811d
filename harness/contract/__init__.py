"""The neutral contract between the harness and any service it tests.

Both the harness and the reference services import this package; nothing in it imports
either of them. It holds what a service must agree on to be tested:

- `envelope`: the event envelope, its strict decoder and the event types;
- `dataset`: the replicated fields and the row digest both sides hash with;
- `naming`: exchange, queue, dead-letter and routing-key names;
- `outcomes`: the delivery outcomes a consumer records and the dead-letter reason codes;
- `crash_points`: the names of the crash points a service can be asked to die at;
- `client`: a typed client for the services' observation and admin HTTP API.

docs/contract.md describes it for someone writing their own service.
"""
