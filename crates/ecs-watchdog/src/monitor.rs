//! One batch of queue messages through parse → filter → re-check → verdict → alert and metrics.
//!
//! Every AWS call is batched (at most [`DESCRIBE_LIMIT`] names a call) and a failed call only
//! leaves the messages that needed it undecided: they go back to the queue, nothing else does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use futures_util::future::{join, join_all};
use tracing::{error, info, warn};

use crate::alert::{self, Alert, InstanceFinding};
use crate::config::{ClusterFilter, Config};
use crate::event::{self, AgentDisconnected, Parsed, Signal};
use crate::inventory::{
    ClusterInfo, ClusterInstances, ContainerInstance, Ec2States, InstanceView, cluster_name, instance_key,
};
use crate::metrics::{Metric, Tally};
use crate::ports::{AwsError, Inventory, MetricsSink, Notifier, Quarantine, Quarantined, error_chain};
use crate::verdict::{self, AgentVerdict, Ec2View, Repeat};

/// The most names one describe call takes (ECS clusters and container instances; we hold
/// `DescribeInstances` to the same).
pub const DESCRIBE_LIMIT: usize = 100;

/// One SQS record: its id (for batch item failures) and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// What a batch came to.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Ids of the messages left undecided: the queue delivers them again.
    pub failures: Vec<String>,
    pub tally: Tally,
    pub alerts: Vec<Alert>,
}

/// The monitor with its adapters; built once per Lambda instance, so the tag cache survives
/// warm invocations.
pub struct Monitor {
    config: Config,
    region: String,
    inventory: Box<dyn Inventory>,
    notifier: Box<dyn Notifier>,
    quarantine: Box<dyn Quarantine>,
    metrics: Box<dyn MetricsSink>,
    tag_cache: Mutex<HashMap<String, (bool, Instant)>>,
}

/// Where a cluster stands with the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Monitored,
    NotMonitored,
    /// The tag look-up failed: its messages stay undecided.
    Unknown,
}

/// The outcome for one message of a cluster's check.
enum Outcome {
    Decided(AgentVerdict, Option<InstanceFinding>),
    Repeat(Repeat),
    Undecided,
}

impl Monitor {
    pub fn new(
        config: Config,
        region: impl Into<String>,
        inventory: Box<dyn Inventory>,
        notifier: Box<dyn Notifier>,
        quarantine: Box<dyn Quarantine>,
        metrics: Box<dyn MetricsSink>,
    ) -> Self {
        Self {
            config,
            region: region.into(),
            inventory,
            notifier,
            quarantine,
            metrics,
            tag_cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs one batch. Never fails as a whole: what cannot be decided is listed in
    /// [`BatchReport::failures`].
    pub async fn process(&self, messages: &[Message]) -> BatchReport {
        let mut report = BatchReport::default();
        let mut rejected = Vec::new();
        let mut by_cluster: BTreeMap<String, Vec<(&Message, AgentDisconnected)>> = BTreeMap::new();
        for message in messages {
            match event::parse(&message.body) {
                Parsed::Signal(Signal::AgentDisconnected(signal)) => {
                    by_cluster
                        .entry(signal.cluster_arn.clone())
                        .or_default()
                        .push((message, signal));
                }
                Parsed::Ignored(reason) => info!(message_id = %message.id, %reason, "ignored"),
                Parsed::Rejected(reason) => {
                    warn!(message_id = %message.id, %reason, "rejected: quarantining in the dead-letter queue");
                    rejected.push(Quarantined {
                        message_id: message.id.clone(),
                        body: message.body.clone(),
                        reason: reason.to_string(),
                    });
                }
            }
        }

        let (unkept, scopes) = join(self.quarantine.quarantine(&rejected), self.scopes(by_cluster.keys())).await;
        report
            .tally
            .add(None, Metric::EventsRejected, (rejected.len() - unkept.len()) as u64);
        report.failures.extend(unkept);

        let checks = by_cluster
            .iter()
            .filter_map(|(cluster, signals)| match scopes.get(cluster) {
                Some(Scope::Monitored) => {
                    Some(async move { (cluster, signals, self.check_agents(cluster, signals).await) })
                }
                Some(Scope::NotMonitored) => {
                    info!(
                        cluster = cluster_name(cluster),
                        messages = signals.len(),
                        "cluster not monitored: ignored"
                    );
                    None
                }
                _ => {
                    report
                        .tally
                        .add(Some(cluster_name(cluster)), Metric::CheckErrors, signals.len() as u64);
                    report.failures.extend(signals.iter().map(|(m, _)| m.id.clone()));
                    None
                }
            });
        let checked: Vec<_> = join_all(checks.collect::<Vec<_>>()).await;

        let mut confirmed: Vec<(&String, Vec<&Message>, Vec<InstanceFinding>)> = Vec::new();
        for (cluster, signals, outcomes) in checked {
            let name = cluster_name(cluster);
            let mut messages_confirmed = Vec::new();
            let mut findings = Vec::new();
            for ((message, signal), outcome) in signals.iter().zip(outcomes) {
                let instance = signal.container_instance_arn.as_str();
                match outcome {
                    Outcome::Repeat(repeat) => {
                        info!(message_id = %message.id, cluster = name, instance, ?repeat, "repeat of an event in this batch")
                    }
                    Outcome::Undecided => {
                        report.tally.count(Some(name), Metric::CheckErrors);
                        report.failures.push(message.id.clone());
                    }
                    Outcome::Decided(verdict, finding) => {
                        info!(message_id = %message.id, cluster = name, instance, ?verdict, "decided");
                        match verdict {
                            AgentVerdict::Confirmed => {
                                messages_confirmed.push(*message);
                                findings.extend(finding);
                            }
                            AgentVerdict::Recovered => report.tally.count(Some(name), Metric::Recovered),
                            AgentVerdict::Suppressed(_) => report.tally.count(Some(name), Metric::Suppressed),
                            AgentVerdict::Superseded { .. } => {}
                        }
                    }
                }
            }
            if !findings.is_empty() {
                confirmed.push((cluster, messages_confirmed, findings));
            }
        }

        let alerts: Vec<_> = confirmed
            .into_iter()
            .map(|(cluster, messages, findings)| (alert::agent_alert(&self.region, cluster, findings), messages))
            .collect();
        let published = join_all(alerts.iter().map(|(alert, _)| self.notifier.publish(alert))).await;
        for ((alert, messages), result) in alerts.into_iter().zip(published) {
            match result {
                Ok(()) => {
                    report.tally.add(
                        Some(&alert.cluster_name),
                        Metric::AgentDisconnected,
                        messages.len() as u64,
                    );
                    report.alerts.push(alert);
                }
                Err(e) => {
                    error!(cluster = %alert.cluster_name, error = %error_chain(&e), "alert not sent: its messages go back to the queue");
                    report.failures.extend(messages.iter().map(|m| m.id.clone()));
                }
            }
        }

        let data = report.tally.data();
        if !data.is_empty()
            && let Err(e) = self.metrics.publish(&data).await
        {
            // Metrics are best effort: retrying the batch would repeat its alerts.
            error!(error = %error_chain(&e), "metrics not published");
        }
        report
    }

    /// Decides, for each cluster, whether it is monitored; tag look-ups are cached.
    async fn scopes<'a>(&self, clusters: impl Iterator<Item = &'a String>) -> HashMap<String, Scope> {
        let ClusterFilter::Tagged { key, value } = &self.config.cluster_filter else {
            return clusters.map(|c| (c.clone(), Scope::Monitored)).collect();
        };
        let mut scopes = HashMap::new();
        let mut unknown = Vec::new();
        {
            let cache = self.tag_cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for cluster in clusters {
                match cache.get(cluster) {
                    Some((monitored, at)) if at.elapsed() < self.config.tag_cache_ttl => {
                        scopes.insert(
                            cluster.clone(),
                            if *monitored {
                                Scope::Monitored
                            } else {
                                Scope::NotMonitored
                            },
                        );
                    }
                    _ => unknown.push(cluster.clone()),
                }
            }
        }
        let chunks: Vec<&[String]> = unknown.chunks(DESCRIBE_LIMIT).collect();
        let answers = join_all(chunks.iter().map(|chunk| self.inventory.describe_clusters(chunk))).await;
        let mut cache = self.tag_cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (chunk, answer) in chunks.into_iter().zip(answers) {
            match answer {
                Ok(found) => {
                    for cluster in chunk {
                        let monitored = found.iter().any(|info| {
                            same_cluster(info, cluster) && info.tags.iter().any(|(k, v)| k == key && v == value)
                        });
                        cache.insert(cluster.clone(), (monitored, Instant::now()));
                        scopes.insert(
                            cluster.clone(),
                            if monitored {
                                Scope::Monitored
                            } else {
                                Scope::NotMonitored
                            },
                        );
                    }
                }
                Err(e) => {
                    error!(error = %error_chain(&e), clusters = chunk.len(), "cluster tags unknown: their messages go back to the queue");
                    scopes.extend(chunk.iter().map(|c| (c.clone(), Scope::Unknown)));
                }
            }
        }
        scopes
    }

    /// Re-checks one cluster's agent-disconnected events; one outcome per signal, in order.
    async fn check_agents(&self, cluster: &str, signals: &[(&Message, AgentDisconnected)]) -> Vec<Outcome> {
        let keyed: Vec<(&str, Option<i64>)> = signals
            .iter()
            .map(|(_, s)| (instance_key(&s.container_instance_arn), s.version))
            .collect();
        let repeats = verdict::repeats(&keyed);

        let mut arns: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for ((_, signal), repeat) in signals.iter().zip(&repeats) {
            if *repeat == Repeat::Kept && seen.insert(instance_key(&signal.container_instance_arn)) {
                arns.push(signal.container_instance_arn.clone());
            }
        }
        let (instances, failed_instances) = self.container_instances(cluster, &arns).await;

        let wanted: Vec<String> = signals
            .iter()
            .zip(&repeats)
            .filter(|(_, repeat)| **repeat == Repeat::Kept)
            .filter(|((_, signal), _)| !failed_instances.contains(instance_key(&signal.container_instance_arn)))
            .filter_map(|((_, signal), _)| {
                verdict::agent_ec2_check(signal, instances.lookup(&signal.container_instance_arn)).map(str::to_owned)
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let (ec2, failed_ec2) = self.ec2_states(&wanted).await;

        signals
            .iter()
            .zip(repeats)
            .map(|((_, signal), repeat)| {
                if repeat != Repeat::Kept {
                    return Outcome::Repeat(repeat);
                }
                if failed_instances.contains(instance_key(&signal.container_instance_arn)) {
                    return Outcome::Undecided;
                }
                let ecs = instances.lookup(&signal.container_instance_arn);
                let ec2_view = match verdict::agent_ec2_check(signal, ecs) {
                    None => Ec2View::NotChecked,
                    Some(id) if failed_ec2.contains(id) => return Outcome::Undecided,
                    Some(id) => ec2.get(id).map_or(Ec2View::NotFound, |state| Ec2View::State(state)),
                };
                let verdict = verdict::decide_agent(signal, ecs, ec2_view);
                let finding = match (&verdict, ecs) {
                    (AgentVerdict::Confirmed, InstanceView::Found(instance)) => Some(finding(signal, instance)),
                    _ => None,
                };
                Outcome::Decided(verdict, finding)
            })
            .collect()
    }

    /// `DescribeContainerInstances` per 100, concurrently; returns what was found and the keys
    /// of the instances whose call failed.
    async fn container_instances(&self, cluster: &str, arns: &[String]) -> (ClusterInstances, HashSet<String>) {
        let chunks: Vec<&[String]> = arns.chunks(DESCRIBE_LIMIT).collect();
        let answers = join_all(
            chunks
                .iter()
                .map(|chunk| self.inventory.describe_container_instances(cluster, chunk)),
        )
        .await;
        let mut found = HashMap::new();
        let mut failed = HashSet::new();
        for (chunk, answer) in chunks.into_iter().zip(answers) {
            match answer {
                Ok(ClusterInstances::ClusterGone) => return (ClusterInstances::ClusterGone, HashSet::new()),
                Ok(ClusterInstances::Found(part)) => found.extend(part),
                Err(e) => {
                    log_check_error(cluster, &e, chunk.len());
                    failed.extend(chunk.iter().map(|arn| instance_key(arn).to_owned()));
                }
            }
        }
        (ClusterInstances::Found(found), failed)
    }

    /// `DescribeInstances` per 100, concurrently; returns the states and the ids whose call failed.
    async fn ec2_states(&self, ids: &[String]) -> (Ec2States, HashSet<String>) {
        let chunks: Vec<&[String]> = ids.chunks(DESCRIBE_LIMIT).collect();
        let answers = join_all(chunks.iter().map(|chunk| self.inventory.describe_ec2_instances(chunk))).await;
        let mut states = Ec2States::new();
        let mut failed = HashSet::new();
        for (chunk, answer) in chunks.into_iter().zip(answers) {
            match answer {
                Ok(part) => states.extend(part),
                Err(e) => {
                    log_check_error("-", &e, chunk.len());
                    failed.extend(chunk.iter().cloned());
                }
            }
        }
        (states, failed)
    }
}

fn finding(signal: &AgentDisconnected, instance: &ContainerInstance) -> InstanceFinding {
    InstanceFinding {
        container_instance_arn: signal.container_instance_arn.clone(),
        ec2_instance_id: instance
            .ec2_instance_id
            .clone()
            .or_else(|| signal.ec2_instance_id.clone()),
        availability_zone: instance.availability_zone.clone(),
        since: signal.since.clone(),
        running_tasks_count: instance.running_tasks_count,
        agent_version: instance.agent_version.clone(),
    }
}

fn same_cluster(info: &ClusterInfo, cluster: &str) -> bool {
    info.arn == cluster || cluster_name(&info.arn) == cluster_name(cluster)
}

fn log_check_error(cluster: &str, error: &AwsError, names: usize) {
    error!(cluster = cluster_name(cluster), operation = error.operation, error = %error_chain(error), names, "check failed: its messages go back to the queue");
}
