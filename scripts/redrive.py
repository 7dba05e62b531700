"""Moves messages from one of the stack's dead-letter queues back to the checks queue.

    make redrive STACK=<stack name> FROM=rules|checks
    python scripts/redrive.py --stack NAME --from rules|checks
    python scripts/redrive.py --source-url URL --target-url URL [--role-arn ARN]

It works as the stack's redrive role (output RedriveRoleArn; --role-arn for another): the checks
queue denies SendMessage to every principal but the stack's rules and that role, so your own
credentials need only sts:AssumeRole on it (and cloudformation:DescribeStacks with --stack).

Why not `aws sqs start-message-move-task`: it moves only out of a queue that is another SQS
queue's dead-letter queue (the checks queue's DeadLetterQueue). The rules' dead-letter queue
is EventBridge's, so for it SQS refuses; this script works for both. It receives, sends each
body to the checks queue, and deletes a message only once its copy is sent: a failure midway
leaves it where it was (at worst sent twice, which the monitor's re-check makes harmless).

The checks queue holds each message for its grace period, as it does for new events. Messages
the monitor rejected as unusable (attribute watchdog-reject-reason) are rejected again: look
at them first. Those with the reason place-unreachable were parked because a member account's
role could not be assumed: redrive them once the role is fixed.
"""

import argparse
import os
import sys

import boto3

OUTPUTS = {"rules": "RulesDeadLetterQueueUrl", "checks": "DeadLetterQueueUrl"}
# SendMessageBatch takes at most ten entries and 256 KiB of message bodies in all: "The maximum
# total payload size (the sum of all individual message lengths) is also 256 KiB"
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html).
# Ten dead letters of 100 KB each are one receive and must be three sends.
BATCH_ENTRIES = 10
BATCH_BYTES = 262_144


def session():
    # boto3 reads AWS_DEFAULT_REGION and the profile, not AWS_REGION, which the SDKs for Rust
    # and the CLI v2 set; honour both.
    return boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)


def stack_queues(stack, source):
    outputs = session().client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    by_key = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    return by_key[OUTPUTS[source]], by_key["ChecksQueueUrl"], by_key["RedriveRoleArn"]


def as_role(role_arn):
    """A session with the credentials of `role_arn` (one hour)."""
    base = session()
    credentials = base.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="ecs-watchdog-redrive")[
        "Credentials"
    ]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=base.region_name,
    )


def batches(messages, entries=BATCH_ENTRIES, limit=BATCH_BYTES):
    """Consecutive runs of `messages` within both limits of one SendMessageBatch (a body over
    the byte limit alone goes alone, and SQS says why it refuses it)."""
    run, size = [], 0
    for message in messages:
        length = len(message["Body"].encode("utf-8"))
        if run and (len(run) == entries or size + length > limit):
            yield run
            run, size = [], 0
        run.append(message)
        size += length
    if run:
        yield run


def move(sqs, source_url, target_url, messages):
    """Sends one batch to the target and deletes from the source what the target took; returns
    how many moved and whether every one did."""
    sent = sqs.send_message_batch(
        QueueUrl=target_url,
        Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(messages)],
    )
    for failure in sent.get("Failed", []):
        print(f"not moved: {failure.get('Code')}: {failure.get('Message')}", file=sys.stderr)
    done = [messages[int(s["Id"])] for s in sent.get("Successful", [])]
    if done:
        sqs.delete_message_batch(
            QueueUrl=source_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
        )
    return len(done), not sent.get("Failed")


def redrive(sqs, source_url, target_url):
    moved = 0
    empty_receives = 0
    # Two empty answers in a row: SQS samples servers, so one empty answer can still leave some.
    while empty_receives < 2:
        messages = sqs.receive_message(
            QueueUrl=source_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            empty_receives += 1
            continue
        empty_receives = 0
        for batch in batches(messages):
            count, complete = move(sqs, source_url, target_url, batch)
            moved += count
            if not complete:
                return moved
    return moved


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack")
    parser.add_argument("--from", dest="source", choices=sorted(OUTPUTS), default="rules")
    parser.add_argument("--source-url")
    parser.add_argument("--target-url")
    parser.add_argument("--role-arn", help="the role to work as (default with --stack: its RedriveRoleArn)")
    args = parser.parse_args()
    role_arn = args.role_arn
    if args.stack:
        source_url, target_url, stack_role = stack_queues(args.stack, args.source)
        role_arn = role_arn or stack_role
    elif args.source_url and args.target_url:
        source_url, target_url = args.source_url, args.target_url
    else:
        parser.error("give --stack, or --source-url and --target-url")
    sqs = (as_role(role_arn) if role_arn else session()).client("sqs")
    moved = redrive(sqs, source_url, target_url)
    print(f"moved {moved} messages from {source_url} to {target_url}")


if __name__ == "__main__":
    main()
