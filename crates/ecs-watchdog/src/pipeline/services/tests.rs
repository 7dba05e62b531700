use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::inventory::{CapacityProviderType, ClusterInfo, ClusterInstances, Ec2States, HostStates, TaskStatus};
use crate::seeded::splitmix;

const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";

fn place() -> Place {
    Place::new("123456789012", "eu-west-1")
}

fn instance(n: usize) -> String {
    format!("arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/ci-{n}")
}

fn finding(n: usize, running: i32) -> InstanceFinding {
    InstanceFinding {
        container_instance_arn: instance(n),
        running_tasks_count: running,
        ..Default::default()
    }
}

/// Tasks by container instance, each with its group; counts the calls and fails those asked.
#[derive(Default)]
struct Tasks {
    on: HashMap<String, Vec<(String, Option<String>)>>,
    fail: Vec<&'static str>,
    calls: Mutex<Vec<(&'static str, usize)>>,
}

impl Tasks {
    fn run(mut self, n: usize, groups: &[&str]) -> Self {
        let tasks = groups
            .iter()
            .enumerate()
            .map(|(t, g)| (format!("{CLUSTER}/task-{n}-{t}"), Some((*g).to_owned())))
            .collect();
        self.on.insert(instance(n), tasks);
        self
    }

    fn calls(&self, operation: &str) -> Vec<usize> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|(o, _)| *o == operation).map(|(_, n)| *n).collect()
    }

    fn call(&self, operation: &'static str, n: usize) -> Result<(), AwsError> {
        self.calls.lock().unwrap().push((operation, n));
        match self.fail.contains(&operation) {
            true => Err(AwsError::unavailable(
                operation,
                "AccessDeniedException: not authorized",
            )),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl Inventory for Tasks {
    async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        unreachable!("not a services look-up")
    }
    async fn describe_clusters(&self, _: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        unreachable!("not a services look-up")
    }
    async fn describe_container_instances(&self, _: &str, _: &[String]) -> Result<ClusterInstances, AwsError> {
        unreachable!("not a services look-up")
    }
    async fn describe_ec2_instances(&self, _: &[String]) -> Result<Ec2States, AwsError> {
        unreachable!("not a services look-up")
    }
    async fn describe_managed_nodes(&self, _: &[String]) -> Result<HostStates, AwsError> {
        unreachable!("not a services look-up")
    }
    async fn list_container_instances(&self, _: &str) -> Result<Vec<String>, AwsError> {
        unreachable!("not a services look-up")
    }
    async fn list_tasks(&self, _: &str, filter: &TaskFilter) -> Result<Vec<String>, AwsError> {
        let TaskFilter::ContainerInstance(arn) = filter else {
            panic!("asked by container instance: {filter:?}");
        };
        self.call("ecs:ListTasks", 1)?;
        let tasks = self.on.get(arn).into_iter().flatten();
        Ok(tasks.map(|(task, _)| task.clone()).collect())
    }
    async fn describe_tasks(&self, _: &str, arns: &[String]) -> Result<Vec<Task>, AwsError> {
        assert!(arns.len() <= 100, "at most 100 tasks a call");
        self.call("ecs:DescribeTasks", arns.len())?;
        let all = self
            .on
            .iter()
            .flat_map(|(ci, tasks)| tasks.iter().map(move |t| (ci, t)));
        Ok(all
            .filter(|(_, (task, _))| arns.contains(task))
            .map(|(ci, (task, group))| Task {
                arn: task.clone(),
                group: group.clone(),
                last_status: TaskStatus::Running,
                container_instance_arn: Some(ci.clone()),
            })
            .collect())
    }
    async fn describe_capacity_providers(
        &self,
        _: &[String],
    ) -> Result<HashMap<String, CapacityProviderType>, AwsError> {
        unreachable!("not a services look-up")
    }
}

async fn named(tasks: &Tasks, kind: AlertKind, findings: &mut [InstanceFinding]) {
    name(tasks, &place(), findings.iter_mut().map(|f| (0, CLUSTER, kind, f))).await;
}

fn service(name: &str, tasks: usize) -> ServiceTasks {
    ServiceTasks {
        name: name.to_owned(),
        tasks,
    }
}

#[tokio::test]
async fn when_an_alerted_instance_runs_tasks_then_its_services_are_named_with_their_counts_most_first() {
    // Given an instance running 2 tasks of api, 3 of web, a daemon's and a standalone task.
    let groups = [
        "service:api",
        "service:web",
        "daemon:log-router",
        "service:web",
        "family:batch",
        "service:api",
        "service:web",
    ];
    let tasks = Tasks::default().run(1, &groups);
    let mut findings = [finding(1, 7)];

    named(&tasks, AlertKind::AgentDisconnected, &mut findings).await;

    assert_eq!(findings[0].services, Some(vec![service("web", 3), service("api", 2)]));
    assert_eq!(findings[0].services_omitted, 0);
    assert_eq!(findings[0].services_error, None);
    assert_eq!(tasks.calls("ecs:ListTasks"), [1]);
    assert_eq!(tasks.calls("ecs:DescribeTasks"), [7]);
}

#[tokio::test]
async fn when_instances_are_fine_or_run_nothing_or_their_kind_names_none_then_nothing_is_asked() {
    let tasks = Tasks::default().run(1, &["service:web"]).run(2, &["service:web"]);
    // An instance ECS says runs no task.
    let mut idle = [finding(2, 0)];
    named(&tasks, AlertKind::AgentDisconnected, &mut idle).await;
    // A kind whose alert names no services.
    let mut impaired = [finding(1, 1)];
    named(&tasks, AlertKind::InstanceImpaired, &mut impaired).await;
    // A digest's line of an incident that resolved before it went out.
    let mut resolved = [InstanceFinding {
        resolved: Some("recovered".into()),
        ..finding(1, 1)
    }];
    named(&tasks, AlertKind::AgentDisconnected, &mut resolved).await;
    // A cluster of another account than the adapters reach.
    let mut elsewhere = [finding(1, 1)];
    let other = "arn:aws:ecs:eu-west-1:999999999999:cluster/prod";
    let elsewhere_findings = elsewhere
        .iter_mut()
        .map(|f| (0, other, AlertKind::AgentDisconnected, f));
    name(&tasks, &place(), elsewhere_findings).await;

    assert!(
        tasks.calls.lock().unwrap().is_empty(),
        "{:?}",
        tasks.calls.lock().unwrap()
    );
    for f in idle.iter().chain(&impaired).chain(&resolved).chain(&elsewhere) {
        assert_eq!((&f.services, &f.services_error), (&None, &None));
    }
}

#[tokio::test]
async fn when_two_daemons_are_lost_on_one_instance_then_it_is_listed_once_and_both_name_its_services() {
    let tasks = Tasks::default().run(1, &["service:web", "service:web"]);
    let mut findings = [
        InstanceFinding {
            daemon_name: Some("log-router".into()),
            ..finding(1, 2)
        },
        InstanceFinding {
            daemon_name: Some("metrics".into()),
            ..finding(1, 2)
        },
    ];

    named(&tasks, AlertKind::DaemonLost, &mut findings).await;

    assert_eq!(tasks.calls("ecs:ListTasks").len(), 1);
    for f in &findings {
        assert_eq!(f.services, Some(vec![service("web", 2)]));
    }
}

#[tokio::test]
async fn when_list_tasks_fails_then_the_finding_says_the_services_could_not_be_listed() {
    let tasks = Tasks {
        fail: vec!["ecs:ListTasks"],
        ..Tasks::default().run(1, &["service:web"])
    };
    let mut findings = [finding(1, 1)];

    named(&tasks, AlertKind::AgentDisconnected, &mut findings).await;

    assert_eq!(findings[0].services, None);
    let error = findings[0].services_error.as_deref().expect("the error is told");
    assert!(error.starts_with("ecs:ListTasks failed"), "{error}");
    assert!(error.contains("AccessDeniedException"), "{error}");
    assert!(tasks.calls("ecs:DescribeTasks").is_empty(), "nothing to describe");
}

#[tokio::test]
async fn when_describe_tasks_fails_then_only_the_instances_of_its_tasks_say_so() {
    // Given 150 tasks on instance 1 (two DescribeTasks) and none of a service on 2: no task to
    // describe there, so nothing failed for it.
    let many = vec!["service:web"; 150];
    let tasks = Tasks {
        fail: vec!["ecs:DescribeTasks"],
        ..Tasks::default().run(1, &many).run(2, &[])
    };
    let mut findings = [finding(1, 150), finding(2, 1)];

    named(&tasks, AlertKind::AgentDisconnected, &mut findings).await;

    assert_eq!(tasks.calls("ecs:DescribeTasks"), [100, 50]);
    assert!(
        findings[0]
            .services_error
            .as_deref()
            .is_some_and(|e| e.starts_with("ecs:DescribeTasks failed"))
    );
    assert_eq!(findings[1].services, Some(Vec::new()), "listed, none of a service");
}

/// The contract over many generated instances: one `ListTasks` per distinct instance with
/// tasks, one `DescribeTasks` per 100 tasks, and each finding names exactly the services its
/// instance runs (at most SERVICES_LISTED, the rest counted), their tasks counted, most first.
#[tokio::test]
async fn when_instances_run_any_mix_of_tasks_then_each_names_its_services_within_the_call_budget() {
    for seed in 0..300u64 {
        let mut state = seed;
        let mut below = |n: u64| splitmix(&mut state) % n;
        let instances = 1 + below(12) as usize;
        let mut tasks = Tasks::default();
        let mut findings = Vec::new();
        let mut expected: Vec<HashMap<String, usize>> = Vec::new();
        for n in 0..instances {
            let count = below(40) as usize;
            let groups: Vec<String> = (0..count)
                .map(|_| match below(4) {
                    0 => "daemon:log-router".to_owned(),
                    _ => format!("service:svc-{}", below(15)),
                })
                .collect();
            let mut services: HashMap<String, usize> = HashMap::new();
            for g in &groups {
                if let Some(s) = g.strip_prefix("service:") {
                    *services.entry(s.to_owned()).or_default() += 1;
                }
            }
            expected.push(services);
            tasks = tasks.run(n, &groups.iter().map(String::as_str).collect::<Vec<_>>());
            findings.push(finding(n, count as i32 + 1));
        }
        let total: usize = tasks.on.values().map(Vec::len).sum();

        named(&tasks, AlertKind::AgentDisconnected, &mut findings).await;

        assert_eq!(tasks.calls("ecs:ListTasks").len(), instances, "seed {seed}");
        assert_eq!(
            tasks.calls("ecs:DescribeTasks").len(),
            total.div_ceil(100),
            "seed {seed}"
        );
        for (f, services) in findings.iter().zip(&expected) {
            let listed = f.services.as_ref().expect("listed");
            assert_eq!(listed.len() + f.services_omitted, services.len(), "seed {seed}");
            assert!(listed.len() <= SERVICES_LISTED, "seed {seed}");
            assert!(
                listed.windows(2).all(|w| w[0].tasks >= w[1].tasks),
                "most first: seed {seed}"
            );
            for s in listed {
                assert_eq!(services.get(&s.name), Some(&s.tasks), "seed {seed}");
            }
            // Those left out have no more tasks than the last listed.
            let least = listed.last().map_or(0, |s| s.tasks);
            let omitted = services.iter().filter(|(n, _)| !listed.iter().any(|s| &s.name == *n));
            assert!(omitted.clone().all(|(_, t)| *t <= least), "seed {seed}");
        }
    }
}

/// A huge notice: only the instances its frame can list are asked about, the first in the
/// frame's order (by ARN here: agent-disconnected has no daemon), whatever order they came in.
#[tokio::test]
async fn when_a_notice_has_more_instances_than_its_frame_lists_then_only_the_listable_are_asked() {
    let total = SERVICES_LOOKED_UP + 7;
    let mut findings: Vec<InstanceFinding> = (0..total).rev().map(|n| finding(n, 1)).collect();

    named(&Tasks::default(), AlertKind::AgentDisconnected, &mut findings).await;

    let mut asked: Vec<&str> = findings
        .iter()
        .filter(|f| f.services.is_some())
        .map(|f| f.container_instance_arn.as_str())
        .collect();
    asked.sort_unstable();
    let mut first: Vec<String> = (0..total).map(instance).collect();
    first.sort_unstable();
    first.truncate(SERVICES_LOOKED_UP);
    assert_eq!(asked, first.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The bound holds: even instances that say nothing but their ARN (the smallest line a finding
/// can have) fill SNS's 256 KiB before the frame lists [`SERVICES_LOOKED_UP`] of them.
#[test]
fn when_the_frame_lists_the_most_instances_it_can_then_they_are_no_more_than_are_looked_up() {
    let many: Vec<InstanceFinding> = (0..3 * SERVICES_LOOKED_UP).map(|n| finding(n, 1)).collect();
    let checks = crate::alert::DaemonChecks { deployments: true };
    let alert = crate::alert::alert(
        AlertKind::AgentDisconnected,
        &place(),
        CLUSTER,
        many,
        checks,
        "x",
        crate::alert::Facts::at(0),
    );
    let finding: serde_json::Value = serde_json::from_str(&alert.default).unwrap();
    let listed = finding["instances"].as_array().unwrap().len();
    assert!(listed <= SERVICES_LOOKED_UP, "the frame lists {listed}");
    assert!(listed > 0);
}
