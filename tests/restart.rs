//! The agent restart end to end (restart-agent, restart-then-drain): the monitor sends one SSM
//! Run Command per incident, the sweep's first look after the wait follows up; on the emulator,
//! which keeps the commands sent (ListCommands), through the real SDK.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_ssm::operation::send_command::SendCommandInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use ecs_watchdog::Monitor;
use ecs_watchdog::aws::{DynamoLedger, OnFirstUse, RESTART_COMMAND, RestartAgent};
use ecs_watchdog::pipeline::restart_claim_id;
use ecs_watchdog::ports::Ledger;
use serde_json::Value;
use watchdog_tests::bed::{Bed, NO_GRACE, finding, no_daemons, record};
use watchdog_tests::clock::TestClock;
use watchdog_tests::fleet::Node;
use watchdog_tests::in_process::{self, config, messages};
use watchdog_tests::samples::agent_event;

const START: u64 = 1_800_000_000;

/// The stack's restart document, as the template names it (the test bed created it).
const DOCUMENT: &str = "ecs-watchdog-reader-restart-agent";

/// The commands sent to SSM, as (document, instances): the requests as the emulator received
/// them, none with a parameter (the document takes none). moto keeps each command
/// (ListCommands, checked to agree on the document), but adds every EC2 instance to one sent
/// without targets, so its instance list is not what was asked.
async fn commands(bed: &Bed) -> Vec<(String, Vec<String>)> {
    let ssm = aws_sdk_ssm::Client::new(&bed.emulator.sdk);
    let listed = ssm.list_commands().send().await.expect("ListCommands");
    let sent = bed.emulator.requests("ssm:SendCommand").await;
    assert_eq!(listed.commands().len(), sent.len(), "moto kept each command");
    assert!(listed.commands().iter().all(|c| c.document_name() == Some(DOCUMENT)));
    assert!(
        sent.iter().all(|r| r.get("Parameters").is_none_or(Value::is_null)),
        "no parameter: {sent:?}"
    );
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    sent.iter()
        .map(|r| {
            (
                r["DocumentName"].as_str().unwrap_or_default().to_owned(),
                strings(&r["InstanceIds"]),
            )
        })
        .collect()
}

/// The bed with `action` (and `extra` parameters), its monitor and a clock both it and the
/// sweep read.
async fn stand(action: &str, extra: &[(&str, &str)]) -> (Bed, Monitor, TestClock) {
    let mut parameters = NO_GRACE.to_vec();
    parameters.push(("RemediationAction", action));
    parameters.extend_from_slice(extra);
    let bed = Bed::new(&parameters, 2).await;
    let clock = TestClock::at(START);
    let set = clock.clone();
    let env = bed.pipeline.function_env(&bed.emulator);
    let monitor = in_process::monitor(&bed.emulator, config(&env), move |io| io.clock = Box::new(set));
    (bed, monitor, clock)
}

/// The alerted instance of the last agent-disconnected alert.
async fn alerted(bed: &Bed) -> Value {
    let alerts = bed.published("agent-disconnected").await;
    let last = alerts.last().expect("an agent-disconnected alert");
    finding(last)["instances"][0].clone()
}

fn restart_of(node: &Node) -> (String, Vec<String>) {
    (DOCUMENT.to_owned(), vec![node.ec2_instance_id.clone()])
}

/// The incident's stored finding, as the ledger keeps it.
async fn stored_actions(bed: &Bed, node: &Node) -> Vec<(String, String, String)> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&bed.emulator.sdk);
    let items = dynamodb
        .scan()
        .table_name(bed.pipeline.incident_table())
        .send()
        .await
        .expect("Scan");
    let mut actions = Vec::new();
    for item in items.items() {
        let Some(finding) = item.get("finding").and_then(|f| f.as_s().ok()) else {
            continue;
        };
        let finding: Value = serde_json::from_str(finding).expect("a finding");
        if finding["ec2InstanceId"] != node.ec2_instance_id.as_str() {
            continue;
        }
        for action in finding["remediationActions"].as_array().into_iter().flatten() {
            let text = |k: &str| action[k].as_str().unwrap_or_default().to_owned();
            actions.push((text("step"), text("outcome"), text("detail")));
        }
    }
    actions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_agent_disconnects_then_it_is_restarted_once_and_resolves_recovered_after_restart() {
    let (bed, monitor, clock) = stand("restart-agent", &[]).await;
    let node = &bed.nodes[0];
    let event = bed.disconnect(node).await;

    // The first look restarts the agent: the command is the one the document runs.
    let report = monitor.process(&messages(std::slice::from_ref(&event))).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(commands(&bed).await, [restart_of(node)]);
    let instance = alerted(&bed).await;
    assert_eq!(instance["remediationActions"][0]["step"], "restart");
    assert_eq!(instance["remediationActions"][0]["outcome"], "done");
    assert_eq!(
        instance["remediationActions"][0]["at"], START,
        "when: the sweep waits from it"
    );
    let remediation = instance["remediation"].as_str().unwrap();
    assert!(
        remediation.contains(&format!("SSM document {DOCUMENT}, command ")),
        "the document and the command id: {remediation}"
    );
    assert_eq!(bed.fleet.container_instance(node).await.0, "ACTIVE", "not drained");

    // The same event again (redelivered) and a later one of the same incident: no second command.
    monitor.process(&messages(std::slice::from_ref(&event))).await;
    clock.advance_minutes(1);
    monitor.process(&messages(&[bed.disconnect(node).await])).await;
    assert_eq!(commands(&bed).await.len(), 1);
    assert!(
        stored_actions(&bed, node)
            .await
            .iter()
            .any(|(s, o, d)| s == "restart" && o == "done" && d.contains(", command ")),
        "the incident keeps the first command's record"
    );

    // The agent reconnects; the sweep's look after the wait closes it, recovered after restart.
    bed.set_agent(node, true).await;
    clock.advance_minutes(5);
    let sweep = bed.sweep(&clock, no_daemons());
    sweep.run().await;
    let resolved: Vec<Value> = bed
        .published("agent-disconnected")
        .await
        .iter()
        .filter(|p| p.attributes["status"] == "resolved")
        .map(finding)
        .collect();
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    let resolution = resolved[0]["instances"][0]["resolution"].as_str().unwrap();
    assert!(resolution.starts_with("recovered after restart"), "{resolution}");
    assert_eq!(commands(&bed).await.len(), 1, "the sweep sends none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_restart_does_not_bring_the_agent_back_then_the_look_after_the_wait_drains_it() {
    let (bed, monitor, clock) = stand("restart-then-drain", &[("RestartWaitMinutes", "5")]).await;
    let node = &bed.nodes[0];
    monitor.process(&messages(&[bed.disconnect(node).await])).await;
    assert_eq!(commands(&bed).await, [restart_of(node)]);
    assert_eq!(
        bed.fleet.container_instance(node).await.0,
        "ACTIVE",
        "restarted, not drained"
    );

    // Before the wait: nothing more.
    let sweep = bed.sweep(&clock, no_daemons());
    clock.advance_minutes(4);
    sweep.run().await;
    assert_eq!(bed.fleet.container_instance(node).await.0, "ACTIVE", "not yet");

    // After it, still disconnected: drained, and the incident says the restart did not help.
    clock.advance_minutes(1);
    sweep.run().await;
    assert_eq!(bed.fleet.container_instance(node).await.0, "DRAINING");
    let actions = stored_actions(&bed, node).await;
    assert!(
        actions
            .iter()
            .any(|(s, o, d)| s == "restart" && o == "failed" && d.contains("did not help")),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|(s, o, _)| s == "drain" && o == "done"),
        "{actions:?}"
    );
    assert_eq!(bed.fleet.container_instance(&bed.nodes[1]).await.0, "ACTIVE");
    assert_eq!(commands(&bed).await.len(), 1, "one restart in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_restart_agent_alone_does_not_help_then_it_stays_alerted_and_undrained() {
    let (bed, monitor, clock) = stand("restart-agent", &[]).await;
    let node = &bed.nodes[0];
    monitor.process(&messages(&[bed.disconnect(node).await])).await;
    clock.advance_minutes(5);
    let sweep = bed.sweep(&clock, no_daemons());
    sweep.run().await;
    sweep.run().await;
    assert_eq!(bed.fleet.container_instance(node).await.0, "ACTIVE");
    let actions = stored_actions(&bed, node).await;
    let said: Vec<_> = actions.iter().filter(|(_, o, _)| o == "failed").collect();
    assert_eq!(said.len(), 1, "said once: {actions:?}");
    assert!(said[0].2.contains("did not help"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_it_is_a_dry_run_or_an_ecs_managed_instance_then_no_command_is_sent() {
    let (bed, monitor, _) = stand("restart-then-drain", &[("RemediationDryRun", "true")]).await;
    monitor.process(&messages(&[bed.disconnect(&bed.nodes[0]).await])).await;
    assert!(commands(&bed).await.is_empty());
    let remediation = alerted(&bed).await["remediation"].as_str().unwrap().to_owned();
    assert!(remediation.contains("would restart the agent"), "{remediation}");

    let (bed, monitor, _) = stand("restart-agent", &[]).await;
    let node = &bed.nodes[0];
    let provider = ("managed-instances", "MANAGED_INSTANCES");
    bed.emulator
        .set_capacity_provider(&bed.cluster, &node.container_instance_arn, provider.0, provider.1)
        .await;
    monitor.process(&messages(&[bed.disconnect(node).await])).await;
    assert!(commands(&bed).await.is_empty());
    let instance = alerted(&bed).await;
    assert_eq!(instance["remediationActions"][0]["outcome"], "skipped");
}

/// The document the stack creates (and the test bed created from the template) runs the
/// restart and nothing else: one shell step, no parameter a caller could fill with another
/// command; the spoke stacks create the same document under the same name, which is the one
/// the functions are given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_stack_restarts_agents_then_its_document_runs_only_the_restart() {
    let (bed, _, _) = stand("restart-agent", &[]).await;
    let env = bed.pipeline.function_env(&bed.emulator);
    let named = env
        .iter()
        .find(|(k, _)| k == "RESTART_DOCUMENT_NAME")
        .map(|(_, v)| v.as_str());
    assert_eq!(named, Some(DOCUMENT));
    let ssm = aws_sdk_ssm::Client::new(&bed.emulator.sdk);
    let document = ssm.get_document().name(DOCUMENT).send().await.expect("GetDocument");
    assert_eq!(document.document_type().map(|t| t.as_str()), Some("Command"));
    let content: Value = serde_json::from_str(document.content().expect("content")).expect("JSON");
    assert_eq!(content["schemaVersion"], "2.2");
    assert!(content.get("parameters").is_none(), "no parameter: {content}");
    let steps = content["mainSteps"].as_array().expect("mainSteps");
    assert_eq!(steps.len(), 1, "{content}");
    assert_eq!(steps[0]["action"], "aws:runShellScript");
    assert_eq!(steps[0]["inputs"]["runCommand"], serde_json::json!([RESTART_COMMAND]));

    let hub = &watchdog_tests::template::template()["Resources"]["RestartAgentDocument"]["Properties"];
    let spoke = &watchdog_tests::template::spoke()["Resources"]["RestartAgentDocument"]["Properties"];
    assert_eq!(hub["Content"], spoke["Content"], "the spokes run the same");
    assert_eq!(hub["Name"], spoke["Name"], "under the same name");
}

/// The nodes by container instance ARN, the later one first: the order in which the guard's
/// ranking alone (ARN order over the disconnected) would let the second through.
fn later_first(bed: &Bed) -> (&Node, &Node) {
    let mut nodes: Vec<&Node> = bed.nodes.iter().collect();
    nodes.sort_by(|a, b| b.container_instance_arn.cmp(&a.container_instance_arn));
    (nodes[0], nodes[1])
}

/// `MAX_REMEDIATION_PERCENT` caps restarts as it caps drains: a restart in flight (within
/// `RESTART_WAIT_MINUTES`, its agent still away) holds its slot as a DRAINING instance does, so
/// in a cluster of two (10 %: one at a time) a second disconnect is held back; once the first
/// restart is over (the sweep followed it up), the second is restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_restart_is_in_flight_then_the_guard_holds_the_next_one_back() {
    let (bed, monitor, clock) = stand("restart-agent", &[("MaxRemediationPercent", "10")]).await;
    let (first, second) = later_first(&bed);
    monitor.process(&messages(&[bed.disconnect(first).await])).await;
    assert_eq!(commands(&bed).await, [restart_of(first)]);

    clock.advance_minutes(1);
    monitor.process(&messages(&[bed.disconnect(second).await])).await;
    assert_eq!(
        commands(&bed).await.len(),
        1,
        "held back while the first restart is in flight"
    );
    let actions = stored_actions(&bed, second).await;
    assert!(
        actions.iter().any(|(s, o, d)| s == "guard"
            && o == "held-back"
            && d.contains("1 of 2 instances DRAINING or being restarted")),
        "{actions:?}"
    );

    // The first restart did not help and was followed up: its slot is free again.
    clock.advance_minutes(5);
    bed.sweep(&clock, no_daemons()).run().await;
    // The second agent's next disconnect, as ECS tells it (the version it has now).
    bed.set_agent(second, true).await;
    bed.set_agent(second, false).await;
    let (_, version) = bed.fleet.container_instance(second).await;
    monitor
        .process(&messages(&[record(&agent_event(second, version, false))]))
        .await;
    let actions = stored_actions(&bed, second).await;
    assert_eq!(
        commands(&bed).await,
        [restart_of(first), restart_of(second)],
        "{actions:?}"
    );
}

/// Restart once is a conditional write, not only a read: a run that read no restart, but finds
/// the instance's restart claimed by another run (which has not written its incident yet),
/// sends none and says so; its claim holds for the restart's wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_another_run_claimed_the_restart_then_no_second_command_is_sent() {
    let (bed, monitor, clock) = stand("restart-agent", &[]).await;
    let node = &bed.nodes[0];
    let dynamodb = aws_sdk_dynamodb::Client::new(&bed.emulator.sdk);
    let ledger = DynamoLedger::new(OnFirstUse::ready(dynamodb), bed.pipeline.incident_table());
    let id = restart_claim_id(&bed.cluster, &node.container_instance_arn);
    // The other run, between this run's read of the ledger and its own claim.
    assert!(ledger.claim(&id, START, START + 300).await.expect("claimed"));
    assert!(!ledger.claim(&id, START + 1, START + 301).await.expect("asked"), "held");

    monitor.process(&messages(&[bed.disconnect(node).await])).await;
    assert!(commands(&bed).await.is_empty(), "the other run sends it");
    let instance = alerted(&bed).await;
    assert_eq!(
        instance["remediationActions"][0]["outcome"], "already-done",
        "{instance}"
    );

    // Past the claim, a new incident's restart is this run's to send.
    clock.advance_minutes(6);
    assert!(
        ledger
            .claim(&id, START + 360, START + 660)
            .await
            .expect("claimed again")
    );
}

/// Whether an instance is an ECS Managed Instance is read from its capacity provider: one ECS
/// does not answer for (here: not found) may be one, so it is neither restarted nor drained, and
/// the alert says why (fail closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_capacity_provider_is_unknown_then_the_instance_is_left_alone() {
    for action in ["restart-agent", "drain"] {
        let (bed, monitor, _) = stand(action, &[]).await;
        let node = &bed.nodes[0];
        bed.emulator
            .set_capacity_provider_name(&bed.cluster, &node.container_instance_arn, "deleted-provider")
            .await;
        monitor.process(&messages(&[bed.disconnect(node).await])).await;
        assert!(commands(&bed).await.is_empty(), "{action}");
        assert_eq!(bed.fleet.container_instance(node).await.0, "ACTIVE", "{action}");
        let instance = alerted(&bed).await;
        let said = &instance["remediationActions"][0];
        assert_eq!(said["outcome"], "not-attempted", "{action}: {instance}");
        let detail = said["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("may be an ECS Managed Instance"), "{action}: {detail}");
        assert!(detail.contains("deleted-provider"), "{action}: {detail}");
    }
}

/// Refuses the first `SendCommand` before it is sent, as SSM would refuse a throttled call (the
/// emulator takes every command), and lets the later ones through.
#[derive(Debug, Default)]
struct FirstSendRefused(Arc<AtomicBool>);

impl Intercept for FirstSendRefused {
    fn name(&self) -> &'static str {
        "FirstSendRefused"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match context.input().downcast_ref::<SendCommandInput>() {
            Some(_) if !self.0.swap(true, Ordering::SeqCst) => {
                Err("injected: ThrottlingException: Rate exceeded".into())
            }
            _ => Ok(()),
        }
    }
}

/// Loses the answer to the first call once SSM has it (a timeout after the request went out),
/// and lets the later ones through. The restart's SSM client makes no other call.
#[derive(Debug, Default)]
struct FirstAnswerLost(Arc<AtomicBool>);

impl Intercept for FirstAnswerLost {
    fn name(&self) -> &'static str {
        "FirstAnswerLost"
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match self.0.swap(true, Ordering::SeqCst) {
            false => Err("injected: the answer was lost".into()),
            true => Ok(()),
        }
    }
}

/// A restart-agent stack whose restart goes through an SSM client with `interceptor` (the faults
/// the emulator cannot make), on the test clock.
async fn stand_with_ssm(interceptor: impl Intercept + 'static) -> (Bed, Monitor, TestClock) {
    let mut parameters = NO_GRACE.to_vec();
    parameters.push(("RemediationAction", "restart-agent"));
    let bed = Bed::new(&parameters, 2).await;
    let clock = TestClock::at(START);
    let set = clock.clone();
    let settings = config(&bed.pipeline.function_env(&bed.emulator));
    let scope = settings.remediation.scope.clone();
    let ssm = aws_sdk_ssm::config::Builder::from(&bed.emulator.sdk).interceptor(interceptor);
    let ssm = OnFirstUse::ready(aws_sdk_ssm::Client::from_conf(ssm.build()));
    let monitor = in_process::monitor(&bed.emulator, settings, move |io| {
        io.clock = Box::new(set);
        io.steps[0] = Box::new(RestartAgent::new(ssm, DOCUMENT.to_owned(), scope));
    });
    (bed, monitor, clock)
}

/// A minute later the agent reconnects and drops again; the monitor gets that event.
async fn disconnects_again(bed: &Bed, monitor: &Monitor, clock: &TestClock, node: &Node) {
    clock.advance_minutes(1);
    bed.set_agent(node, true).await;
    bed.set_agent(node, false).await;
    let (_, version) = bed.fleet.container_instance(node).await;
    monitor
        .process(&messages(&[record(&agent_event(node, version, false))]))
        .await;
}

/// The restart claims the ledger holds, by id.
async fn claims(bed: &Bed) -> Vec<String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&bed.emulator.sdk);
    let items = dynamodb
        .scan()
        .table_name(bed.pipeline.incident_table())
        .send()
        .await
        .expect("Scan");
    let ids = items.items().iter().filter_map(|i| i.get("id")?.as_s().ok());
    ids.filter(|id| id.starts_with("restart-claim|")).cloned().collect()
}

/// A restart whose command was not sent gives its claim back: the instance's next event, well
/// within the claim's 15 minutes, restarts the agent (the claim used to hold it back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_restart_command_fails_then_its_claim_is_given_back_and_the_next_event_restarts() {
    let (bed, monitor, clock) = stand_with_ssm(FirstSendRefused::default()).await;
    let node = &bed.nodes[0];

    monitor.process(&messages(&[bed.disconnect(node).await])).await;
    assert!(commands(&bed).await.is_empty(), "refused");
    let said = &alerted(&bed).await["remediationActions"][0];
    assert_eq!(
        (&said["step"], &said["outcome"]),
        (&"restart".into(), &"failed".into()),
        "{said}"
    );
    assert_eq!(claims(&bed).await, Vec::<String>::new(), "the claim was given back");

    disconnects_again(&bed, &monitor, &clock, node).await;
    assert_eq!(commands(&bed).await, [restart_of(node)]);
    let id = restart_claim_id(&bed.cluster, &node.container_instance_arn);
    assert_eq!(claims(&bed).await, [id], "the restart sent holds its claim");
}

/// Giving a claim back deletes only the claim it took (named by its `claimed_until`), whatever
/// the order of the runs: never a later run's claim, taken once this one ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_claim_is_given_back_then_no_later_claim_is_deleted() {
    let (bed, _, _) = stand("restart-agent", &[]).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&bed.emulator.sdk);
    let ledger = DynamoLedger::new(OnFirstUse::ready(dynamodb), bed.pipeline.incident_table());
    const HOLD: u64 = 900;
    // Run A claims at START; run B tries at `b_at`; A gives back before or after B's try.
    for (case, b_at) in [START + 1, START + HOLD - 1, START + HOLD, START + 2 * HOLD]
        .into_iter()
        .enumerate()
    {
        for a_first in [true, false] {
            let id = format!("restart-claim|case-{case}-{a_first}");
            assert!(ledger.claim(&id, START, START + HOLD).await.expect("A claims"));
            let (a_released, b_claimed) = match a_first {
                true => {
                    let released = ledger.release(&id, START + HOLD).await.expect("A gives back");
                    (released, ledger.claim(&id, b_at, b_at + HOLD).await.expect("B asks"))
                }
                false => {
                    let claimed = ledger.claim(&id, b_at, b_at + HOLD).await.expect("B asks");
                    (ledger.release(&id, START + HOLD).await.expect("A gives back"), claimed)
                }
            };
            let a_ended = b_at >= START + HOLD;
            assert_eq!(b_claimed, a_first || a_ended, "case {case} {a_first}: B claims");
            assert_eq!(
                a_released,
                a_first || !a_ended,
                "case {case} {a_first}: A's still there"
            );
            // B's claim, when it took one, holds: a third run cannot claim before it ends.
            let third = ledger.claim(&id, b_at + HOLD - 1, b_at + 2 * HOLD).await.expect("asks");
            assert_eq!(third, !b_claimed, "case {case} {a_first}: B's claim kept");
            assert!(
                !ledger.release(&id, START + HOLD).await.expect("again"),
                "given back once"
            );
        }
    }
    // Nothing to give back: nothing written.
    assert!(!ledger.release("restart-claim|never", START).await.expect("asked"));
    assert!(!claims(&bed).await.iter().any(|id| id.ends_with("never")));
}

/// A `SendCommand` whose answer was lost may have gone out (SSM ran it here): its claim holds, so
/// the next event within the claim's time does not restart the agent a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_answer_to_the_restart_is_lost_then_its_claim_holds_and_the_next_event_does_not_restart_again() {
    let (bed, monitor, clock) = stand_with_ssm(FirstAnswerLost::default()).await;
    let node = &bed.nodes[0];
    let id = restart_claim_id(&bed.cluster, &node.container_instance_arn);

    monitor.process(&messages(&[bed.disconnect(node).await])).await;
    assert_eq!(commands(&bed).await, [restart_of(node)], "SSM got the command");
    let said = &alerted(&bed).await["remediationActions"][0];
    assert_eq!(
        (&said["step"], &said["outcome"]),
        (&"restart".into(), &"failed".into()),
        "{said}"
    );
    assert_eq!(claims(&bed).await, std::slice::from_ref(&id), "the claim holds");

    disconnects_again(&bed, &monitor, &clock, node).await;
    assert_eq!(commands(&bed).await, [restart_of(node)], "no second restart");
    assert_eq!(claims(&bed).await, [id]);
}
