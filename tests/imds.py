"""A stand-in for EC2's instance metadata service, IMDSv2 only, for tests: it hands out one role's
credentials (taken from moto's STS) the way EC2 does, on an address of the test's own choosing;
and a moto server that enforces IAM policies, so what the role does not allow is refused.

Without a session token (PUT /latest/api/token first) every GET is refused with 401, as on an
instance whose metadata options say http_tokens: required.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/"


@contextmanager
def serve(address: str, role: str, credentials: dict) -> Iterator[tuple[str, list[str]]]:
    """Serve `credentials` (STS's Credentials) as the instance role `role`; yields the endpoint URL
    and the log of requests ("METHOD path status")."""
    answer = json.dumps({
        "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": credentials["AccessKeyId"],
        "SecretAccessKey": credentials["SecretAccessKey"], "Token": credentials["SessionToken"],
        "LastUpdated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Expiration": (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    with serve_documents(address, {CREDENTIALS_PATH: role, CREDENTIALS_PATH + role: answer}) as (url, log):
        yield f"{url}/", log


@contextmanager
def moto_enforcing_iam(address: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A moto server of this test's own that checks IAM policies after the first three calls (which
    make the admin user the rest of the setup runs as); yields its URL and the admin's keys."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", address, "-p", str(port)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        for _ in range(150):
            with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
                break
            time.sleep(0.2)
        url = f"http://{address}:{port}"
        iam = boto3.client("iam", region_name="us-east-1", endpoint_url=url, aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        yield url, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def serve_documents(address: str, documents: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """A metadata service (IMDSv2 only) that answers these paths with these bodies and 404 for
    any other; `documents` may be changed while it runs. Yields its URL and the request log."""
    tokens: set[str] = set()
    log: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: str = "") -> None:
            log.append(f"{self.command} {self.path} {status}")
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:  # noqa: N802
            if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self._send(400)
            token = secrets.token_urlsafe(24)
            tokens.add(token)
            return self._send(200, token)

        def do_GET(self) -> None:  # noqa: N802
            if self.headers.get("X-aws-ec2-metadata-token") not in tokens:
                return self._send(401)
            return self._send(200, documents[self.path]) if self.path in documents else self._send(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((address, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
