//! Contract tests between `template.yaml` and the code: the function's environment, the
//! alarms, the queue and event source settings, and the rule patterns against the sample
//! events. A change on one side without the other fails here.

use std::cell::RefCell;
use std::collections::BTreeSet;

use ecs_watchdog::Config;
use ecs_watchdog::event::Parsed;
use ecs_watchdog::kinds;
use serde_json::Value;
use watchdog_tests::emulator::Emulator;
use watchdog_tests::fleet::Fleet;
use watchdog_tests::pipeline::Pipeline;
use watchdog_tests::runtime::Function;
use watchdog_tests::template::{Stack, properties, template};
use watchdog_tests::{repo_root, samples};

/// The variables `Config` reads, found by recording its look-ups in both filter modes.
pub(crate) fn variables_the_function_reads() -> BTreeSet<String> {
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
    // Lambda sets them from the function's LoggingConfig.
    read.remove("AWS_LAMBDA_LOG_LEVEL");
    read.remove("AWS_LAMBDA_LOG_FORMAT");
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
fn when_monitoring_is_disabled_then_the_rules_and_the_sweep_are_paused() {
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
        let schedule = &properties("SweepFunction")["Events"]["Schedule"]["Properties"];
        assert_eq!(stack.resolve(&schedule["State"]), state, "the sweep's schedule");
        // A paused sweep misses every run on purpose: its missing-run alarm must not page.
        assert_eq!(
            stack.resolve(&properties("SweepHeartbeatAlarm")["ActionsEnabled"]),
            enabled,
            "SweepHeartbeatAlarm with EnableMonitoring={enabled}"
        );
    }
}

const TEAM_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:team-alerts";

/// CloudFormation checks the `Rules` before it creates anything: a stack whose alerts would go
/// to a topic nobody reads is refused with the reason.
#[test]
fn when_alerts_have_no_destination_then_the_stack_is_refused() {
    let refusal = "Set NotificationEmail or AlertTopicArn (an existing SNS topic), a PagerDuty routing key, or \
                   ChatFormat chatbot for a chat channel subscribed to the stack's topic; otherwise alerts go nowhere.";
    for (parameters, refused) in [
        (vec![], true),
        (vec![("ChatFormat", "plain")], true),
        (vec![("NotificationEmail", "oncall@example.com")], false),
        (vec![("AlertTopicArn", TEAM_TOPIC)], false),
        // PagerDuty, or a chat channel subscribed to the stack's topic, are destinations too.
        (vec![("PagerDutyRoutingKeyParameter", "/oncall/pagerduty")], false),
        (vec![("PagerDutyRoutingKeySecret", "oncall/pagerduty")], false),
        (vec![("ChatFormat", "chatbot")], false),
        (
            vec![
                ("NotificationEmail", "oncall@example.com"),
                ("AlertTopicArn", TEAM_TOPIC),
            ],
            false,
        ),
    ] {
        let broken = Stack::new(&parameters).broken_rules();
        assert_eq!(
            broken.iter().any(|r| r == refusal),
            refused,
            "{parameters:?}: {broken:?}"
        );
    }
    // The other rules still hold with a destination and the defaults.
    assert_eq!(
        Stack::new(&[("NotificationEmail", "oncall@example.com")]).broken_rules(),
        Vec::<String>::new()
    );
}

/// The `Resource` of every statement with this `Sid` in a role's inline policies, resolved.
fn statement_resources(stack: &Stack, role: &str, sid: &str) -> Vec<String> {
    fn find<'a>(value: &'a Value, sid: &str, found: &mut Vec<&'a Value>) {
        match value {
            Value::Object(map) if map.get("Sid").is_some_and(|s| s == sid) => found.push(&map["Resource"]),
            Value::Object(map) => map.values().for_each(|v| find(v, sid, found)),
            Value::Array(items) => items.iter().for_each(|v| find(v, sid, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    find(&properties(role)["Policies"], sid, &mut found);
    found.into_iter().map(|r| stack.resolve(r)).collect()
}

#[test]
fn when_an_existing_alert_topic_is_given_then_the_stack_creates_none_and_publishes_there() {
    let own = Stack::new(&[("NotificationEmail", "oncall@example.com")]);
    let team = Stack::new(&[
        ("AlertTopicArn", TEAM_TOPIC),
        ("NotificationEmail", "oncall@example.com"),
    ]);
    let topics = |stack: &Stack| watchdog_tests::template::created_of_type(stack, "AWS::SNS::Topic");
    assert!(topics(&own).contains(&"AlertTopic"));
    assert!(!topics(&team).contains(&"AlertTopic"), "{:?}", topics(&team));
    assert!(!watchdog_tests::template::created_of_type(&team, "AWS::SNS::TopicPolicy").contains(&"AlertTopicPolicy"));
    for (function, role) in [("MonitorFunction", "MonitorRole"), ("SweepFunction", "SweepRole")] {
        let topic = &properties(function)["Environment"]["Variables"]["ALERT_TOPIC_ARN"];
        assert_eq!(team.resolve(topic), TEAM_TOPIC, "{function}");
        assert_eq!(
            statement_resources(&team, role, "PublishAlerts"),
            [TEAM_TOPIC],
            "{role}"
        );
    }
    // The e-mail, if any, is subscribed where the alerts go.
    assert_eq!(team.resolve(&properties("EmailSubscription")["TopicArn"]), TEAM_TOPIC);
    assert_eq!(
        team.resolve(&template()["Outputs"]["AlertTopicArn"]["Value"]),
        TEAM_TOPIC
    );
}

/// `sam deploy --guided` and the console ask in these groups: a parameter in none is asked
/// last without context, one in two is asked twice.
#[test]
fn when_parameters_are_asked_then_each_is_in_exactly_one_group_with_a_label() {
    let interface = &template()["Metadata"]["AWS::CloudFormation::Interface"];
    let grouped: Vec<&str> = interface["ParameterGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["Parameters"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    let parameters: BTreeSet<&str> = template()["Parameters"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for parameter in &parameters {
        let groups = grouped.iter().filter(|p| *p == parameter).count();
        assert_eq!(groups, 1, "{parameter} is in {groups} parameter groups");
        let label = &interface["ParameterLabels"][parameter]["default"];
        assert!(
            label.as_str().is_some_and(|l| !l.is_empty()),
            "{parameter} has no label"
        );
    }
    let unknown: Vec<&&str> = grouped.iter().filter(|p| !parameters.contains(**p)).collect();
    assert!(unknown.is_empty(), "groups name no such parameter: {unknown:?}");
    let labels = interface["ParameterLabels"].as_object().unwrap();
    assert_eq!(labels.keys().map(String::as_str).collect::<BTreeSet<_>>(), parameters);
    // The destination comes first: it is the one answer a first deploy must give.
    assert_eq!(grouped[..2], ["NotificationEmail", "AlertTopicArn"]);
}

/// An existing topic end to end: the stack's alert reaches the team's topic, through the real
/// monitor binary, and no topic of the stack's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_existing_alert_topic_is_given_then_the_monitor_alerts_on_it() {
    let emulator = Emulator::start().await;
    let sns = aws_sdk_sns::Client::new(&emulator.sdk);
    let team_topic = sns.create_topic().name("team-alerts").send().await.unwrap();
    let team_topic = team_topic.topic_arn().unwrap();
    let fleet = Fleet::new(&emulator.sdk).await;
    let parameters = [
        ("AlertTopicArn", team_topic),
        ("GracePeriodSeconds", "0"),
        ("GroupIntervalMinutes", "0"),
    ];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let node = &fleet.nodes(&cluster, 1).await[0];
    emulator
        .set_container_instance(&cluster, &node.container_instance_arn, Some(false), None)
        .await;
    pipeline.put_events(&[samples::agent_event(node, 2, false)]).await;

    let function = Function::start(&pipeline.function_env(&emulator)).await;
    let (_, answer) = pipeline.deliver(&function, 1).await;

    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    let published = emulator.published().await;
    let topics: Vec<&str> = published.iter().map(|p| p.topic_arn.as_str()).collect();
    assert_eq!(topics, [team_topic], "{published:#?}");
    let stack_topics = sns.list_topics().send().await.unwrap();
    let alert_topics: Vec<&str> = stack_topics
        .topics()
        .iter()
        .filter_map(|t| t.topic_arn())
        .filter(|arn| arn.ends_with(":AlertTopic"))
        .collect();
    assert!(
        alert_topics.is_empty(),
        "the stack made its own alert topic: {alert_topics:?}"
    );
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
        let checked = matches!(kinds::parse(&event.to_string()), Parsed::Signal(_));
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

/// What an alarm is for, by what it watches: the monitor's own health (an AWS service's metric
/// of its queues, rules and functions, or a metric of the monitor about itself), a count of what
/// the monitor alerts on, or a gauge of the sweep.
#[derive(Debug, PartialEq)]
enum AlarmRole {
    Health,
    Count,
    Gauge,
}

fn alarm_role(alarm: &Value) -> AlarmRole {
    use ecs_watchdog::metrics::Metric;
    let name = alarm["MetricName"].as_str().unwrap_or_default();
    let is = |metrics: &[Metric]| metrics.iter().any(|m| m.name() == name);
    if alarm["Namespace"].as_str().is_some_and(|n| n.starts_with("AWS/")) {
        AlarmRole::Health
    } else if ecs_watchdog::kinds::KINDS
        .iter()
        .filter_map(|k| k.metric())
        .any(|m| m.name() == name)
    {
        AlarmRole::Count
    } else if is(&[
        Metric::DisconnectedAgents,
        Metric::InstancesWithoutDaemon,
        Metric::UnregisteredInstances,
    ]) {
        AlarmRole::Gauge
    } else {
        assert!(
            is(&[Metric::SweepCompleted, Metric::MonitorImpaired, Metric::CheckErrors]) || name == "PagerDutyRejected",
            "an alarm on {name} has no role here yet"
        );
        AlarmRole::Health
    }
}

fn actions(alarm: &Value, key: &str) -> Vec<String> {
    alarm[key]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// On-call is paged by the monitor's alerts only, once per incident: no alarm notifies the
/// alert topic (an ALARM would page twice, an OK would resolve a page that is still true). The
/// health alarms, and the sweep's gauge alarms as a backstop, notify the operator topic; the
/// count alarms, duplicates of the alerts, notify nobody. Every function has its own error and
/// throttle alarms. Checked on the template as CloudFormation would deploy it.
#[test]
fn when_an_alarm_fires_or_clears_then_it_never_notifies_the_alert_topic() {
    const OPS: &str = "arn:aws:sns:us-east-1:123456789012:platform-ops";
    for parameters in [
        &[("NotificationEmail", "oncall@example.com")][..],
        &[("OperatorTopicArn", OPS)],
        &[("SweepIntervalMinutes", "0"), ("OrganizationId", "o-abcdefghij")],
    ] {
        let stack = watchdog_tests::template::rendered("ecs-watchdog", parameters);
        let resources = stack["Resources"].as_object().unwrap();
        let alert_topic = resources["MonitorFunction"]["Properties"]["Environment"]["Variables"]["ALERT_TOPIC_ARN"]
            .as_str()
            .unwrap();
        let operator = match resources.get("OperatorTopic") {
            Some(_) => "arn:aws:sns:us-east-1:123456789012:ecs-watchdog-OperatorTopic-ABCDEF123456",
            None => OPS,
        };
        assert_ne!(alert_topic, operator);
        let alarms: Vec<(&String, &Value)> = resources
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
            .map(|(id, r)| (id, &r["Properties"]))
            .collect();
        assert!(alarms.len() >= 20, "{parameters:?}");
        for (id, alarm) in &alarms {
            let (fire, clear) = (actions(alarm, "AlarmActions"), actions(alarm, "OKActions"));
            let case = format!("{id} with {parameters:?}");
            assert!(!fire.iter().chain(&clear).any(|a| a == alert_topic), "{case}");
            match alarm_role(alarm) {
                AlarmRole::Health => {
                    assert_eq!(fire, [operator], "{case}");
                    assert!(clear.is_empty() || clear == [operator], "{case}");
                }
                AlarmRole::Gauge => assert_eq!((fire, clear), (vec![operator.to_owned()], vec![]), "{case}"),
                AlarmRole::Count => assert_eq!((fire, clear), (vec![], vec![]), "{case}"),
            }
        }
        for (function, resource) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::Lambda::Function") {
            let name = resource["Properties"]["FunctionName"]
                .as_str()
                .map_or_else(|| format!("ecs-watchdog-{function}-ABCDEF123456"), str::to_owned);
            for metric in ["Errors", "Throttles"] {
                let watched = alarms.iter().any(|(_, a)| {
                    a["Namespace"] == "AWS/Lambda"
                        && a["MetricName"] == metric
                        && a["Dimensions"][0]["Value"] == name.as_str()
                        && actions(a, "AlarmActions") == [operator]
                });
                assert!(
                    watched,
                    "{function} has no {metric} alarm to the operator topic ({parameters:?})"
                );
            }
        }
    }
}

/// The operator topic's e-mail is `OperatorEmail`, else the notification e-mail; a topic of
/// the user's own (`OperatorTopicArn`) is used as it is: the stack creates and subscribes none.
#[test]
fn when_the_operator_is_named_or_not_then_the_health_alarms_reach_the_right_address() {
    let subscriptions = |parameters: &[(&str, &str)]| -> Vec<(String, String)> {
        let stack = watchdog_tests::template::rendered("ecs-watchdog", parameters);
        stack["Resources"]
            .as_object()
            .unwrap()
            .values()
            .filter(|r| r["Type"] == "AWS::SNS::Subscription")
            .map(|r| {
                let topic = r["Properties"]["TopicArn"].as_str().unwrap();
                let topic = topic.rsplit(':').next().unwrap().split('-').nth(2).unwrap().to_owned();
                (topic, r["Properties"]["Endpoint"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    let pair = |topic: &str, email: &str| (topic.to_owned(), email.to_owned());
    assert_eq!(
        subscriptions(&[("NotificationEmail", "oncall@example.com")]),
        [
            pair("AlertTopic", "oncall@example.com"),
            pair("OperatorTopic", "oncall@example.com")
        ]
    );
    assert_eq!(
        subscriptions(&[
            ("NotificationEmail", "oncall@example.com"),
            ("OperatorEmail", "ops@example.com")
        ]),
        [
            pair("AlertTopic", "oncall@example.com"),
            pair("OperatorTopic", "ops@example.com")
        ]
    );
    assert_eq!(
        subscriptions(&[("OperatorEmail", "ops@example.com")]),
        [pair("OperatorTopic", "ops@example.com")]
    );
    assert_eq!(
        subscriptions(&[
            ("NotificationEmail", "oncall@example.com"),
            ("OperatorTopicArn", "arn:aws:sns:us-east-1:123456789012:platform-ops"),
        ]),
        [pair("AlertTopic", "oncall@example.com")]
    );
}

/// A spoke's alarms are all about forwarding (the hub's health): they notify the spoke's
/// `AlarmTopicArn` when one is given, and never send an OK.
#[test]
fn when_a_spoke_alarm_fires_then_it_notifies_only_the_given_topic_and_sends_no_ok() {
    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:platform-ops";
    for (topic, expected) in [("", vec![]), (TOPIC, vec![TOPIC.to_owned()])] {
        let spoke = watchdog_tests::template::rendered_file(
            "spoke.yaml",
            "ecs-watchdog-spoke",
            &[
                (
                    "HubEventBusArn",
                    "arn:aws:events:us-east-1:210987654321:event-bus/ecs-watchdog",
                ),
                (
                    "HubFunctionRoleArns",
                    "arn:aws:iam::210987654321:role/ecs-watchdog-MonitorRole",
                ),
                ("AlarmTopicArn", topic),
            ],
        );
        let alarms: Vec<&Value> = spoke["Resources"]
            .as_object()
            .unwrap()
            .values()
            .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
            .collect();
        assert!(!alarms.is_empty());
        for alarm in alarms {
            let properties = &alarm["Properties"];
            assert_eq!(actions(properties, "AlarmActions"), expected);
            assert!(actions(properties, "OKActions").is_empty());
        }
    }
}

/// Lambda's log-level filtering gives a line without a `"level"` key the level INFO and drops it
/// below the selected level (`lambda_sends_unlevelled_lines`, from the Lambda developer guide):
/// every level the template allows must keep the EMF lines the functions write, or every count
/// alarm goes silent and the heartbeat alarm pages forever. The functions refuse any other.
#[test]
fn when_any_allowed_log_level_is_chosen_then_lambda_keeps_the_metric_lines() {
    use ecs_watchdog::config::lambda_sends_unlevelled_lines;
    use ecs_watchdog::metrics::{Metric, Tally, emf_lines};
    let mut tally = Tally::default();
    tally.count(Some("prod"), Metric::AgentDisconnected);
    tally.gauge_total(Metric::DisconnectedAgents, 1);
    tally.count(None, Metric::SweepCompleted);
    let lines = emf_lines("ECSWatchdog", 1_700_000_000_000, &tally.data());
    assert!(lines.len() >= 2);
    for line in &lines {
        let document: Value = serde_json::from_str(line).unwrap();
        assert!(document.get("level").is_none(), "an EMF line carries no level: {line}");
    }
    let allowed: Vec<&str> = template()["Parameters"]["LogLevel"]["AllowedValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(allowed.contains(&"INFO"));
    for function in ["MonitorFunction", "SweepFunction"] {
        let logging = &properties(function)["LoggingConfig"];
        assert_eq!(logging["ApplicationLogLevel"], serde_json::json!({"Ref": "LogLevel"}));
        let format = logging["LogFormat"].as_str();
        for level in &allowed {
            assert!(
                lambda_sends_unlevelled_lines(format, Some(level)),
                "{function} with LogLevel={level} drops the metrics"
            );
            let env = [
                ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:alerts"),
                (
                    "DEAD_LETTER_QUEUE_URL",
                    "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
                ),
                ("METRICS_SINK", "emf"),
                ("AWS_LAMBDA_LOG_FORMAT", format.unwrap_or_default()),
                ("AWS_LAMBDA_LOG_LEVEL", level),
            ];
            let config = Config::from_lookup(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()));
            assert!(config.is_ok(), "{function} with LogLevel={level}: {config:?}");
        }
    }
}

/// Gauges per cluster are a switch (`ClusterGauges`, off); the dashboard too (`EnableDashboard`).
#[test]
fn when_cluster_gauges_and_the_dashboard_are_not_asked_for_then_neither_is_made() {
    for (switch, gauges, dashboard) in [("false", "false", false), ("true", "true", true)] {
        let stack = watchdog_tests::template::rendered(
            "ecs-watchdog",
            &[("ClusterGauges", switch), ("EnableDashboard", switch)],
        );
        let resources = &stack["Resources"];
        for function in ["MonitorFunction", "SweepFunction"] {
            assert_eq!(
                resources[function]["Properties"]["Environment"]["Variables"]["CLUSTER_GAUGES"],
                gauges
            );
        }
        assert_eq!(resources.get("Dashboard").is_some(), dashboard);
    }
}

/// What every kind needs, enumerated from the kind list itself, so a new kind cannot ship
/// without it: a sample event that parses to it (the sweep's own `monitor-impaired` excepted) and
/// an alarm on its count (count alarms notify nobody: `when_an_alarm_fires_or_clears_…`). Its rows
/// in docs/findings.md are `tests/docs.rs`'s.
#[test]
fn when_a_kind_exists_then_it_has_a_sample_and_an_alarm() {
    use ecs_watchdog::kinds::KINDS;
    let sampled: BTreeSet<&str> = std::fs::read_dir(watchdog_tests::repo_root().join("events"))
        .expect("events/")
        .map(|entry| std::fs::read_to_string(entry.expect("a sample").path()).expect("a sample"))
        .filter_map(|body| match kinds::parse(&body) {
            Parsed::Signal(signal) => Some(signal.kind().as_str()),
            _ => None,
        })
        .collect();
    let alarms = watchdog_tests::template::resources_of_type("AWS::CloudWatch::Alarm");
    for kind in KINDS {
        let name = kind.kind().as_str();
        assert!(
            kind.detail_types().is_empty() || sampled.contains(name),
            "no sample in events/ parses to {name}: {sampled:?}"
        );
        let metric = kind.alarm().unwrap_or_else(|| panic!("{name} has no alarm")).name();
        assert!(
            alarms.iter().any(|alarm| properties(alarm)["MetricName"] == metric),
            "no alarm on {metric}"
        );
    }
}

/// Each kind's events reach the monitor: for every `detail-type` a kind parses, the hub's
/// template and the spoke each have an `aws.ecs` rule that matches it.
#[test]
fn when_a_kind_parses_events_then_the_hub_and_the_spoke_have_a_rule_for_each() {
    use ecs_watchdog::kinds::KINDS;
    for (file, template) in [
        ("template.yaml", watchdog_tests::template::template()),
        ("spoke.yaml", watchdog_tests::template::spoke()),
    ] {
        let patterns: Vec<&serde_json::Value> = template["Resources"]
            .as_object()
            .expect("Resources")
            .values()
            .filter(|r| r["Type"] == "AWS::Events::Rule")
            .map(|r| &r["Properties"]["EventPattern"])
            .filter(|p| p["source"] == serde_json::json!(["aws.ecs"]))
            .collect();
        for kind in KINDS {
            for detail_type in kind.detail_types() {
                assert!(
                    patterns.iter().any(|p| p["detail-type"]
                        .as_array()
                        .is_some_and(|types| types.iter().any(|t| t == detail_type))),
                    "{file}: no rule takes {detail_type} ({})",
                    kind.kind().as_str()
                );
            }
        }
    }
}
