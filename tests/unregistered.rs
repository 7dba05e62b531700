//! `instance-not-registered` end to end: the real `sweep` binary against the emulator, a cluster
//! whose Auto Scaling capacity provider launched instances of which some never registered.

use serde_json::{Value, json};
use watchdog_tests::bed::{Bed, finding};
use watchdog_tests::emulator::Published;
use watchdog_tests::runtime::{Function, sweep_binary};

const KIND: &str = "instance-not-registered";

/// The last value of a gauge the binary printed for `cluster`; `None` if never printed.
fn gauge(function: &Function, name: &str, cluster: &str) -> Option<f64> {
    function
        .emf()
        .iter()
        .rev()
        .filter(|d| d["ClusterName"] == cluster)
        .find_map(|d| d.get(name).and_then(Value::as_f64))
}

/// An Auto Scaling group `web` of four instances behind the cluster's capacity provider
/// `cp-web`: two registered, one launched 15 minutes ago and never registered, one launched 2
/// minutes ago and not registered yet. Returns the bed, the late one and the young one.
async fn bed() -> (Bed, String, String) {
    let bed = Bed::new(&[("ClusterGauges", "true")], 0).await;
    let (group, ids) = bed.fleet.launch_group(&bed.emulator.sdk, "web", 4).await;
    bed.fleet.capacity_provider(&bed.cluster, "cp-web", &group).await;
    let (late, young) = (ids[2].clone(), ids[3].clone());
    for id in &ids[..3] {
        bed.emulator.launched_ago(id, 15 * 60).await;
    }
    bed.emulator.launched_ago(&young, 2 * 60).await;
    for id in &ids[..2] {
        bed.fleet.register(&bed.cluster, id).await;
    }
    (bed, late, young)
}

fn firing(published: &[Published]) -> Vec<&Published> {
    published
        .iter()
        .filter(|p| p.attributes["status"] == "firing")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_instance_of_the_group_never_registers_then_the_sweep_alerts_it_with_the_causes_and_resolves_it_once_registered()
 {
    let (bed, late, young) = bed().await;
    let function = Function::start_binary(&sweep_binary(), &bed.pipeline.sweep_env(&bed.emulator)).await;

    // The first sweep alerts the instance launched 15 minutes ago, and only it.
    function.invoke(&json!({})).await.expect("the sweep runs");
    let published = bed.published(KIND).await;
    let alerts = firing(&published);
    assert_eq!(alerts.len(), 1, "{published:#?}");
    let told = finding(alerts[0]);
    let ids: Vec<&str> = told["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|i| i["ec2InstanceId"].as_str())
        .collect();
    assert_eq!(
        ids,
        [late.as_str()],
        "the young {young} is within REGISTER_WITHIN_MINUTES"
    );
    assert_eq!(
        alerts[0].subject,
        "EC2 instance not registered with ECS on 1 instance in prod (123456789012, us-east-1)"
    );
    let email = alerts[0].message["email"].as_str().expect("an email key");
    for cause in [
        "Auto Scaling group web (capacity provider cp-web)",
        "instance profile",
        "ECS_CLUSTER=prod",
        "VPC endpoints or a NAT gateway",
        "The AMI's agent",
    ] {
        assert!(email.contains(cause), "{cause:?} not in:\n{email}");
    }
    assert_eq!(gauge(&function, "UnregisteredInstances", "prod"), Some(1.0));

    // A second sweep tells nothing new: the incident is open and alerted.
    function.invoke(&json!({})).await.expect("the sweep runs");
    assert_eq!(bed.published(KIND).await.len(), 1);

    // It registers: the next sweep resolves it, and the gauge says none.
    bed.fleet.register(&bed.cluster, &late).await;
    function.clear_output();
    function.invoke(&json!({})).await.expect("the sweep runs");
    let published = bed.published(KIND).await;
    let resolved: Vec<&Published> = published
        .iter()
        .filter(|p| p.attributes["status"] == "resolved")
        .collect();
    assert_eq!((published.len(), resolved.len()), (2, 1), "{published:#?}");
    assert_eq!(gauge(&function, "UnregisteredInstances", "prod"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_cluster_has_no_capacity_provider_then_the_look_costs_no_auto_scaling_call() {
    let bed = Bed::new(&[("ClusterGauges", "true")], 2).await;
    let function = Function::start_binary(&sweep_binary(), &bed.pipeline.sweep_env(&bed.emulator)).await;
    bed.emulator.reset_calls().await;

    function.invoke(&json!({})).await.expect("the sweep runs");

    let calls = bed.emulator.calls().await;
    for operation in [
        "autoscaling:DescribeAutoScalingGroups",
        "ecs:DescribeCapacityProviders",
        "ec2:DescribeInstances",
    ] {
        assert_eq!(calls.get(operation), None, "{operation}: {calls:?}");
    }
    assert_eq!(gauge(&function, "UnregisteredInstances", "prod"), Some(0.0));
    assert!(bed.published(KIND).await.is_empty());
}
