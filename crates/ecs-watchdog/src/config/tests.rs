use super::*;
use std::collections::HashMap;

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ecs-watchdog-alerts";
const DLQ: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/ecs-watchdog-dlq";

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut env: HashMap<String, String> = [("ALERT_TOPIC_ARN", TOPIC), ("DEAD_LETTER_QUEUE_URL", DLQ)]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in vars {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|name| env.get(name).cloned())
}

#[test]
fn when_only_required_variables_are_set_then_defaults_apply() {
    let config = load(&[]).unwrap();
    assert_eq!(config.cluster_filter, ClusterFilter::All);
    assert_eq!(config.metric_namespace, "ECSWatchdog");
    assert_eq!(config.metrics_sink, MetricsSinkKind::Api);
    assert_eq!(config.tag_cache_ttl, Duration::from_secs(300));
    assert_eq!(
        config.remediation,
        Remediation {
            action: RemediationAction::None,
            dry_run: false,
            max_percent: 10,
            non_critical_daemons: false,
            replace_after: Duration::from_secs(15 * 60),
            restart_wait: Duration::from_secs(5 * 60),
            restart_document: None,
            scope: Default::default(),
        }
    );
    assert_eq!(config.require_ledger().unwrap_err().variable, "INCIDENT_TABLE_NAME");
    assert_eq!(
        config.sweep,
        SweepTimes {
            grace: Duration::from_secs(180),
            stuck_after: Duration::from_secs(30 * 60),
            register_within: Duration::from_secs(10 * 60)
        }
    );
    assert_eq!((config.findings_event_bus, config.hook_function_arn), (None, None));
}

#[test]
fn when_the_sweep_times_are_set_then_they_are_read_in_their_units() {
    let config = load(&[
        ("GRACE_PERIOD_SECONDS", "60"),
        ("STUCK_AFTER_MINUTES", "45"),
        ("REGISTER_WITHIN_MINUTES", "20"),
        ("INCIDENT_TABLE_NAME", "incidents"),
    ])
    .unwrap();
    assert_eq!(config.sweep.register_within, Duration::from_secs(20 * 60));
    assert_eq!(config.sweep.grace, Duration::from_secs(60));
    assert_eq!(config.sweep.stuck_after, Duration::from_secs(45 * 60));
    assert!(config.require_ledger().is_ok());
}

#[test]
fn when_remediation_and_hooks_are_set_then_they_are_read() {
    let config = load(&[
        ("REMEDIATION_ACTION", "drain-and-replace"),
        ("REMEDIATION_DRY_RUN", "true"),
        ("MAX_REMEDIATION_PERCENT", "25"),
        ("REMEDIATION_CLUSTER_NAMES", "prod, payments"),
        ("REPLACE_ONLY_TAGGED_GROUPS", "true"),
        ("FINDINGS_EVENT_BUS", "ops"),
        (
            "HOOK_FUNCTION_ARN",
            "arn:aws:lambda:eu-west-1:123456789012:function:fix-it",
        ),
    ])
    .unwrap();
    assert_eq!(
        config.remediation,
        Remediation {
            action: RemediationAction::DrainAndReplace,
            dry_run: true,
            max_percent: 25,
            non_critical_daemons: false,
            replace_after: Duration::from_secs(15 * 60),
            restart_wait: Duration::from_secs(5 * 60),
            restart_document: None,
            scope: crate::remediation::Scope {
                clusters: Some(["prod".to_owned(), "payments".to_owned()].into()),
                only_tagged_groups: true,
            },
        }
    );
    assert_eq!(config.findings_event_bus.as_deref(), Some("ops"));
    assert_eq!(
        config.hook_function_arn.as_deref(),
        Some("arn:aws:lambda:eu-west-1:123456789012:function:fix-it")
    );
}

#[test]
fn when_running_in_lambda_then_metrics_default_to_emf() {
    let config = load(&[("AWS_LAMBDA_FUNCTION_NAME", "monitor")]).unwrap();
    assert_eq!(config.metrics_sink, MetricsSinkKind::Emf);
}

#[test]
fn when_cluster_gauges_are_not_asked_for_then_they_are_off() {
    assert!(!load(&[]).unwrap().cluster_gauges);
    assert!(load(&[("CLUSTER_GAUGES", "true")]).unwrap().cluster_gauges);
}

/// A log level that drops EMF lines is refused with the EMF sink only: `PutMetricData` does not
/// go through the logs.
#[test]
fn when_the_log_level_would_drop_metric_lines_then_only_the_emf_sink_refuses_it() {
    let lambda = |sink: &'static str, level: &'static str| {
        load(&[
            ("METRICS_SINK", sink),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", level),
        ])
    };
    for level in ["TRACE", "DEBUG", "INFO"] {
        assert!(lambda("emf", level).is_ok(), "{level}");
    }
    for level in ["WARN", "ERROR", "FATAL"] {
        assert_eq!(lambda("emf", level).unwrap_err().variable, "AWS_LAMBDA_LOG_LEVEL");
        assert!(lambda("api", level).is_ok(), "{level}");
    }
}

#[test]
fn when_not_all_clusters_then_the_tag_filter_uses_the_default_key() {
    let config = load(&[("MONITOR_ALL_CLUSTERS", "false"), ("MONITORING_TAG_VALUE", "enabled")]).unwrap();
    assert_eq!(
        config.cluster_filter,
        ClusterFilter::Tagged {
            key: "ecs-agent-monitoring".into(),
            value: "enabled".into()
        }
    );
}

#[test]
fn when_a_variable_is_missing_or_malformed_then_the_error_names_it() {
    type Vars = &'static [(&'static str, &'static str)];
    let cases: &[(Vars, &str, &str)] = &[
        (&[("ALERT_TOPIC_ARN", "")], "ALERT_TOPIC_ARN", "required"),
        (&[("ALERT_TOPIC_ARN", "my-topic")], "ALERT_TOPIC_ARN", "invalid"),
        (
            &[("ALERT_TOPIC_ARN", "arn:aws:sqs:eu-west-1:1:q")],
            "ALERT_TOPIC_ARN",
            "invalid",
        ),
        (&[("DEAD_LETTER_QUEUE_URL", "")], "DEAD_LETTER_QUEUE_URL", "required"),
        (&[("DEAD_LETTER_QUEUE_URL", "dlq")], "DEAD_LETTER_QUEUE_URL", "invalid"),
        (&[("MONITOR_ALL_CLUSTERS", "yes")], "MONITOR_ALL_CLUSTERS", "invalid"),
        (&[("MONITOR_ALL_CLUSTERS", "false")], "MONITORING_TAG_VALUE", "required"),
        (&[("METRICS_SINK", "statsd")], "METRICS_SINK", "invalid"),
        (&[("METRIC_NAMESPACE", "AWS/ECS")], "METRIC_NAMESPACE", "invalid"),
        (&[("TAG_CACHE_TTL_SECONDS", "-1")], "TAG_CACHE_TTL_SECONDS", "invalid"),
        (
            &[("TAG_CACHE_TTL_SECONDS", "100000")],
            "TAG_CACHE_TTL_SECONDS",
            "invalid",
        ),
        (&[("REMEDIATION_ACTION", "terminate")], "REMEDIATION_ACTION", "invalid"),
        (&[("REMEDIATION_DRY_RUN", "maybe")], "REMEDIATION_DRY_RUN", "invalid"),
        (
            &[("REMEDIATE_NON_CRITICAL_DAEMONS", "sometimes")],
            "REMEDIATE_NON_CRITICAL_DAEMONS",
            "invalid",
        ),
        (
            &[("MAX_REMEDIATION_PERCENT", "0")],
            "MAX_REMEDIATION_PERCENT",
            "invalid",
        ),
        (
            &[("MAX_REMEDIATION_PERCENT", "101")],
            "MAX_REMEDIATION_PERCENT",
            "invalid",
        ),
        (
            &[("MAX_REMEDIATION_PERCENT", "ten")],
            "MAX_REMEDIATION_PERCENT",
            "invalid",
        ),
        (&[("FINDINGS_EVENT_BUS", "my bus")], "FINDINGS_EVENT_BUS", "invalid"),
        (&[("HOOK_FUNCTION_ARN", "my-function")], "HOOK_FUNCTION_ARN", "invalid"),
        (&[("GRACE_PERIOD_SECONDS", "901")], "GRACE_PERIOD_SECONDS", "invalid"),
        (&[("STUCK_AFTER_MINUTES", "0")], "STUCK_AFTER_MINUTES", "invalid"),
        (
            &[("REGISTER_WITHIN_MINUTES", "0")],
            "REGISTER_WITHIN_MINUTES",
            "invalid",
        ),
        (
            &[("REGISTER_WITHIN_MINUTES", "1441")],
            "REGISTER_WITHIN_MINUTES",
            "invalid",
        ),
        (&[("REPLACE_AFTER_MINUTES", "1441")], "REPLACE_AFTER_MINUTES", "invalid"),
        (&[("REMEDIATION_ACTION", "restart")], "REMEDIATION_ACTION", "invalid"),
        (&[("RESTART_WAIT_MINUTES", "1441")], "RESTART_WAIT_MINUTES", "invalid"),
        (&[("RESTART_WAIT_MINUTES", "five")], "RESTART_WAIT_MINUTES", "invalid"),
        (&[("RESTART_WAIT_MINUTES", "-1")], "RESTART_WAIT_MINUTES", "invalid"),
        (&[("STUCK_AFTER_MINUTES", "soon")], "STUCK_AFTER_MINUTES", "invalid"),
        (
            &[("HOOK_FUNCTION_ARN", "arn:aws:sns:eu-west-1:1:topic")],
            "HOOK_FUNCTION_ARN",
            "invalid",
        ),
        (&[("ACCOUNT_ROLE_NAME", "reader role")], "ACCOUNT_ROLE_NAME", "invalid"),
        (&[("SWEEP_ACCOUNTS", "111111111111,prod")], "SWEEP_ACCOUNTS", "invalid"),
        (&[("SWEEP_REGIONS", "Ireland")], "SWEEP_REGIONS", "invalid"),
        (&[("CHAT_FORMAT", "slack")], "CHAT_FORMAT", "invalid"),
        (&[("CLUSTER_GAUGES", "per-cluster")], "CLUSTER_GAUGES", "invalid"),
        (
            &[
                ("METRICS_SINK", "emf"),
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
                ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ],
            "AWS_LAMBDA_LOG_LEVEL",
            "EMF",
        ),
        (
            &[("GROUP_INTERVAL_MINUTES", "1441")],
            "GROUP_INTERVAL_MINUTES",
            "invalid",
        ),
    ];
    for (vars, variable, problem) in cases {
        let error = load(vars).expect_err(&format!("{vars:?} must be rejected"));
        assert_eq!(error.variable, *variable, "{vars:?}");
        assert!(error.problem.contains(problem), "{vars:?}: {error}");
        assert!(
            error.to_string().contains(variable) && error.to_string().contains("accepted:"),
            "{error}"
        );
    }
}

#[test]
fn when_booleans_differ_in_case_then_they_are_still_read() {
    let config = load(&[("MONITOR_ALL_CLUSTERS", "TRUE")]).unwrap();
    assert_eq!(config.cluster_filter, ClusterFilter::All);
}

#[test]
fn when_a_hub_sweeps_member_accounts_then_every_account_is_swept_in_every_region() {
    let config = load(&[
        ("SWEEP_ACCOUNTS", " 111111111111, 222222222222,111111111111"),
        ("SWEEP_REGIONS", "eu-west-1,us-east-1"),
        ("AWS_REGION", "eu-central-1"),
    ])
    .unwrap();
    let accounts = &config.accounts;
    assert_eq!(accounts.home, "123456789012", "the alert topic's account");
    assert_eq!(
        accounts.role_arn("111111111111"),
        "arn:aws:iam::111111111111:role/ecs-watchdog-reader"
    );
    let swept: Vec<String> = accounts.swept.iter().map(Place::to_string).collect();
    assert_eq!(
        swept,
        [
            "111111111111, eu-west-1",
            "111111111111, us-east-1",
            "222222222222, eu-west-1",
            "222222222222, us-east-1"
        ]
    );
    // Without regions: the function's own.
    let config = load(&[("SWEEP_ACCOUNTS", "111111111111"), ("AWS_REGION", "eu-central-1")]).unwrap();
    assert_eq!(config.accounts.swept, [Place::new("111111111111", "eu-central-1")]);
    assert_eq!(load(&[]).unwrap().accounts.swept, []);
    assert_eq!(load(&[]).unwrap().chat, ChatFormat::Plain);
    assert_eq!(load(&[("CHAT_FORMAT", "chatbot")]).unwrap().chat, ChatFormat::Chatbot);
}

#[test]
fn when_critical_percent_is_unset_or_set_then_it_is_read_and_a_bad_value_names_the_variable() {
    assert_eq!(load(&[]).unwrap().critical_percent, 20);
    assert_eq!(load(&[("CRITICAL_PERCENT", "35")]).unwrap().critical_percent, 35);
    for bad in ["0", "101", "twenty", "-5"] {
        let error = load(&[("CRITICAL_PERCENT", bad)]).unwrap_err();
        assert_eq!(error.variable, "CRITICAL_PERCENT", "{bad}");
    }
}

#[test]
fn when_the_flap_threshold_is_unset_or_set_then_it_is_read_and_a_bad_value_stops_init_naming_it() {
    assert_eq!(load(&[]).unwrap().incidents.flap_threshold, 3);
    assert_eq!(load(&[("FLAP_THRESHOLD", "5")]).unwrap().incidents.flap_threshold, 5);
    for bad in ["0", "1", "101", "three", "-3"] {
        let error = load(&[("FLAP_THRESHOLD", bad)]).unwrap_err();
        assert_eq!(error.variable, "FLAP_THRESHOLD", "{bad}");
    }
}

#[test]
fn when_the_group_interval_is_set_then_it_is_read_in_minutes_and_zero_turns_grouping_off() {
    assert_eq!(load(&[]).unwrap().incidents.group_interval, Duration::from_secs(300));
    let off = load(&[("GROUP_INTERVAL_MINUTES", "0")]).unwrap();
    assert!(off.incidents.group_interval.is_zero());
    let day = load(&[("GROUP_INTERVAL_MINUTES", "1440")]).unwrap();
    assert_eq!(day.incidents.group_interval, Duration::from_secs(86_400));
}

#[test]
fn when_the_remediation_scope_is_every_cluster_or_malformed_then_it_is_read_or_named() {
    for every in ["*", "", "prod,*"] {
        let config = load(&[("REMEDIATION_CLUSTER_NAMES", every)]).unwrap();
        assert_eq!(config.remediation.scope.clusters, None, "{every:?}");
    }
    let error = load(&[("REMEDIATION_CLUSTER_NAMES", "prod,arn:aws:ecs:x")]).unwrap_err();
    assert_eq!(error.variable, "REMEDIATION_CLUSTER_NAMES");
    let error = load(&[("REPLACE_ONLY_TAGGED_GROUPS", "yes")]).unwrap_err();
    assert_eq!(error.variable, "REPLACE_ONLY_TAGGED_GROUPS");
}

#[test]
fn when_the_agent_restart_is_asked_for_then_it_is_read_with_its_wait_in_minutes() {
    for (name, action) in [
        ("restart-agent", RemediationAction::RestartAgent),
        ("restart-then-drain", RemediationAction::RestartThenDrain),
    ] {
        let config = load(&[
            ("REMEDIATION_ACTION", name),
            ("RESTART_WAIT_MINUTES", "12"),
            ("RESTART_DOCUMENT_NAME", "ecs-watchdog-reader-restart-agent"),
        ])
        .unwrap();
        assert_eq!(config.remediation.action, action);
        assert_eq!(
            config.remediation.restart_document.as_deref(),
            Some("ecs-watchdog-reader-restart-agent")
        );
        assert_eq!(config.remediation.action.as_str(), name);
        assert!(action.restarts());
        assert_eq!(config.remediation.restart_wait, Duration::from_secs(12 * 60));
    }
    let drain = load(&[("REMEDIATION_ACTION", "drain")]).unwrap();
    assert!(!drain.remediation.action.restarts());
    assert_eq!(
        drain.remediation.restart_wait,
        Duration::from_secs(5 * 60),
        "the default"
    );
}

/// A restart runs the stack's own document, which runs `systemctl restart ecs` and nothing else:
/// without one, or with an AWS-owned document (AWS-RunShellScript runs whatever it is given),
/// init stops naming the variable.
#[test]
fn when_a_restart_has_no_document_of_its_own_then_init_stops_naming_it() {
    for document in [
        None,
        Some("AWS-RunShellScript"),
        Some("amazon-ecs-restart"),
        Some("Amzn-anything"),
        Some("x"),
        Some("has space"),
    ] {
        let mut env = vec![("REMEDIATION_ACTION", "restart-agent")];
        env.extend(document.map(|d| ("RESTART_DOCUMENT_NAME", d)));
        let error = load(&env).unwrap_err();
        assert_eq!(error.variable, "RESTART_DOCUMENT_NAME", "{document:?}");
    }
    let drain = load(&[("REMEDIATION_ACTION", "drain")]).unwrap();
    assert_eq!(drain.remediation.restart_document, None, "only a restart needs one");
}
