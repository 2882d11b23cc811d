"""A local S3 server (moto) run as a component: the durable storage of a Tansu broker.

moto keeps every object in its own memory, so the storage lives exactly as long as this
process: a broker stopped, killed or frozen while the server runs loses nothing, while
stopping or killing the server loses the bucket, as losing the broker's disk would. It
enforces S3's conditional writes, which Tansu relies on to update its metadata safely.

Run as `python -m harness.runtime.s3_server --host H --port P` (what the component does):
moto's own server, with its one-log-line-per-request output turned off, since Tansu makes
hundreds of requests a second and they would bury everything else in the log.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from harness.errors import BrokerError
from harness.runtime.base import LOOPBACK, Network
from harness.runtime.ports import free_port
from harness.runtime.process import Launcher, ManagedProcess, ProcessBacked

# A bucket created without a location constraint lives in us-east-1; clients must agree.
REGION = "us-east-1"
# moto accepts any credentials; S3 clients refuse to sign without some.
ACCESS_KEY_ID = "harness"
SECRET_ACCESS_KEY = "harness"
_BUCKET_EXISTS = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


class S3Server(ProcessBacked):
    """One moto server on its own loopback port, with one bucket, created (and probed) on
    every start."""

    def __init__(self, name: str, work_dir: Path, base_env: Mapping[str, str], bucket: str,
                 on_event: Callable[[str, Mapping[str, object]], None] | None = None,
                 launch: Launcher = ManagedProcess, network: Network = LOOPBACK) -> None:
        self.name = name
        self.bucket = bucket
        self.dir = work_dir / name
        self.port = free_port()
        self._s3: Any = None
        argv = [sys.executable, "-m", "harness.runtime.s3_server", "--host", network.bind_host,
                "--port", str(self.port)]
        self.server = launch(
            name, argv, base_env, self.dir, self.dir / "s3.log", ready=self._bucket_created,
            endpoints={"main": network.endpoint(name, self.port)}, ready_timeout_s=30.0,
            on_event=on_event)

    @property
    def url(self) -> str:
        return self.endpoint().http_url()

    def client_env(self) -> dict[str, str]:
        """The environment an S3 client (Tansu's object store) needs to use this server
        (another component: the endpoint's inside view)."""
        return {
            "AWS_ENDPOINT": self.endpoint().inside.http_url(),
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def _client(self) -> Any:
        if self._s3 is None:
            # Short timeouts and no retries: a probe must answer now or count as "not yet".
            config = botocore.config.Config(connect_timeout=1, read_timeout=5,
                                            retries={"total_max_attempts": 1})
            self._s3 = boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                                    aws_access_key_id=ACCESS_KEY_ID,
                                    aws_secret_access_key=SECRET_ACCESS_KEY, config=config)
        return self._s3

    def _bucket_created(self) -> bool:
        # Readiness is a real S3 call: the server answers, and the bucket Tansu needs exists.
        try:
            self._client().create_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _BUCKET_EXISTS:
                raise
        return True

    def keys(self, prefix: str) -> list[str]:
        """Every key in the bucket that starts with `prefix`, in S3's (lexical) order."""
        found: list[str] = []
        try:
            pages = self._client().get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                found.extend(item["Key"] for item in page.get("Contents", []))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise BrokerError(f"cannot list {prefix!r} in S3 bucket {self.bucket} at "
                              f"{self.url}: {exc}") from exc
        return found

    def read(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and its ETag (for a conditional write back)."""
        try:
            answer = self._client().get_object(Bucket=self.bucket, Key=key)
            return answer["Body"].read(), str(answer["ETag"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise BrokerError(f"cannot read {key!r} from S3 bucket {self.bucket} at "
                              f"{self.url}: {exc}") from exc

    def replace(self, key: str, body: bytes, etag: str) -> bool:
        """Write `body` to `key` only if it still has `etag`; False if someone wrote it
        since (S3's conditional write, If-Match)."""
        try:
            self._client().put_object(Bucket=self.bucket, Key=key, Body=body, IfMatch=etag)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False
            raise BrokerError(f"cannot write {key!r} to S3 bucket {self.bucket} at "
                              f"{self.url}: {exc}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise BrokerError(f"cannot write {key!r} to S3 bucket {self.bucket} at "
                              f"{self.url}: {exc}") from exc
        return True

    def delete(self, keys: list[str]) -> None:
        try:
            for first in range(0, len(keys), 1000):  # S3's limit per request
                chunk = keys[first:first + 1000]
                answer = self._client().delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})
                if answer.get("Errors"):
                    raise BrokerError(f"S3 bucket {self.bucket} at {self.url} refused to "
                                      f"delete: {answer['Errors'][:3]}")
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise BrokerError(f"cannot delete {len(keys)} objects from S3 bucket "
                              f"{self.bucket} at {self.url}: {exc}") from exc



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's S3 server, quiet")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # werkzeug logs every request at INFO; its errors (tracebacks) stay visible.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import main as moto_main  # heavy: only in the server process

    moto_main(["-H", args.host, "-p", str(args.port)])


if __name__ == "__main__":
    main()
