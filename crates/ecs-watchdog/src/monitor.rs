//! One batch of queue messages through parse → filter → re-check → verdict → alert and metrics.
//!
//! Every AWS call is batched (at most [`DESCRIBE_LIMIT`] names a call) and a failed call only
//! leaves the messages that needed it undecided: they go back to the queue, nothing else does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use futures_util::future::{join, join_all};
use serde::Deserialize;
use tracing::{error, info, warn};

use crate::alert::{self, Alert, AlertKind, DaemonChecks, InstanceFinding};
use crate::config::{ClusterFilter, Config, RemediationAction};
use crate::event::{self, AgentDisconnected, DaemonCause, DaemonLost, Parsed, Signal, task_definition_family};
use crate::inventory::{
    ClusterInfo, ClusterInstances, ContainerInstance, Ec2States, InstanceView, TaskFilter, cluster_name, instance_key,
};
use crate::metrics::{Metric, Tally};
use crate::ports::{
    AwsError, Daemons, ErrorKind, FindingSink, Inventory, MetricsSink, Notifier, Quarantine, Quarantined, error_chain,
};
use crate::remediation::{self, ClusterState, RemediationStep, StepOutcome, Target};
use crate::verdict::{self, Deployment, Ec2View, Repeat, Verdict};

/// The most names one describe call takes (ECS clusters, container instances and tasks; we
/// hold `DescribeInstances` to the same).
pub const DESCRIBE_LIMIT: usize = 100;

/// One SQS record: its id (for batch item failures) and its body. Read straight from the
/// event Lambda hands over, leaving out the receipt handle, attributes and the rest, which a
/// batch of thousands would otherwise hold in memory for nothing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    #[serde(rename = "messageId", default)]
    pub id: String,
    #[serde(default)]
    pub body: String,
}

/// The SQS event Lambda hands over, as the monitor reads it.
#[derive(Debug, Deserialize)]
pub struct SqsBatch {
    #[serde(rename = "Records")]
    pub records: Vec<Message>,
}

/// What a batch came to.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Ids of the messages left undecided: the queue delivers them again.
    pub failures: Vec<String>,
    pub tally: Tally,
    pub alerts: Vec<Alert>,
}

/// The doors to the outside the monitor uses.
pub struct Adapters {
    pub inventory: Box<dyn Inventory>,
    pub daemons: Box<dyn Daemons>,
    pub notifier: Box<dyn Notifier>,
    pub quarantine: Box<dyn Quarantine>,
    pub metrics: Box<dyn MetricsSink>,
    /// Remediation steps, in order; empty when remediation is off.
    pub steps: Vec<Box<dyn RemediationStep>>,
    /// Where findings go for custom remediation; empty when none is configured.
    pub findings: Vec<Box<dyn FindingSink>>,
}

/// The monitor with its adapters; built once per Lambda instance, so the tag cache survives
/// warm invocations.
pub struct Monitor {
    config: Config,
    region: String,
    io: Adapters,
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
    Decided(Verdict, Option<Box<InstanceFinding>>),
    Repeat(Repeat),
    Undecided,
}

/// Confirmed verdicts by cluster and kind: their messages and findings.
type Confirmed<'a> = BTreeMap<(&'a str, AlertKind), (Vec<&'a Message>, Vec<InstanceFinding>)>;

/// One cluster's signals with their container instances as ECS describes them now.
struct Described<'a> {
    cluster: &'a str,
    signals: &'a [(&'a Message, Signal)],
    repeats: Vec<Repeat>,
    instances: ClusterInstances,
    /// Keys of the instances whose `DescribeContainerInstances` failed.
    failed_instances: HashSet<String>,
}

/// What the look-ups of one cluster's lost daemons found.
struct DaemonChecksFound {
    /// `(instance key, daemon name)` of the daemons that run again.
    live: HashSet<(String, String)>,
    /// Daemons whose task look-up failed.
    failed: HashSet<String>,
    deployments: HashMap<String, Option<Deployment>>,
    /// Why the Managed Daemons APIs could not be used, if they could not.
    unavailable: Option<AwsError>,
}

impl Described<'_> {
    fn kept(&self) -> impl Iterator<Item = &Signal> {
        kept(self.signals, &self.repeats)
    }

    fn known(&self, container_instance_arn: &str) -> bool {
        !self.failed_instances.contains(instance_key(container_instance_arn))
    }

    /// The EC2 instances to look up: those of agent signals ECS alone would confirm.
    fn ec2_ids(&self) -> impl Iterator<Item = &str> {
        self.kept().filter_map(|s| match s {
            Signal::AgentDisconnected(a) if self.known(&a.container_instance_arn) => {
                verdict::agent_ec2_check(a, self.instances.lookup(&a.container_instance_arn))
            }
            _ => None,
        })
    }

    /// The lost daemons whose instance is not being repaired anyway.
    fn lost_daemons(&self) -> Vec<&DaemonLost> {
        self.kept()
            .filter_map(|s| match s {
                Signal::DaemonLost(d) if self.known(&d.container_instance_arn) => Some(&**d),
                _ => None,
            })
            .filter(|d| verdict::daemon_repairing(self.instances.lookup(&d.container_instance_arn)).is_none())
            .collect()
    }

    /// An outcome per signal, in order, from what the look-ups found.
    fn decide(&self, daemons: &DaemonChecksFound, ec2: &Ec2States, failed_ec2: &HashSet<String>) -> Vec<Outcome> {
        self.signals
            .iter()
            .zip(&self.repeats)
            .map(|((_, signal), repeat)| {
                if *repeat != Repeat::Kept {
                    return Outcome::Repeat(*repeat);
                }
                if !self.known(signal.container_instance_arn()) {
                    return Outcome::Undecided;
                }
                let ecs = self.instances.lookup(signal.container_instance_arn());
                match signal {
                    Signal::AgentDisconnected(agent) => {
                        let ec2_view = match verdict::agent_ec2_check(agent, ecs) {
                            None => Ec2View::NotChecked,
                            Some(id) if failed_ec2.contains(id) => return Outcome::Undecided,
                            Some(id) => ec2.get(id).map_or(Ec2View::NotFound, |state| Ec2View::State(state)),
                        };
                        let verdict = verdict::decide_agent(agent, ecs, ec2_view);
                        let finding = confirmed_finding(&verdict, ecs, |instance| agent_finding(agent, instance));
                        Outcome::Decided(verdict, finding)
                    }
                    Signal::DaemonLost(daemon) => {
                        if let Some(repairing) = verdict::daemon_repairing(ecs) {
                            return Outcome::Decided(repairing, None);
                        }
                        if daemons.failed.contains(&daemon.daemon_name) {
                            return Outcome::Undecided;
                        }
                        let replaced = daemons.live.contains(&live_key(daemon));
                        let deployment = match daemons.deployments.get(daemon.daemon_name.as_str()) {
                            _ if replaced => Deployment::NotInProgress,
                            Some(Some(deployment)) => *deployment,
                            Some(None) => return Outcome::Undecided,
                            None => Deployment::Unknown,
                        };
                        let verdict = verdict::decide_daemon(ecs, replaced, deployment);
                        let finding = confirmed_finding(&verdict, ecs, |instance| daemon_finding(daemon, instance));
                        Outcome::Decided(verdict, finding)
                    }
                }
            })
            .collect()
    }
}

/// The signals that are not repeats of another in the batch.
fn kept<'a>(signals: &'a [(&Message, Signal)], repeats: &'a [Repeat]) -> impl Iterator<Item = &'a Signal> {
    signals
        .iter()
        .zip(repeats)
        .filter(|(_, r)| **r == Repeat::Kept)
        .map(|((_, s), _)| s)
}

/// How a running daemon task is matched to a lost one: its instance and daemon name.
fn live_key(daemon: &DaemonLost) -> (String, String) {
    (
        instance_key(&daemon.container_instance_arn).to_owned(),
        daemon.daemon_name.clone(),
    )
}

impl Monitor {
    pub fn new(config: Config, region: impl Into<String>, io: Adapters) -> Self {
        Self {
            config,
            region: region.into(),
            io,
            tag_cache: Mutex::new(HashMap::new()),
        }
    }

    /// Runs one batch. Never fails as a whole: what cannot be decided is listed in
    /// [`BatchReport::failures`].
    pub async fn process(&self, messages: &[Message]) -> BatchReport {
        let mut report = BatchReport::default();
        let mut rejected = Vec::new();
        let mut by_cluster: BTreeMap<String, Vec<(&Message, Signal)>> = BTreeMap::new();
        for message in messages {
            match event::parse(&message.body) {
                Parsed::Signal(signal) => by_cluster
                    .entry(signal.cluster_arn().to_owned())
                    .or_default()
                    .push((message, signal)),
                Parsed::Ignored(reason) => {
                    info!(message_id = %message.id, %reason, "ignored");
                    report.tally.count(None, Metric::EventsIgnored);
                }
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

        let (unkept, scopes) = join(self.io.quarantine.quarantine(&rejected), self.scopes(by_cluster.keys())).await;
        report
            .tally
            .add(None, Metric::EventsRejected, (rejected.len() - unkept.len()) as u64);
        report.failures.extend(unkept);

        let mut monitored = Vec::new();
        for (cluster, signals) in &by_cluster {
            match scopes.get(cluster) {
                Some(Scope::Monitored) => monitored.push((cluster.as_str(), signals.as_slice())),
                Some(Scope::NotMonitored) => info!(
                    cluster = cluster_name(cluster),
                    messages = signals.len(),
                    "cluster not monitored: ignored"
                ),
                _ => {
                    report
                        .tally
                        .add(Some(cluster_name(cluster)), Metric::CheckErrors, signals.len() as u64);
                    report.failures.extend(signals.iter().map(|(m, _)| m.id.clone()));
                }
            }
        }
        // ECS first, per cluster; then EC2 once for every cluster's instances (it is regional,
        // so a storm across clusters costs one call per 100 instances), beside each cluster's
        // daemon look-ups.
        let described = join_all(
            monitored
                .iter()
                .map(|(cluster, signals)| self.describe(cluster, signals)),
        )
        .await;
        let ec2_ids: Vec<String> = described
            .iter()
            .flat_map(Described::ec2_ids)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let ((ec2, failed_ec2), daemons) = join(
            self.ec2_states(&ec2_ids),
            join_all(described.iter().map(|d| self.daemon_checks(d))),
        )
        .await;

        let mut confirmed: Confirmed<'_> = BTreeMap::new();
        let mut daemon_apis_logged = false;
        let mut deployments_unknown: HashSet<&str> = HashSet::new();
        for (described, daemons) in described.iter().zip(daemons) {
            let (cluster, signals) = (described.cluster, described.signals);
            let outcomes = described.decide(&daemons, &ec2, &failed_ec2);
            let name = cluster_name(cluster);
            if let Some(e) = &daemons.unavailable {
                report.tally.count(Some(name), Metric::DaemonApiUnavailable);
                deployments_unknown.insert(cluster);
                if !std::mem::replace(&mut daemon_apis_logged, true) {
                    warn!(error = %error_chain(e), "Managed Daemons APIs unavailable: deciding lost daemons from tasks and instance state");
                }
            }
            for ((message, signal), outcome) in signals.iter().zip(outcomes) {
                let instance = signal.container_instance_arn();
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
                            Verdict::Confirmed => {
                                let kind = match signal {
                                    Signal::AgentDisconnected(_) => AlertKind::AgentDisconnected,
                                    Signal::DaemonLost(_) => AlertKind::DaemonLost,
                                };
                                let entry = confirmed.entry((cluster, kind)).or_default();
                                entry.0.push(*message);
                                entry.1.extend(finding.map(|f| *f));
                            }
                            Verdict::Recovered => report.tally.count(Some(name), Metric::Recovered),
                            Verdict::Suppressed(_) => report.tally.count(Some(name), Metric::Suppressed),
                            Verdict::Superseded { .. } => {}
                        }
                    }
                }
            }
        }

        if !self.io.steps.is_empty() {
            self.remediate(&mut confirmed, &mut report.tally).await;
        }
        let action = self.action();
        let alerts: Vec<_> = confirmed
            .into_iter()
            .map(|((cluster, kind), (messages, findings))| {
                let checks = DaemonChecks {
                    deployments: !deployments_unknown.contains(cluster),
                };
                let daemons: Vec<Option<String>> = findings.iter().map(|f| f.daemon_name.clone()).collect();
                (
                    alert::alert(kind, &self.region, cluster, findings, checks, &action),
                    messages,
                    daemons,
                )
            })
            .collect();
        let published = join_all(alerts.iter().map(|(alert, _, _)| self.io.notifier.publish(alert))).await;
        for ((alert, messages, daemons), result) in alerts.into_iter().zip(published) {
            match result {
                Ok(()) => {
                    for daemon in &daemons {
                        match daemon {
                            Some(daemon) => report.tally.count_daemon_lost(&alert.cluster_name, daemon),
                            None => report.tally.count(Some(&alert.cluster_name), Metric::AgentDisconnected),
                        }
                    }
                    report.alerts.push(alert);
                }
                Err(e) => {
                    error!(cluster = %alert.cluster_name, kind = alert.kind.as_str(), error = %error_chain(&e), "alert not sent: its messages go back to the queue");
                    report.failures.extend(messages.iter().map(|m| m.id.clone()));
                }
            }
        }

        if !report.alerts.is_empty() {
            let sent = join_all(self.io.findings.iter().map(|sink| sink.send(&report.alerts))).await;
            for e in sent.into_iter().filter_map(Result::err) {
                // The alert is out; a retry would repeat it, so the failure is logged, not retried.
                error!(operation = e.operation, error = %error_chain(&e), "findings not sent");
            }
        }

        let data = report.tally.data();
        if !data.is_empty()
            && let Err(e) = self.io.metrics.publish(&data).await
        {
            // Metrics are best effort: retrying the batch would repeat its alerts.
            error!(error = %error_chain(&e), "metrics not published");
        }
        report
    }

    /// What the monitor does about confirmed failures, as the finding says it.
    fn action(&self) -> String {
        let remediation = self.config.remediation;
        match (remediation.action, remediation.dry_run) {
            (RemediationAction::None, _) => "alerted only: remediation is off".to_owned(),
            (action, false) => format!(
                "{} (at most {}% of a cluster DRAINING at once)",
                action.as_str(),
                remediation.max_percent
            ),
            (action, true) => format!("dry run of {}: nothing was changed", action.as_str()),
        }
    }

    /// Runs the remediation steps on each cluster's confirmed instances that the guard lets
    /// through, and writes what happened to each into its finding.
    async fn remediate(&self, confirmed: &mut Confirmed<'_>, tally: &mut Tally) {
        let clusters: BTreeSet<&str> = confirmed.keys().map(|(cluster, _)| *cluster).collect();
        for cluster in clusters {
            let name = cluster_name(cluster);
            let mut mine: Vec<Target> = Vec::new();
            for finding in confirmed
                .iter()
                .filter(|((c, _), _)| *c == cluster)
                .flat_map(|(_, (_, findings))| findings)
            {
                if !mine
                    .iter()
                    .any(|t| t.container_instance_arn == finding.container_instance_arn)
                {
                    mine.push(Target {
                        container_instance_arn: finding.container_instance_arn.clone(),
                        ec2_instance_id: finding.ec2_instance_id.clone(),
                    });
                }
            }
            let mut said: HashMap<String, Vec<String>> = HashMap::new();
            match self.cluster_state(cluster).await {
                Err(e) => {
                    log_check_error(cluster, &e, mine.len());
                    for target in &mine {
                        let text = format!("not attempted: the cluster could not be counted ({})", e.operation);
                        said.entry(target.container_instance_arn.clone())
                            .or_default()
                            .push(text);
                    }
                }
                Ok(state) => {
                    let max_percent = self.config.remediation.max_percent;
                    let arns: Vec<String> = mine.iter().map(|t| t.container_instance_arn.clone()).collect();
                    let (act, held) = remediation::guard(&state, max_percent, &arns);
                    let limit = remediation::drain_limit(state.total, max_percent);
                    for arn in &held {
                        tally.count(Some(name), Metric::RemediationHeldBack);
                        said.entry(arn.clone()).or_default().push(format!(
                            "held back by the guard: {} of {} instances DRAINING, at most {limit} ({max_percent}%)",
                            state.draining, state.total
                        ));
                    }
                    let mut targets: Vec<Target> = mine
                        .into_iter()
                        .filter(|t| act.contains(&t.container_instance_arn))
                        .collect();
                    for (n, step) in self.io.steps.iter().enumerate() {
                        if targets.is_empty() {
                            break;
                        }
                        let outcomes = step.apply(cluster, &targets, self.config.remediation.dry_run).await;
                        let mut next = Vec::new();
                        for (target, outcome) in targets.into_iter().zip(outcomes) {
                            info!(cluster = name, instance = %target.container_instance_arn, step = step.name(), ?outcome, "remediation");
                            if n == 0 && matches!(outcome, StepOutcome::Done(_)) {
                                tally.count(Some(name), Metric::RemediationStarted);
                            }
                            said.entry(target.container_instance_arn.clone())
                                .or_default()
                                .push(outcome.text());
                            if matches!(
                                outcome,
                                StepOutcome::Done(_) | StepOutcome::AlreadyDone(_) | StepOutcome::WouldDo(_)
                            ) {
                                next.push(target);
                            }
                        }
                        targets = next;
                    }
                }
            }
            for finding in confirmed
                .iter_mut()
                .filter(|((c, _), _)| *c == cluster)
                .flat_map(|(_, (_, findings))| findings)
            {
                if let Some(texts) = said.get(&finding.container_instance_arn) {
                    finding.remediation = Some(texts.join("; "));
                }
            }
        }
    }

    /// The cluster as the guard reads it: one `ListContainerInstances` (every status but
    /// INACTIVE) and the `DescribeContainerInstances` per 100 that give each one's status and
    /// agent.
    async fn cluster_state(&self, cluster: &str) -> Result<ClusterState, AwsError> {
        let arns = self.io.inventory.list_container_instances(cluster).await?;
        let described = join_all(
            arns.chunks(DESCRIBE_LIMIT)
                .map(|chunk| self.io.inventory.describe_container_instances(cluster, chunk)),
        )
        .await;
        let mut state = ClusterState {
            total: 0,
            draining: 0,
            disconnected: Vec::new(),
        };
        for answer in described {
            let ClusterInstances::Found(found) = answer? else {
                continue;
            };
            for instance in found.into_values() {
                match instance.status.as_str() {
                    "ACTIVE" if !instance.agent_connected => {
                        state.total += 1;
                        state.disconnected.push(instance.arn);
                    }
                    "ACTIVE" => state.total += 1,
                    "DRAINING" => {
                        state.total += 1;
                        state.draining += 1;
                    }
                    _ => {}
                }
            }
        }
        Ok(state)
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
        let answers = join_all(chunks.iter().map(|chunk| self.io.inventory.describe_clusters(chunk))).await;
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

    /// The first look at one cluster: which signals repeat others, and its container instances
    /// as ECS describes them now (once for all signal kinds).
    async fn describe<'a>(&self, cluster: &'a str, signals: &'a [(&'a Message, Signal)]) -> Described<'a> {
        let keyed: Vec<((&str, &str), Option<i64>)> = signals
            .iter()
            .map(|(_, signal)| match signal {
                Signal::AgentDisconnected(s) => (("agent", instance_key(&s.container_instance_arn)), s.version),
                Signal::DaemonLost(s) => (
                    (s.daemon_name.as_str(), instance_key(&s.container_instance_arn)),
                    s.version,
                ),
            })
            .collect();
        let repeats = verdict::repeats(&keyed);
        let mut seen = HashSet::new();
        let arns: Vec<String> = kept(signals, &repeats)
            .map(Signal::container_instance_arn)
            .filter(|arn| seen.insert(instance_key(arn)))
            .map(str::to_owned)
            .collect();
        let (instances, failed_instances) = self.container_instances(cluster, &arns).await;
        Described {
            cluster,
            signals,
            repeats,
            instances,
            failed_instances,
        }
    }

    /// Which of a cluster's lost daemons run again, and whether their deployments are under way.
    async fn daemon_checks(&self, described: &Described<'_>) -> DaemonChecksFound {
        let lost = described.lost_daemons();
        let (live, failed) = self.live_daemons(described.cluster, &lost).await;
        let unreplaced: Vec<&DaemonLost> = lost
            .into_iter()
            .filter(|d| !failed.contains(&d.daemon_name) && !live.contains(&live_key(d)))
            .collect();
        let (deployments, unavailable) = self.deployments(described.cluster, &unreplaced).await;
        DaemonChecksFound {
            live,
            failed,
            deployments,
            unavailable,
        }
    }

    /// `DescribeContainerInstances` per 100, concurrently; returns what was found and the keys
    /// of the instances whose call failed.
    async fn container_instances(&self, cluster: &str, arns: &[String]) -> (ClusterInstances, HashSet<String>) {
        let chunks: Vec<&[String]> = arns.chunks(DESCRIBE_LIMIT).collect();
        let answers = join_all(
            chunks
                .iter()
                .map(|chunk| self.io.inventory.describe_container_instances(cluster, chunk)),
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
        let answers = join_all(
            chunks
                .iter()
                .map(|chunk| self.io.inventory.describe_ec2_instances(chunk)),
        )
        .await;
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

    /// Finds which lost daemons run again: `ListTasks` once per daemon family (per instance
    /// when the family is unknown), then `DescribeTasks` per 100, matching on `group`. Returns
    /// the live `(instance key, daemon name)` pairs and the daemons whose look-up failed.
    async fn live_daemons(&self, cluster: &str, lost: &[&DaemonLost]) -> (HashSet<(String, String)>, HashSet<String>) {
        let mut queries: Vec<(TaskFilter, HashSet<&str>)> = Vec::new();
        for daemon in lost {
            let filter = match daemon.task_definition_arn.as_deref().and_then(task_definition_family) {
                Some(family) => TaskFilter::Family(family.to_owned()),
                None => TaskFilter::ContainerInstance(daemon.container_instance_arn.clone()),
            };
            match queries.iter_mut().find(|(f, _)| *f == filter) {
                Some((_, names)) => {
                    names.insert(&daemon.daemon_name);
                }
                None => queries.push((filter, HashSet::from([daemon.daemon_name.as_str()]))),
            }
        }
        let listed = join_all(
            queries
                .iter()
                .map(|(filter, _)| self.io.inventory.list_tasks(cluster, filter)),
        )
        .await;
        let mut failed: HashSet<String> = HashSet::new();
        let mut task_arns: Vec<String> = Vec::new();
        for ((_, names), answer) in queries.iter().zip(listed) {
            match answer {
                Ok(arns) => task_arns.extend(arns),
                Err(e) => {
                    log_check_error(cluster, &e, names.len());
                    failed.extend(names.iter().map(|n| (*n).to_owned()));
                }
            }
        }
        task_arns.sort();
        task_arns.dedup();
        let chunks: Vec<&[String]> = task_arns.chunks(DESCRIBE_LIMIT).collect();
        let described = join_all(
            chunks
                .iter()
                .map(|chunk| self.io.inventory.describe_tasks(cluster, chunk)),
        )
        .await;
        let mut live = HashSet::new();
        for answer in described {
            match answer {
                Ok(tasks) => live.extend(tasks.into_iter().filter(|t| t.is_live()).filter_map(|t| {
                    let name = t.group.as_deref()?.strip_prefix(event::DAEMON_GROUP_PREFIX)?.to_owned();
                    Some((instance_key(t.container_instance_arn.as_deref()?).to_owned(), name))
                })),
                Err(e) => {
                    // Which task belonged to which daemon is unknown without the answer.
                    log_check_error(cluster, &e, lost.len());
                    failed.extend(lost.iter().map(|d| d.daemon_name.clone()));
                }
            }
        }
        (live, failed)
    }

    /// Whether a deployment of each daemon is in progress: `ListDaemons` (only for daemons
    /// whose ARN the events did not give) and one `ListDaemonDeployments` per daemon. `None`
    /// means the look-up failed and may work later; unavailable APIs give
    /// [`Deployment::Unknown`] and the reason.
    async fn deployments(
        &self,
        cluster: &str,
        lost: &[&DaemonLost],
    ) -> (HashMap<String, Option<Deployment>>, Option<AwsError>) {
        let mut results: HashMap<String, Option<Deployment>> = HashMap::new();
        if lost.is_empty() {
            return (results, None);
        }
        let mut arns: HashMap<String, String> = lost
            .iter()
            .filter_map(|d| Some((d.daemon_name.clone(), d.daemon_arn.clone()?)))
            .collect();
        let mut unavailable = None;
        if lost.iter().any(|d| !arns.contains_key(&d.daemon_name)) {
            match self.io.daemons.list_daemons(cluster).await {
                Ok(daemons) => {
                    for daemon in daemons {
                        arns.entry(daemon.name).or_insert(daemon.arn);
                    }
                }
                Err(e) if e.kind == ErrorKind::Unavailable => {
                    let all = lost.iter().map(|d| (d.daemon_name.clone(), Some(Deployment::Unknown)));
                    return (all.collect(), Some(e));
                }
                Err(e) => {
                    log_check_error(cluster, &e, lost.len());
                    results.extend(
                        lost.iter()
                            .filter(|d| !arns.contains_key(&d.daemon_name))
                            .map(|d| (d.daemon_name.clone(), None)),
                    );
                }
            }
        }
        for daemon in lost {
            // A daemon ListDaemons does not know has no deployment.
            results
                .entry(daemon.daemon_name.clone())
                .or_insert(Some(Deployment::NotInProgress));
        }
        let wanted: Vec<(&String, &String)> = arns
            .iter()
            .filter(|(name, _)| results.get(*name) == Some(&Some(Deployment::NotInProgress)))
            .collect();
        let answers = join_all(
            wanted
                .iter()
                .map(|(_, arn)| self.io.daemons.deployment_in_progress(arn)),
        )
        .await;
        for ((name, _), answer) in wanted.into_iter().zip(answers) {
            let result = match answer {
                Ok(true) => Some(Deployment::InProgress),
                Ok(false) => Some(Deployment::NotInProgress),
                Err(e) if e.kind == ErrorKind::Unavailable => {
                    unavailable.get_or_insert(e);
                    Some(Deployment::Unknown)
                }
                Err(e) => {
                    log_check_error(cluster, &e, 1);
                    None
                }
            };
            results.insert(name.clone(), result);
        }
        (results, unavailable)
    }
}

/// The finding of a confirmed verdict, from the instance ECS described.
fn confirmed_finding(
    verdict: &Verdict,
    ecs: InstanceView<'_>,
    finding: impl FnOnce(&ContainerInstance) -> InstanceFinding,
) -> Option<Box<InstanceFinding>> {
    match (verdict, ecs) {
        (Verdict::Confirmed, InstanceView::Found(instance)) => Some(Box::new(finding(instance))),
        _ => None,
    }
}

fn agent_finding(signal: &AgentDisconnected, instance: &ContainerInstance) -> InstanceFinding {
    InstanceFinding {
        ec2_instance_id: instance
            .ec2_instance_id
            .clone()
            .or_else(|| signal.ec2_instance_id.clone()),
        since: signal.since.clone(),
        agent_version: instance.agent_version.clone(),
        ..instance_finding(&signal.container_instance_arn, instance)
    }
}

fn daemon_finding(signal: &DaemonLost, instance: &ContainerInstance) -> InstanceFinding {
    let mut finding = InstanceFinding {
        since: signal.since.clone(),
        daemon_name: Some(signal.daemon_name.clone()),
        task_arn: signal.task_arn.clone(),
        ..instance_finding(&signal.container_instance_arn, instance)
    };
    match &signal.cause {
        DaemonCause::Stopped {
            stop_code,
            stopped_reason,
            exits,
        } => {
            finding.stop_code = stop_code.clone();
            finding.stopped_reason = stopped_reason.clone();
            finding.containers = exits.clone();
        }
        DaemonCause::StartImpaired { failure_type, reason } => {
            finding.failure_type = failure_type.clone();
            finding.reason = reason.clone();
        }
    }
    finding
}

fn instance_finding(container_instance_arn: &str, instance: &ContainerInstance) -> InstanceFinding {
    InstanceFinding {
        container_instance_arn: container_instance_arn.to_owned(),
        ec2_instance_id: instance.ec2_instance_id.clone(),
        availability_zone: instance.availability_zone.clone(),
        running_tasks_count: instance.running_tasks_count,
        ..Default::default()
    }
}

fn same_cluster(info: &ClusterInfo, cluster: &str) -> bool {
    info.arn == cluster || cluster_name(&info.arn) == cluster_name(cluster)
}

fn log_check_error(cluster: &str, error: &AwsError, names: usize) {
    error!(cluster = cluster_name(cluster), operation = error.operation, error = %error_chain(error), names, "check failed: its messages go back to the queue");
}
