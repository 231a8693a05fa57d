"""hoist's Flask example: a greeting with the deployed version, and a health check.

    GET /        {"message": "Hello from Flask on hoist!", "version": "<APP_VERSION>"}
    GET /health  200 ok

Run with `python3 app.py`: Flask's own server on 0.0.0.0:$PORT (default 5000).
"""

import os
import signal
import sys

from flask import Flask, jsonify

GREETING = "Hello from Flask on hoist!"

app = Flask(__name__)


@app.get("/")
def index():
    """The greeting and the version the environment says this is."""
    return jsonify(message=GREETING, version=os.environ.get("APP_VERSION", "unknown"))


@app.get("/health")
def health():
    """What the load balancer and the image's HEALTHCHECK ask."""
    return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


def _stop(signum, _frame):
    """Exit at once on SIGTERM: as a container's PID 1, a process without a
    handler would ignore it and be killed only at the end of the stop timeout."""
    print(f"signal {signum}: stopping", file=sys.stderr, flush=True)
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    port = int(os.environ.get("PORT", "5000"))
    app.run(host="0.0.0.0", port=port, threaded=True)
