//! The one daemon task look-up of both Lambdas, over many generated clusters.

use super::super::batched::DESCRIBE_LIMIT;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::inventory::{ClusterInfo, Task, TaskStatus};
use crate::seeded::splitmix;

const CLUSTER: &str = "arn:aws:ecs:eu-west-1:1:cluster/prod";

/// Tasks by daemon name; the daemons whose `ListTasks` fails; the task whose `DescribeTasks`
/// call fails, and what each call was asked.
#[derive(Default)]
struct Tasks {
    by_daemon: HashMap<String, Vec<Task>>,
    unlisted: HashSet<String>,
    poison: Option<String>,
    /// `ListTasks` answers every task of the cluster, whatever the daemon asked about.
    ignores_filter: bool,
    listed: Mutex<usize>,
    described: Mutex<Vec<(Vec<String>, bool)>>,
}

#[async_trait]
impl Inventory for Tasks {
    async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        unreachable!("not asked")
    }
    async fn describe_clusters(&self, _: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        unreachable!("not asked")
    }
    async fn describe_container_instances(&self, _: &str, _: &[String]) -> Result<ClusterInstances, AwsError> {
        unreachable!("not asked")
    }
    async fn describe_ec2_instances(&self, _: &[String]) -> Result<Ec2States, AwsError> {
        unreachable!("not asked")
    }
    async fn describe_managed_nodes(&self, _: &[String]) -> Result<HostStates, AwsError> {
        unreachable!("not asked")
    }
    async fn list_container_instances(&self, _: &str) -> Result<Vec<String>, AwsError> {
        unreachable!("not asked")
    }
    async fn list_tasks(&self, _: &str, filter: &TaskFilter) -> Result<Vec<String>, AwsError> {
        *self.listed.lock().unwrap() += 1;
        let TaskFilter::Daemon(name) = filter else {
            unreachable!("asked by daemon name")
        };
        if self.unlisted.contains(name) {
            return Err(AwsError::new("ecs:ListTasks", "throttled"));
        }
        let listed: Vec<&Task> = match self.ignores_filter {
            true => self.by_daemon.values().flatten().collect(),
            false => self.by_daemon.get(name).into_iter().flatten().collect(),
        };
        Ok(listed.into_iter().map(|t| t.arn.clone()).collect())
    }
    async fn describe_tasks(&self, _: &str, arns: &[String]) -> Result<Vec<Task>, AwsError> {
        let fails = self.poison.as_ref().is_some_and(|p| arns.contains(p));
        self.described.lock().unwrap().push((arns.to_vec(), fails));
        if fails {
            return Err(AwsError::new("ecs:DescribeTasks", "throttled"));
        }
        let all = self.by_daemon.values().flatten();
        Ok(all.filter(|t| arns.contains(&t.arn)).cloned().collect())
    }
    async fn describe_capacity_providers(
        &self,
        _: &[String],
    ) -> Result<HashMap<String, crate::inventory::CapacityProviderType>, AwsError> {
        unreachable!("not asked")
    }
}

/// Up to 5 daemons with up to 150 tasks each (so `DescribeTasks` takes several calls), on 20
/// instances, some stopped, some of another group; maybe a daemon whose listing fails and a
/// task whose describe call fails.
fn cluster(seed: u64) -> Tasks {
    let mut state = seed;
    let mut next = |n: u64| splitmix(&mut state) % n;
    let mut tasks = Tasks::default();
    for d in 0..=next(5) {
        let name = format!("d{d}");
        let count = next(151);
        let made = (0..count).map(|t| Task {
            arn: format!("arn:aws:ecs:eu-west-1:1:task/prod/{name}-{t:03}"),
            group: Some(match next(10) {
                0 => "service:web".to_owned(),
                _ => format!("daemon:{name}"),
            }),
            last_status: match next(3) {
                0 => TaskStatus::Running,
                1 => TaskStatus::Pending,
                _ => TaskStatus::Stopped,
            },
            container_instance_arn: Some(format!("arn:aws:ecs:eu-west-1:1:container-instance/prod/i{}", next(20))),
        });
        tasks.by_daemon.insert(name.clone(), made.collect());
        if next(6) == 0 {
            tasks.unlisted.insert(name);
        }
    }
    tasks.ignores_filter = next(4) == 0;
    if next(3) == 0 {
        let all: Vec<&Task> = tasks.by_daemon.values().flatten().collect();
        tasks.poison = (!all.is_empty()).then(|| all[next(all.len() as u64) as usize].arn.clone());
    }
    tasks
}

/// What each daemon is, from the generated tasks and what failed: none when its listing failed
/// or a describe call that failed carried a task it listed (with the filter ignored, any task);
/// else the instances with a live task of its group.
fn expected(tasks: &Tasks, failed_calls: &[Vec<String>]) -> HashMap<String, Option<HashSet<String>>> {
    tasks
        .by_daemon
        .iter()
        .map(|(name, own)| {
            let listed: Vec<&Task> = match tasks.ignores_filter {
                true => tasks.by_daemon.values().flatten().collect(),
                false => own.iter().collect(),
            };
            let failed = tasks.unlisted.contains(name)
                || listed
                    .iter()
                    .any(|t| failed_calls.iter().flatten().any(|arn| *arn == t.arn));
            let on = own
                .iter()
                .filter(|t| t.is_live() && t.group.as_deref() == Some(format!("daemon:{name}").as_str()))
                .filter_map(|t| Some(instance_key(t.container_instance_arn.as_deref()?).to_owned()));
            (name.clone(), (!failed).then(|| on.collect()))
        })
        .collect()
}

/// For any cluster: each daemon's instances exactly, unknown only where a call that covered it
/// failed, one `ListTasks` per daemon and one `DescribeTasks` per 100 listed tasks.
#[tokio::test]
async fn when_the_daemons_tasks_are_looked_up_then_each_is_known_exactly_or_unknown_only_where_a_call_failed() {
    for seed in 0..300 {
        let tasks = cluster(seed);
        let names: Vec<&str> = tasks.by_daemon.keys().map(String::as_str).collect();
        let found = daemon_tasks(&tasks, CLUSTER, &names).await;
        let described = tasks.described.lock().unwrap().clone();
        let failed_calls: Vec<Vec<String>> = described.iter().filter(|(_, f)| *f).map(|(a, _)| a.clone()).collect();
        for (name, want) in expected(&tasks, &failed_calls) {
            assert_eq!(found.on(&name).cloned(), want, "seed {seed}, daemon {name}");
        }
        // Distinct tasks listed: with the filter ignored, every task once a daemon's listing worked.
        let answered = tasks
            .by_daemon
            .iter()
            .filter(|(name, _)| !tasks.unlisted.contains(*name));
        let listed: usize = match tasks.ignores_filter {
            true if answered.clone().next().is_some() => tasks.by_daemon.values().map(Vec::len).sum(),
            true => 0,
            false => answered.map(|(_, own)| own.len()).sum(),
        };
        assert_eq!(*tasks.listed.lock().unwrap(), names.len(), "seed {seed}");
        assert_eq!(described.len(), listed.div_ceil(DESCRIBE_LIMIT), "seed {seed}");
        assert!(described.iter().all(|(a, _)| a.len() <= DESCRIBE_LIMIT), "seed {seed}");
    }
}

/// The sweep asks about every daemon `ListDaemons` lists: one it does not list is deleted and
/// nowhere missing; with no listing at all, every lost daemon is unknown.
#[test]
fn when_a_lost_daemon_was_not_asked_about_then_it_is_nowhere_missing_and_without_a_listing_unknown() {
    let tasks = DaemonTasks {
        running_on: [("log-router".to_owned(), HashSet::from(["a".to_owned()]))].into(),
        failed: HashSet::from(["metrics".to_owned()]),
    };
    let lost = |instance, name| DaemonOn {
        instance,
        name,
        arn: None,
    };
    let lost = [
        lost("a", "log-router"),
        lost("b", "log-router"),
        lost("b", "metrics"),
        lost("b", "deleted"),
    ];
    let checks = DaemonChecks::new(&lost, Some(&tasks));
    let live = |i: &str, n: &str| checks.live.contains(&(i.to_owned(), n.to_owned()));
    assert!(live("a", "log-router") && !live("b", "log-router"));
    assert!(live("b", "deleted"), "a deleted daemon is nowhere missing");
    assert_eq!(checks.failed, HashSet::from(["metrics".to_owned()]));
    let unlisted = DaemonChecks::new(&lost, None);
    assert!(unlisted.live.is_empty());
    assert_eq!(
        unlisted.failed.len(),
        3,
        "every lost daemon unknown: {:?}",
        unlisted.failed
    );
}
