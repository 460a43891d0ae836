"""An aws CLI plugin that records every ECS request the CLI signs and sends,
byte for byte, as JSON lines in $ORCA_RECORD_FILE, for replay.py.

Loaded through the CLI's own plugin mechanism (`[plugins]` in the config
file awscli.sh writes), so the CLI itself is not changed.
"""

import base64
import json
import os


def _record(request, **_):
    headers = {
        k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
    }
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    with open(os.environ["ORCA_RECORD_FILE"], "a") as f:
        f.write(json.dumps({"headers": headers, "body": base64.b64encode(body).decode()}) + "\n")


def awscli_initialize(event_hooks):
    event_hooks.register("before-send.ecs", _record)
