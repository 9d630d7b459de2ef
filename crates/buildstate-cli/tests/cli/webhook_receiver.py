"""A webhook receiver for the tests: verifies Standard Webhooks signatures on its own
(Python's hmac, not buildstate's code), refuses the first N deliveries with 503, and
appends one JSON line per request to OUT.

    python3 webhook_receiver.py PORT_FILE OUT SECRET REFUSE_FIRST
"""

import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, out, secret, refuse_first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
key = base64.b64decode(secret.removeprefix("whsec_"))
seen = {"requests": 0}


def verified(msg_id, timestamp, body, header):
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [part.split(",", 1)[1] for part in header.split(" ") if part.startswith("v1,")]
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and any(hmac.compare_digest(expected, g) for g in given)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        seen["requests"] += 1
        msg_id = self.headers.get("webhook-id", "")
        ok = verified(msg_id, self.headers.get("webhook-timestamp", "0"), body, self.headers.get("webhook-signature", ""))
        if not ok:
            status = 401
        elif seen["requests"] <= refuse_first:
            status = 503
        else:
            status = 204
        record = {"id": msg_id, "status": status, "signed": ok, "type": json.loads(body).get("type")}
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os

os.replace(port_file + ".tmp", port_file)
server.serve_forever()
