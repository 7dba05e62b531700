"""A local stand-in for PagerDuty's Events API v2 (POST /v2/enqueue), for the tests and the demo.

It checks each event strictly against the developer guide's "Send an Alert Event"
(https://developer.pagerduty.com/docs/events-api-v2/trigger-events/) and "Overview" (response
codes, the 512 KB limit): required fields, enum values, lengths, types, no unknown field. A
valid event is answered 202 as PagerDuty answers it, an invalid one 400 with the reasons.

Control, for failure tests:
  POST /control {"fail": [429, 500]}  the next answers, in order, before 202 again
  POST /control {"always": 503}       every answer, until {"always": null}
  POST /control {"hang": 1}           the next request is recorded, then answered 5 s late
  GET  /events                        every request so far: {"status", "event", "errors"}

Prints `READY <port>` once it listens on a free loopback port. Usage:
  python tests/pagerduty_receiver.py <routing key>
"""

import json
import re
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BYTES = 512 * 1024
ACTIONS = {"trigger", "acknowledge", "resolve"}
SEVERITIES = {"critical", "error", "warning", "info"}
TOP = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
PAYLOAD = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def errors_of(event, routing_key):
    """The reasons the event is invalid; none when it is valid."""
    if not isinstance(event, dict):
        return ["the body is not a JSON object"]
    errors = [f"unknown field {k}" for k in event if k not in TOP]
    if event.get("routing_key") != routing_key:
        errors.append("routing_key is not the integration's key")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append(f"event_action {action!r} is not one of {sorted(ACTIONS)}")
    key = event.get("dedup_key")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 255):
        errors.append("dedup_key must be a string of 1 to 255 characters")
    if action in ("acknowledge", "resolve") and key is None:
        errors.append(f"{action} needs the dedup_key of the alert")
    if action == "trigger":
        errors.extend(payload_errors(event.get("payload")))
    elif "payload" in event:
        errors.extend(payload_errors(event["payload"]))
    for name in ("client", "client_url"):
        if name in event and not isinstance(event[name], str):
            errors.append(f"{name} must be a string")
    links = event.get("links", [])
    if not isinstance(links, list) or any(
        not isinstance(link, dict) or not isinstance(link.get("href"), str) or set(link) - {"href", "text"}
        for link in links
    ):
        errors.append("links must be objects with href (and text)")
    if not isinstance(event.get("images", []), list):
        errors.append("images must be a list")
    return errors


def payload_errors(payload):
    if not isinstance(payload, dict):
        return ["a trigger needs a payload object"]
    errors = [f"unknown payload field {k}" for k in payload if k not in PAYLOAD]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not 1 <= len(summary) <= 1024:
        errors.append("payload.summary must be a string of 1 to 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        errors.append("payload.source is required")
    if payload.get("severity") not in SEVERITIES:
        errors.append(f"payload.severity {payload.get('severity')!r} is not one of {sorted(SEVERITIES)}")
    stamp = payload.get("timestamp")
    if stamp is not None:
        if not isinstance(stamp, str) or not ISO.match(stamp):
            errors.append("payload.timestamp must be ISO 8601")
        else:
            datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    for name in ("component", "group", "class"):
        if name in payload and not isinstance(payload[name], str):
            errors.append(f"payload.{name} must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("payload.custom_details must be an object")
    return errors


class State:
    def __init__(self, routing_key):
        self.routing_key = routing_key
        self.lock = threading.Lock()
        self.fail = []
        self.always = None
        self.hang = 0
        self.events = []

    def answer(self, raw):
        with self.lock:
            errors = []
            try:
                event = json.loads(raw) if len(raw) <= MAX_BYTES else None
                if event is None:
                    errors = ["the body is over 512 KB"]
            except ValueError:
                event, errors = None, ["the body is not JSON"]
            errors = errors or errors_of(event, self.routing_key)
            if self.fail:
                status = self.fail.pop(0)
            elif self.always is not None:
                status = self.always
            else:
                status = 400 if errors else 202
            self.events.append({"status": status, "event": event, "errors": errors})
            if status == 202:
                key = event.get("dedup_key") if isinstance(event, dict) else None
                body = {"status": "success", "message": "Event processed", "dedup_key": key}
            elif status == 400:
                body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            else:
                body = {"status": "unavailable", "message": "try again later"}
            return status, body


def handler(state):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def read(self):
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_POST(self):
            if self.path == "/v2/enqueue":
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    state.events.append({"status": 400, "event": None, "errors": ["Content-Type"]})
                    return self.reply(400, {"status": "invalid event", "errors": ["Content-Type"]})
                status, body = state.answer(self.read())
                with state.lock:
                    hang, state.hang = state.hang > 0, max(state.hang - 1, 0)
                if hang:
                    time.sleep(5)
                return self.reply(status, body)
            if self.path == "/control":
                plan = json.loads(self.read() or b"{}")
                with state.lock:
                    state.fail = list(plan.get("fail", state.fail))
                    state.always = plan.get("always", state.always)
                    state.hang = plan.get("hang", state.hang)
                return self.reply(200, {})
            self.reply(404, {})

        def do_GET(self):
            if self.path == "/events":
                with state.lock:
                    return self.reply(200, state.events)
            self.reply(404, {})

    return Handler


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(State(sys.argv[1])))
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
