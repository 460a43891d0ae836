"""Byte level: recorded ECS requests sent again as raw HTTP, and each raw
answer handed to botocore's own JSON parser for that operation's output
shape (or its error shape), as botocore does inside every call.

Reads only are replayed (a write would change the state). Used by
boto3_client.py on what it recorded, and run on its own on what the aws
CLI recorded (`python replay.py FILE MIN`): exits non-zero unless at least
MIN requests were replayed and every answer parsed.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.request

import botocore.session
from botocore.parsers import create_parser

WRITES = ("Create", "Delete", "Register", "Deregister", "Run", "Start", "Stop", "Update", "Put",
          "Tag", "Untag", "Submit")


def replay(recorded, endpoint):
    """`recorded`: (headers, body) pairs as sent. Returns how many were replayed."""
    model = botocore.session.get_session().get_service_model("ecs")
    parser = create_parser("json")
    replayed = 0
    for headers, body in recorded:
        target = headers.get("X-Amz-Target") or headers["x-amz-target"]
        if isinstance(target, bytes):
            target = target.decode()
        operation = model.operation_model(target.split(".", 1)[1])
        if operation.name.startswith(WRITES):
            continue
        req = urllib.request.Request(endpoint + "/", data=body, method="POST")
        for k, v in headers.items():
            req.add_header(k, v.decode() if isinstance(v, bytes) else v)
        try:
            with urllib.request.urlopen(req) as r:
                status, raw_headers, raw = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, raw_headers, raw = e.code, dict(e.headers), e.read()
        raw_headers = {k.lower(): v for k, v in raw_headers.items()}
        assert raw_headers.get("content-type") == "application/x-amz-json-1.1", raw_headers
        assert raw_headers.get("x-amzn-requestid"), raw_headers
        parsed = parser.parse(
            {"status_code": status, "headers": raw_headers, "body": raw}, operation.output_shape
        )
        if status == 200:
            assert "Error" not in parsed, (operation.name, parsed)
        else:
            assert parsed["Error"]["Code"] and parsed["Error"]["Message"], (operation.name, raw)
        replayed += 1
    return replayed


def main():
    path, minimum = sys.argv[1], int(sys.argv[2])
    recorded = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            recorded.append((r["headers"], base64.b64decode(r["body"])))
    replayed = replay(recorded, os.environ["ORCA_ECS_ENDPOINT"])
    assert replayed >= minimum, f"only {replayed} of {len(recorded)} recorded requests were reads"
    print(f"{replayed} of {len(recorded)} recorded requests (the reads) replayed and parsed by botocore")


if __name__ == "__main__":
    main()
