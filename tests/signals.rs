//! The newer ECS signals end to end, through the template's rules, the queue and the real
//! `monitor` binary: container instance health (re-checked with `CONTAINER_INSTANCE_HEALTH`)
//! and daemon deployments that fail.

use serde_json::{Value, json};
use watchdog_tests::bed::{Bed, NO_GRACE, finding};
use watchdog_tests::pipeline::sqs_event;
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::{deployment_event, health_impaired_event};

/// Puts `events` on the bus and hands what the rules queued to a fresh `monitor`.
async fn run(bed: &Bed, events: &[Value], expect_queued: usize) -> (Function, Value) {
    bed.pipeline.put_events(events).await;
    let records = bed.pipeline.receive(expect_queued).await;
    assert_eq!(records.len(), expect_queued, "the rules queued {records:?}");
    let function = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    let answer = function.invoke(&sqs_event(&records)).await.expect("handled");
    (function, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_instance_is_still_impaired_at_the_recheck_then_one_alert_names_the_failing_check() {
    let bed = Bed::new(&NO_GRACE, 2).await;
    let [sick, healed] = [&bed.nodes[0], &bed.nodes[1]];
    bed.emulator
        .set_health(
            &sick.cluster_arn,
            &sick.container_instance_arn,
            "IMPAIRED",
            &[
                ("DAEMON", "IMPAIRED", "Daemon task: 4af2b3c1 is unhealthy"),
                ("CONTAINER_RUNTIME", "OK", ""),
            ],
        )
        .await;
    bed.emulator
        .set_health(
            &healed.cluster_arn,
            &healed.container_instance_arn,
            "OK",
            &[("DAEMON", "OK", "")],
        )
        .await;

    let (function, answer) = run(&bed, &[health_impaired_event(sick), health_impaired_event(healed)], 2).await;

    assert_eq!(answer, json!({"batchItemFailures": []}));
    let alerts = bed.published("instance-impaired").await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        alerts[0].subject,
        "ECS instance impaired on 1 instance in prod (123456789012, us-east-1)"
    );
    let instances = finding(&alerts[0])["instances"].clone();
    assert_eq!(instances.as_array().map(Vec::len), Some(1));
    assert_eq!(instances[0]["ec2InstanceId"], sick.ec2_instance_id.as_str());
    assert_eq!(
        instances[0]["healthChecks"],
        json!([{"type": "DAEMON", "status": "IMPAIRED", "reason": "Daemon task: 4af2b3c1 is unhealthy"}])
    );
    assert!(alerts[0].message["email"].as_str().unwrap().contains("DAEMON IMPAIRED"));
    assert_eq!(function.metric("InstanceImpaired", Some("prod")), 1.0);
    assert_eq!(
        function.metric("Recovered", Some("prod")),
        1.0,
        "healthy again by the re-check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_daemon_deployment_fails_then_each_failure_alerts_once_and_a_success_resolves_it() {
    let bed = Bed::new(&NO_GRACE, 1).await;
    let cluster = &bed.nodes[0].cluster_arn;
    let rolling_back = deployment_event("daemon-deployment-rollback-in-progress.json", cluster, "log-router");
    let rollback_failed = deployment_event("daemon-deployment-rollback-failed.json", cluster, "security-agent");
    let pending = deployment_event("daemon-deployment-pending.json", cluster, "log-router");

    // A failed deployment: one alert. A failed rollback (and a pending deployment, which the
    // rule keeps out): one more.
    let (function, answer) = run(&bed, std::slice::from_ref(&rolling_back), 1).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let (_, answer) = run(&bed, &[rollback_failed, pending], 1).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let alerts = bed.published("daemon-deployment-failed").await;
    let subjects: Vec<&str> = alerts.iter().map(|a| a.subject.as_str()).collect();
    assert_eq!(
        subjects,
        vec![
            "ECS daemon log-router deployment failed in prod (123456789012, us-east-1)",
            "ECS daemon security-agent deployment failed in prod (123456789012, us-east-1)",
        ]
    );
    let first = alerts[0].message["email"].as_str().unwrap();
    assert!(first.contains("rolling it back"), "{first}");
    let second = alerts[1].message["email"].as_str().unwrap();
    assert!(second.contains("so did its rollback"), "{second}");
    assert_eq!(finding(&alerts[1])["instances"][0]["daemonName"], "security-agent");
    assert_eq!(function.metric("DaemonDeploymentFailed", Some("prod")), 1.0);

    // The same failure delivered again: nothing new. A success of log-router: resolved.
    let succeeded = deployment_event("daemon-deployment-successful.json", cluster, "log-router");
    let (_, answer) = run(&bed, &[rolling_back, succeeded], 2).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let all = bed.published("daemon-deployment-failed").await;
    let statuses: Vec<&str> = all.iter().map(|p| p.attributes["status"].as_str()).collect();
    assert_eq!(statuses, vec!["firing", "firing", "resolved"], "{all:#?}");
    assert!(
        all[2]
            .subject
            .starts_with("Resolved: ECS daemon log-router deployment failed")
    );
}
