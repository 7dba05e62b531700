"""moto on a loopback port, in-process, with a control endpoint for what moto cannot set.

    python tests/moto_server.py [--port N]

Prints ``READY <port>`` once it serves, and exits when its standard input closes, so a test
that dies takes the emulator with it. Besides every AWS API moto knows, it answers:

    POST /_watchdog/container-instance   {"cluster", "containerInstanceArn",
                                          "agentConnected"?, "status"?, "health"?}
        sets what ECS would set and, for the agent and the status, bumps the container
        instance's version, as ECS does;
        "health" is the `healthStatus` DescribeContainerInstances returns (moto has none);
        "capacityProviderName" the provider that launched it.
    POST /_watchdog/capacity-provider     {"name", "type"}: the provider's `type` (moto knows only
                                          Auto Scaling providers, without a type).
    GET  /_watchdog/calls                {"ecs:DescribeContainerInstances": 2, ...} since reset
    GET  /_watchdog/in-flight            {"ecs": 8, ...}: the most calls to a service at once, since reset
    POST /_watchdog/calls/reset          (both)
    GET  /_watchdog/sns                  every message SNS published, in order
    POST /_watchdog/managed-node         {"id": "mi-…", "pingStatus": "Online" | "ConnectionLost" | null}:
        what Systems Manager's DescribeInstanceInformation answers for an ECS Anywhere host
        (moto does not implement it for these ids; the filter `InstanceIds` and `MaxResults` are
        honoured, and a page ends with a token when more match); {"failing": true} makes it answer
        500, as Systems Manager does when it is down.
    GET  /_watchdog/requests?operation=ecs:ListTasks
                                         the JSON bodies of that operation's requests since reset
    POST /_watchdog/assume-role          {"roleArn", "denied": true | false}: STS AssumeRole of that
        role answers 403 AccessDenied, as when the role's trust policy does not admit the caller
        (moto enforces no IAM).
    POST /_watchdog/kill                 {"operation": "sns:Publish", "pid", "when": "before" | "after"}:
        on the next call of that operation, kills the process `pid` (SIGKILL) and waits until it
        is gone, either before moto sees the call or after moto took it and before the caller
        reads the answer: a crash at exactly that point, with no sleep to time it. Once.

A container instance is found in the account its ARN names: moto keeps a backend per account,
and credentials from AssumeRole act in the role's account. TagResource and ListTagsForResource
take a container instance ARN (moto raises NotImplementedError there), and
DescribeContainerInstances returns its tags, as ECS does with `include: TAGS`.

moto does not know the ECS Managed Daemons APIs; they answer as in a region without them
(400 UnknownOperationException). Tasks keep the status they were started with: moto would
otherwise move them towards STOPPED on every DescribeTasks.
"""

import argparse
import copy
import datetime
import io
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from urllib.parse import parse_qs

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.ec2.models import ec2_backends
from moto.ecs import models as ecs_models
from moto.moto_api import state_manager
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sns.models import sns_backends
from werkzeug.serving import make_server

ACCOUNT = "123456789012"
DAEMON_OPERATIONS = {
    "CreateDaemon", "DeleteDaemon", "DescribeDaemon", "DescribeDaemonDeployments", "DescribeDaemonRevisions",
    "ListDaemonDeployments", "ListDaemons", "UpdateDaemon",
}

state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})

# moto's container instances have no `version`; ECS bumps it on every change.
_original_init = ecs_models.ContainerInstance.__init__


def _init_with_version(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.version = 1


ecs_models.ContainerInstance.__init__ = _init_with_version

_original_update_state = ecs_models.EC2ContainerServiceBackend.update_container_instances_state


def _update_state_with_version(self, *args, **kwargs):
    instances, failures = _original_update_state(self, *args, **kwargs)
    for instance in instances:
        instance.version += 1
    return instances, failures


ecs_models.EC2ContainerServiceBackend.update_container_instances_state = _update_state_with_version

# ECS tags container instances (TagResource on a container instance ARN, DescribeContainerInstances
# with include=TAGS); moto raises NotImplementedError for that ARN. Here it finds the instance,
# whose `tags` it then serializes as the shape's member.
_original_get_resource = ecs_models.EC2ContainerServiceBackend._get_resource


def _get_resource_with_instances(self, resource_arn, parsed_arn):
    if parsed_arn["service"] == "container-instance":
        instance_id = parsed_arn["id"].rsplit("/", 1)[-1]
        for instances in self.container_instances.values():
            if instance_id in instances:
                instance = instances[instance_id]
                if getattr(instance, "tags", None) is None:
                    instance.tags = []
                return instance
        raise ecs_models.EcsClientException("Container instance not found.")
    return _original_get_resource(self, resource_arn, parsed_arn)


ecs_models.EC2ContainerServiceBackend._get_resource = _get_resource_with_instances


# moto backs a transaction up by deep-copying each table it writes, once per item: a
# TransactWriteItems of 100 items in a table of 1,500 took 3-7 s here (DynamoDB's time does not
# grow with the table), past the SDK's 5 s attempt timeout, and a copy iterating a table while
# another request wrote to it failed with a 500. Here a transaction backs up only the items it
# names, and a cancelled one puts exactly those back.
class _NoTableCopy:
    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, dynamodb_models.Table):
            return value
        return copy.deepcopy(value, memo)


dynamodb_models.copy = _NoTableCopy()
_original_transact = dynamodb_models.DynamoDBBackend.transact_write_items


def _item_key(table, op):
    attributes = op.get("Item") or op.get("Key") or {}
    hash_key = DynamoType(attributes[table.hash_key_attr])
    range_key = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
    return hash_key, range_key


def _transact_backing_up_items(self, transact_items, *args, **kwargs):
    backups = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName"))
        if table is not None:
            hash_key, range_key = _item_key(table, op)
            backups.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    try:
        return _original_transact(self, transact_items, *args, **kwargs)
    except Exception:
        for table, hash_key, range_key, item in reversed(backups):
            if item is None:
                if table.get_item(hash_key, range_key) is not None:
                    table.delete_item(hash_key, range_key)
            elif range_key is not None:
                table.items[hash_key][range_key] = item
            else:
                table.items[hash_key] = item
        raise


dynamodb_models.DynamoDBBackend.transact_write_items = _transact_backing_up_items


# ECS's Container shape has `cpu` and `memory` as strings; moto keeps the task definition's
# numbers, which strict clients (the Rust SDK) refuse to read.
_original_container_init = ecs_models.Container.__init__


def _container_with_string_sizes(self, *args, **kwargs):
    _original_container_init(self, *args, **kwargs)
    for field in ("cpu", "memory"):
        if getattr(self, field, None) is not None:
            setattr(self, field, str(getattr(self, field)))


ecs_models.Container.__init__ = _container_with_string_sizes


class Watchdog:
    """WSGI middleware: counts calls by operation, and the most in flight at once by service,
    and serves the control endpoint."""

    def __init__(self, app):
        self.app = app
        self.calls = Counter()
        self.in_flight = Counter()
        self.peak = Counter()
        self.requests = {}
        self.managed_nodes = {}
        self.ssm_failing = False
        self.denied_roles = set()
        self.kill = None
        self.lock = threading.Lock()
        self.transactions = Transactions()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_watchdog/"):
            return self.control(environ, start_response, path)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        called = operation(environ, body)
        service, _, action = called.partition(":")
        token = self.transactions.token(called, body)
        with self.lock:
            # A TransactWriteItems answered again from its token is counted where it is carried out.
            if token is None:
                self.calls[called] += 1
            if environ.get("HTTP_X_AMZ_TARGET") and len(self.requests.get(called, ())) < 10_000:
                self.requests.setdefault(called, []).append(body.decode("utf-8", "replace"))
            self.in_flight[service] += 1
            self.peak[service] = max(self.peak[service], self.in_flight[service])
        with self.lock:
            kill, self.kill = (self.kill, None) if self.kill and self.kill["operation"] == called else (None, self.kill)
        try:
            if kill and kill["when"] == "before":
                return killed(kill["pid"], start_response)
            if kill:
                answer = self.app(environ, start_response)
                killed(kill["pid"], None)
                return answer
            if called == "sts:AssumeRole" and self.denied(body):
                return denied(start_response)
            if called == "ssm:DescribeInstanceInformation" and self.ssm_failing:
                error = {"__type": "InternalServerError", "message": "injected"}
                return respond(start_response, "500 Internal Server Error", error)
            if called == "ssm:DescribeInstanceInformation":
                return respond(start_response, "200 OK", self.instance_information(json.loads(body or b"{}")))
            if service == "ecs" and action in DAEMON_OPERATIONS:
                error = {"__type": "UnknownOperationException", "message": f"{action} is not available in this region"}
                body = json.dumps(error).encode()
                start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
                return [body]
            if token is not None:
                return self.transactions.once(token, body, lambda respond: self.carry_out(called, environ, respond), start_response)
            # moto answers with a finished list, so the call is over when it returns.
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.in_flight[service] -= 1

    def carry_out(self, called, environ, start_response):
        with self.lock:
            self.calls[called] += 1
        return self.app(environ, start_response)

    def denied(self, body):
        role = parse_qs(body.decode("utf-8", "replace")).get("RoleArn", [""])[0]
        with self.lock:
            return role in self.denied_roles

    def instance_information(self, request):
        wanted = None
        for f in request.get("Filters", []):
            if f.get("Key") == "InstanceIds":
                wanted = set(f.get("Values", []))
        with self.lock:
            nodes = [
                {"InstanceId": node, "PingStatus": status, "ResourceType": "ManagedInstance"}
                for node, status in sorted(self.managed_nodes.items())
                if wanted is None or node in wanted
            ]
        start = int(request.get("NextToken") or 0)
        size = int(request.get("MaxResults") or 50)
        answer = {"InstanceInformationList": nodes[start:start + size]}
        if start + size < len(nodes):
            answer["NextToken"] = str(start + size)
        return answer

    def control(self, environ, start_response, path):
        method = environ["REQUEST_METHOD"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        region = parse_qs(environ.get("QUERY_STRING", "")).get("region", ["us-east-1"])[0]
        try:
            if path == "/_watchdog/calls" and method == "GET":
                with self.lock:
                    answer = dict(self.calls)
            elif path == "/_watchdog/calls/reset" and method == "POST":
                with self.lock:
                    self.calls.clear()
                    self.peak.clear()
                    self.requests.clear()
                answer = {}
            elif path == "/_watchdog/requests" and method == "GET":
                wanted = parse_qs(environ.get("QUERY_STRING", "")).get("operation", [""])[0]
                with self.lock:
                    answer = [json.loads(b or "{}") for b in self.requests.get(wanted, [])]
            elif path == "/_watchdog/in-flight" and method == "GET":
                with self.lock:
                    answer = dict(self.peak)
            elif path == "/_watchdog/container-instance" and method == "POST":
                answer = set_container_instance(region, request)
            elif path == "/_watchdog/managed-node" and method == "POST":
                with self.lock:
                    if "failing" in request:
                        self.ssm_failing = bool(request["failing"])
                    elif request.get("pingStatus"):
                        self.managed_nodes[request["id"]] = request["pingStatus"]
                    else:
                        self.managed_nodes.pop(request["id"], None)
                answer = {}
            elif path == "/_watchdog/assume-role" and method == "POST":
                with self.lock:
                    if request.get("denied"):
                        self.denied_roles.add(request["roleArn"])
                    else:
                        self.denied_roles.discard(request["roleArn"])
                answer = {}
            elif path == "/_watchdog/kill" and method == "POST":
                with self.lock:
                    self.kill = {"operation": request["operation"], "pid": int(request["pid"]), "when": request["when"]}
                answer = {}
            elif path == "/_watchdog/capacity-provider" and method == "POST":
                backend = ecs_models.ecs_backends[ACCOUNT][region]
                backend.capacity_providers[request["name"]].type = request["type"]
                answer = {}
            elif path == "/_watchdog/launch-time" and method == "POST":
                # EC2 stamps LaunchTime with the creation time; a test of an instance launched
                # long ago moves it back.
                instance = ec2_backends[ACCOUNT][region].get_instance(request["instanceId"])
                instance.launch_time = instance.launch_time - datetime.timedelta(seconds=int(request["secondsAgo"]))
                answer = {"launchTime": instance.launch_time.isoformat()}
            elif path == "/_watchdog/sns" and method == "GET":
                answer = sent_notifications(region)
            else:
                return respond(start_response, "404 Not Found", {"error": f"no {method} {path}"})
        except KeyError as e:
            return respond(start_response, "404 Not Found", {"error": f"unknown {e}"})
        return respond(start_response, "200 OK", answer)


class Transactions:
    """TransactWriteItems made idempotent by its ClientRequestToken, as DynamoDB makes it and moto
    does not: "multiple identical calls have the same effect as one single call"; the same token
    with other parameters is refused (IdempotentParameterMismatchException); a token holds for 10
    minutes after its first request completes (API reference, TransactWriteItems,
    ClientRequestToken: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
    The SDK fills the token in and keeps it across retries; a retry answered from the token is
    the same operation, not counted again. Without this, a retry after an attempt
    timeout (moto takes seconds for 100 items under load) met the items the first attempt wrote,
    was cancelled, and the ledger planned again what had in fact been written."""

    WINDOW = 600

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}  # token -> (request without the token, lock, answer or None, completed at)

    @staticmethod
    def token(called, body):
        if called != "dynamodb:TransactWriteItems":
            return None
        try:
            return json.loads(body or b"{}").get("ClientRequestToken")
        except ValueError:
            return None

    def once(self, token, body, call, start_response):
        request = json.loads(body)
        request.pop("ClientRequestToken", None)
        with self.lock:
            entry = self.seen.get(token)
            if entry is None or (entry[2] is not None and time.time() - entry[3] > self.WINDOW):
                entry = (request, threading.Lock(), None, float("inf"))
                self.seen[token] = entry
        if entry[0] != request:
            error = {"__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                     "message": "the same client token with other parameters"}
            return respond(start_response, "400 Bad Request", error)
        # The first attempt may still be running: a retry waits for its answer.
        with entry[1]:
            with self.lock:
                answer = self.seen[token][2]
            if answer is None:
                captured = {}

                def capture(status, headers, exc_info=None):
                    captured["status"], captured["headers"] = status, headers
                    return lambda data: None

                chunks = b"".join(call(capture))
                answer = (captured["status"], captured["headers"], chunks)
                with self.lock:
                    # Only a transaction that was carried out is answered again; a refused one
                    # (cancelled, throttled) may be tried again for real.
                    done = answer if answer[0].startswith("200") else None
                    self.seen[token] = (request, entry[1], done, time.time())
        start_response(answer[0], answer[1])
        return [answer[2]]


def killed(pid, start_response):
    """SIGKILL to `pid`, then waits (bounded) until the kernel has taken it down: gone, or a
    zombie its parent has not reaped yet. The caller gets a 500 it can no longer read."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    break
        except FileNotFoundError:
            break
        time.sleep(0.01)
    if start_response:
        return respond(start_response, "500 Internal Server Error", {"error": "the caller was killed"})
    return None


def denied(start_response):
    """STS's answer (query protocol, XML) when the role does not trust the caller."""
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        "<Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole</Message>"
        "</Error><RequestId>denied</RequestId></ErrorResponse>"
    ).encode()
    start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


def respond(start_response, status, answer):
    body = json.dumps(answer).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def operation(environ, body):
    """`service:Operation` from the signature's scope and the target header, path or form."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = "unknown"
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = scope[3]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    path = environ.get("PATH_INFO", "")
    if "/operation/" in path:  # Smithy RPC v2 (CBOR)
        return f"{service}:{path.rsplit('/', 1)[-1]}"
    action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return f"{service}:{action[0] if action else environ['REQUEST_METHOD'] + ' ' + path}"


def set_container_instance(region, request):
    account = request["containerInstanceArn"].split(":")[4] or ACCOUNT
    backend = ecs_models.ecs_backends[account][region]
    cluster = request["cluster"].rsplit("/", 1)[-1]
    instance_id = request["containerInstanceArn"].rsplit("/", 1)[-1]
    instance = backend.container_instances[cluster][instance_id]
    if "agentConnected" in request:
        instance.agent_connected = bool(request["agentConnected"])
    if "status" in request:
        instance.status = request["status"]
    if "ec2InstanceId" in request:
        instance.ec2_instance_id = request["ec2InstanceId"]
    if "capacityProviderName" in request:
        instance.capacity_provider_name = request["capacityProviderName"]
    if "health" in request:
        # moto serializes the attribute named after the shape's member.
        instance.health_status = request["health"]
    # The version counts the changes ECS sends events for: the agent and the status.
    if "agentConnected" in request or "status" in request:
        instance.version += 1
    return {"version": instance.version, "status": instance.status, "agentConnected": instance.agent_connected}


def sent_notifications(region):
    backend = sns_backends[ACCOUNT][region]
    return [
        {
            "topicArn": topic.arn,
            "messageId": message_id,
            "message": message,
            "subject": subject,
            "messageAttributes": attributes or {},
        }
        for topic in backend.topics.values()
        for (message_id, message, subject, attributes, _group) in topic.sent_notifications
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    app = Watchdog(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True)

    def exit_when_stdin_closes():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    print(f"READY {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
