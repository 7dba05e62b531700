//! Contract tests between `template.yaml` and the code: the function's environment, the
//! alarms, the queue and event source settings, and the rule patterns against the sample
//! events. A change on one side without the other fails here.

use std::cell::RefCell;
use std::collections::BTreeSet;

use ecs_watchdog::Config;
use ecs_watchdog::event::{self, Parsed};
use serde_json::Value;
use watchdog_tests::emulator::Emulator;
use watchdog_tests::pipeline::Pipeline;
use watchdog_tests::template::{Stack, properties, template};
use watchdog_tests::{repo_root, samples};

/// The variables `Config` reads, found by recording its look-ups in both filter modes.
fn variables_the_function_reads() -> BTreeSet<String> {
    let read = RefCell::new(BTreeSet::new());
    for all_clusters in ["true", "false"] {
        let env = [
            ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:alerts"),
            (
                "DEAD_LETTER_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
            ),
            ("MONITOR_ALL_CLUSTERS", all_clusters),
            ("MONITORING_TAG_VALUE", "enabled"),
        ];
        Config::from_lookup(|name| {
            read.borrow_mut().insert(name.to_owned());
            env.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        })
        .expect("a valid configuration");
    }
    let mut read = read.into_inner();
    // Lambda itself sets it; the template must not.
    read.remove("AWS_LAMBDA_FUNCTION_NAME");
    read.remove("AWS_REGION");
    read
}

fn environment(function: &str) -> BTreeSet<String> {
    properties(function)["Environment"]["Variables"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// Both functions read one `Config`: each sets only what it reads, and together they set all
/// of it (the monitor has no use for the sweep's times, the sweep none for remediation).
#[test]
fn when_the_template_sets_the_environment_then_it_is_exactly_what_the_functions_read() {
    let read = variables_the_function_reads();
    let (monitor, sweep) = (environment("MonitorFunction"), environment("SweepFunction"));
    assert!(monitor.is_subset(&read), "{:?}", monitor.difference(&read));
    assert!(sweep.is_subset(&read), "{:?}", sweep.difference(&read));
    assert_eq!(&monitor | &sweep, read);
    for needed in [
        "INCIDENT_TABLE_NAME",
        "GRACE_PERIOD_SECONDS",
        "STUCK_AFTER_MINUTES",
        "ALERT_TOPIC_ARN",
    ] {
        assert!(sweep.contains(needed), "the sweep needs {needed}");
    }
    // Held incidents are told by the sweep when no later event comes: no sweep, no grouping.
    let group_interval = |parameters: &[(&str, &str)]| {
        let value = &properties("MonitorFunction")["Environment"]["Variables"]["GROUP_INTERVAL_MINUTES"];
        Stack::new(parameters).resolve(value)
    };
    assert_eq!(group_interval(&[]), "5");
    assert_eq!(group_interval(&[("SweepIntervalMinutes", "0")]), "0");
}

#[test]
fn when_the_queue_feeds_the_function_then_its_settings_keep_messages_safe() {
    let function = properties("MonitorFunction");
    let queue = properties("ChecksQueue");
    let timeout = function["Timeout"].as_u64().unwrap();
    let visibility = queue["VisibilityTimeout"].as_u64().unwrap();
    assert!(
        visibility >= 6 * timeout,
        "visibility timeout {visibility} s is below six times the function timeout {timeout} s"
    );
    assert_eq!(queue["DelaySeconds"], serde_json::json!({"Ref": "GracePeriodSeconds"}));
    assert_eq!(template()["Parameters"]["GracePeriodSeconds"]["MaxValue"], 900);
    assert_eq!(queue["RedrivePolicy"]["maxReceiveCount"], 5);
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        serde_json::json!({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
    );

    let source = &function["Events"]["Checks"]["Properties"];
    assert_eq!(
        source["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );
    assert!(
        source["ScalingConfig"]["MaximumConcurrency"]
            .as_u64()
            .is_some_and(|n| n >= 2)
    );
    assert!(
        source["BatchSize"].as_u64().is_some_and(|n| n >= 100),
        "a storm must come as a few large batches"
    );
    assert!(
        source["MaximumBatchingWindowInSeconds"].as_u64().is_some_and(|n| n > 0),
        "needed for batches over 10"
    );
    assert!(
        function.get("ReservedConcurrentExecutions").is_none(),
        "concurrency is capped on the event source"
    );

    for rule in watchdog_tests::template::resources_of_type("AWS::Events::Rule") {
        let target = &properties(rule)["Targets"][0];
        assert_eq!(
            target["Arn"],
            serde_json::json!({"Fn::GetAtt": ["ChecksQueue", "Arn"]}),
            "{rule}"
        );
        assert!(
            target["DeadLetterConfig"]["Arn"].is_object(),
            "{rule} has a dead-letter queue"
        );
        assert!(
            target["RetryPolicy"]["MaximumEventAgeInSeconds"]
                .as_u64()
                .is_some_and(|s| s >= 3600),
            "{rule} keeps events for hours"
        );
    }
    let statements = properties("ChecksQueuePolicy")["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let rules = statements.iter().find(|s| s["Sid"] == "OnlyThisStacksRules").unwrap();
    let allowed = &rules["Condition"]["ArnEquals"]["aws:SourceArn"];
    let rules = watchdog_tests::template::resources_of_type("AWS::Events::Rule");
    assert_eq!(
        allowed.as_array().map(Vec::len),
        Some(rules.len()),
        "only the stack's rules may send, each of them"
    );
}

#[test]
fn when_monitoring_is_disabled_then_the_rules_are_disabled() {
    for (enabled, state) in [("true", "ENABLED"), ("false", "DISABLED")] {
        let stack = Stack::new(&[("EnableMonitoring", enabled)]);
        for rule in [
            "AgentDisconnectedRule",
            "DaemonTaskStoppedRule",
            "DaemonStartImpairedRule",
            "DaemonDeploymentRule",
            "InstanceImpairedRule",
        ] {
            assert_eq!(
                stack.resolve(&properties(rule)["State"]),
                state,
                "{rule} with EnableMonitoring={enabled}"
            );
        }
    }
}

/// Every sample in `events/` goes through the template's rules in the emulator: the rules must
/// let through exactly the events the monitor checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_sample_events_meet_the_rules_then_only_those_the_monitor_checks_are_queued() {
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("sqs-"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let event = samples::load(&name);
        let checked = matches!(event::parse(&event.to_string()), Parsed::Signal(_));
        pipeline.put_events(std::slice::from_ref(&event)).await;
        let queued = pipeline.depth(&pipeline.queue_url).await;
        assert_eq!(
            queued == 1,
            checked,
            "{name}: queued {queued}, the monitor checks it: {checked}"
        );
        if queued > 0 {
            pipeline.receive(1).await;
            pipeline.purge().await;
        }
    }
}

/// A message that is never received skips the dead-letter queue and expires; an event that
/// EventBridge can deliver neither to the queue nor to the rules' dead-letter queue is gone.
/// Each must fire an alarm, and a trickle of check errors too.
#[test]
fn when_events_can_be_lost_then_an_alarm_watches_each_way() {
    let alarms: Vec<&Value> = watchdog_tests::template::resources_of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(properties)
        .collect();
    let watching = |namespace: &str, metric: &str, dimension_value: &Value| {
        alarms.iter().any(|a| {
            a["Namespace"] == namespace
                && a["MetricName"] == metric
                && a["Dimensions"][0]["Value"] == *dimension_value
                && a["AlarmActions"].as_array().is_some_and(|actions| !actions.is_empty())
        })
    };
    let checks = serde_json::json!({"Fn::GetAtt": ["ChecksQueue", "QueueName"]});
    assert!(watching("AWS/SQS", "ApproximateAgeOfOldestMessage", &checks));
    let function = serde_json::json!({"Ref": "MonitorFunction"});
    assert!(watching("AWS/Lambda", "Throttles", &function));
    assert!(watching("AWS/Lambda", "Errors", &function));
    // Each rule's two delivery alarms: tests/iam/contract.rs, over every rule the rendered
    // templates hold.
    let age = alarms
        .iter()
        .find(|a| a["MetricName"] == "ApproximateAgeOfOldestMessage")
        .unwrap();
    let grace_max = template()["Parameters"]["GracePeriodSeconds"]["MaxValue"]
        .as_u64()
        .unwrap();
    assert!(
        age["Threshold"].as_u64().unwrap() > grace_max,
        "a message waiting out the grace period is not stuck"
    );
    let check_errors = properties("CheckErrorsAlarm");
    assert_eq!(
        check_errors["DatapointsToAlarm"].as_u64(),
        Some(2),
        "two bad quarter-hours fire it, not three in a row"
    );
    assert!(check_errors["EvaluationPeriods"].as_u64().unwrap() > 2);
}

#[test]
fn when_queues_are_created_then_they_take_tls_only_and_redrive_only_where_meant() {
    for (policy, queue) in [
        ("ChecksQueuePolicy", "ChecksQueue"),
        ("DeadLetterQueuePolicy", "DeadLetterQueue"),
        ("RulesDeadLetterQueuePolicy", "RulesDeadLetterQueue"),
    ] {
        let statements = properties(policy)["PolicyDocument"]["Statement"].as_array().unwrap();
        assert!(
            statements.iter().any(|s| s["Effect"] == "Deny"
                && s["Principal"] == "*"
                && s["Resource"] == serde_json::json!({"Fn::GetAtt": [queue, "Arn"]})
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
            "{policy} denies non-TLS access"
        );
    }
    assert_eq!(
        properties("DeadLetterQueue")["RedriveAllowPolicy"]["redrivePermission"],
        "byQueue"
    );
    assert_eq!(
        properties("RulesDeadLetterQueue")["RedriveAllowPolicy"]["redrivePermission"],
        "denyAll"
    );
}

/// The sweep's alarms watch what the sweep publishes with no dimension, and the heartbeat's
/// missing data is what breaches: a sweep that stopped running must page.
#[test]
fn when_the_sweep_stops_or_sees_trouble_then_an_alarm_watches_it() {
    use ecs_watchdog::metrics::Metric;
    for (alarm, metric) in [
        ("SweepHeartbeatAlarm", Metric::SweepCompleted),
        ("DisconnectedAgentsAlarm", Metric::DisconnectedAgents),
        ("InstancesWithoutDaemonAlarm", Metric::InstancesWithoutDaemon),
        ("MonitorImpairedAlarm", Metric::MonitorImpaired),
    ] {
        let properties = properties(alarm);
        assert_eq!(properties["MetricName"], metric.name(), "{alarm}");
        assert!(properties.get("Dimensions").is_none(), "{alarm} watches the aggregate");
    }
    assert_eq!(properties("SweepHeartbeatAlarm")["TreatMissingData"], "breaching");
    assert_eq!(
        properties("SweepHeartbeatAlarm")["ComparisonOperator"],
        "LessThanThreshold"
    );
}
