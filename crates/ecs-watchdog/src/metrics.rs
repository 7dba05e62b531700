//! Metric data: what a batch counted, as CloudWatch data points and as Embedded Metric Format.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The counts the monitor publishes (unit `Count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    AgentDisconnected,
    DaemonLost,
    InstanceImpaired,
    DaemonDeploymentFailed,
    InstanceNotRegistered,
    AgentFlapping,
    Recovered,
    Suppressed,
    EventsRejected,
    EventsIgnored,
    CheckErrors,
    DaemonApiUnavailable,
    RemediationStarted,
    RemediationHeldBack,
    IncidentsOpened,
    IncidentsResolved,
    /// Incidents whose alert a silence held (`ecs-watchdog-silence-until`).
    Silenced,
    /// Instance-impaired incidents folded into their instance's agent-disconnected incident.
    Folded,
    /// Gauges, per cluster only: what a look at the cluster found now.
    OpenIncidents,
    DisconnectedAgents,
    /// Also per `DaemonName`.
    InstancesWithoutDaemon,
    MonitoredInstances,
    /// EC2 instances of a cluster's Auto Scaling groups, InService for longer than
    /// `REGISTER_WITHIN_MINUTES`, with no container instance in the cluster.
    UnregisteredInstances,
    /// The sweep's heartbeat, no dimension: its absence is the alarm.
    SweepCompleted,
    /// A call the sweep could not make; per `Operation` and in aggregate.
    MonitorImpaired,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::AgentDisconnected => "AgentDisconnected",
            Metric::DaemonLost => "DaemonLost",
            Metric::InstanceImpaired => "InstanceImpaired",
            Metric::DaemonDeploymentFailed => "DaemonDeploymentFailed",
            Metric::InstanceNotRegistered => "InstanceNotRegistered",
            Metric::AgentFlapping => "AgentFlapping",
            Metric::Recovered => "Recovered",
            Metric::Suppressed => "Suppressed",
            Metric::EventsRejected => "EventsRejected",
            Metric::EventsIgnored => "EventsIgnored",
            Metric::CheckErrors => "CheckErrors",
            Metric::DaemonApiUnavailable => "DaemonApiUnavailable",
            Metric::RemediationStarted => "RemediationStarted",
            Metric::RemediationHeldBack => "RemediationHeldBack",
            Metric::IncidentsOpened => "IncidentsOpened",
            Metric::IncidentsResolved => "IncidentsResolved",
            Metric::Silenced => "Silenced",
            Metric::Folded => "Folded",
            Metric::OpenIncidents => "OpenIncidents",
            Metric::DisconnectedAgents => "DisconnectedAgents",
            Metric::InstancesWithoutDaemon => "InstancesWithoutDaemon",
            Metric::MonitoredInstances => "MonitoredInstances",
            Metric::UnregisteredInstances => "UnregisteredInstances",
            Metric::SweepCompleted => "SweepCompleted",
            Metric::MonitorImpaired => "MonitorImpaired",
        }
    }
}

pub const CLUSTER_DIMENSION: &str = "ClusterName";
pub const DAEMON_DIMENSION: &str = "DaemonName";
pub const OPERATION_DIMENSION: &str = "Operation";
pub const ACCOUNT_DIMENSION: &str = "Account";
pub const REGION_DIMENSION: &str = "Region";

/// The gauges: what a look found now, not how often something happened.
const GAUGES: [Metric; 5] = [
    Metric::OpenIncidents,
    Metric::DisconnectedAgents,
    Metric::InstancesWithoutDaemon,
    Metric::MonitoredInstances,
    Metric::UnregisteredInstances,
];

/// A member account's data, named by `Account` and `Region` (DESIGN §10) so two clusters of one
/// name in two accounts stay apart. Counters without a dimension stay without: the stack's
/// alarms sum them over every account. Gauges without one get the two: a gauge is one look at
/// one place, and the alarms' `Minimum` across places would hide the worst one.
pub fn placed(data: &[MetricDatum], account: &str, region: &str) -> Vec<MetricDatum> {
    data.iter()
        .cloned()
        .map(|mut datum| {
            let gauge = GAUGES.iter().any(|g| g.name() == datum.name);
            if !datum.dimensions.is_empty() || gauge {
                datum.dimensions.push((ACCOUNT_DIMENSION, account.to_owned()));
                datum.dimensions.push((REGION_DIMENSION, region.to_owned()));
            }
            datum
        })
        .collect()
}

/// The data without per-cluster gauges (`CLUSTER_GAUGES=false`, the default). A gauge is
/// published every run, zeros included, so per cluster it is one CloudWatch metric (billed
/// $0.30 a month) per cluster and gauge whatever happens; the gauges with no dimension, which
/// the alarms watch, stay. Counts per cluster stay too: they are published only when not zero.
pub fn without_cluster_gauges(data: &[MetricDatum]) -> Vec<MetricDatum> {
    data.iter()
        .filter(|datum| {
            let gauge = GAUGES.iter().any(|g| g.name() == datum.name);
            !(gauge && datum.dimensions.iter().any(|(k, _)| *k == CLUSTER_DIMENSION))
        })
        .cloned()
        .collect()
}

/// One data point: a name, its dimensions, a count.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDatum {
    pub name: &'static str,
    pub dimensions: Vec<(&'static str, String)>,
    pub value: f64,
}

/// Counts per cluster and in aggregate for one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    per_cluster: BTreeMap<String, BTreeMap<Metric, u64>>,
    /// `DaemonLost` (a count) and `InstancesWithoutDaemon` (a gauge) by cluster and daemon name.
    per_daemon: BTreeMap<(Metric, String, String), u64>,
    /// `MonitorImpaired` by operation.
    per_operation: BTreeMap<String, u64>,
    total: BTreeMap<Metric, u64>,
}

impl Tally {
    /// Counts one occurrence, for the cluster (by name) when there is one, and in the aggregate.
    pub fn count(&mut self, cluster: Option<&str>, metric: Metric) {
        self.add(cluster, metric, 1);
    }

    /// Counts `n` occurrences; zero adds nothing, so no zero data point is published.
    pub fn add(&mut self, cluster: Option<&str>, metric: Metric, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(cluster) = cluster {
            *self
                .per_cluster
                .entry(cluster.to_owned())
                .or_default()
                .entry(metric)
                .or_default() += n;
        }
        *self.total.entry(metric).or_default() += n;
    }

    /// Sets a gauge of one cluster. Gauges have no aggregate: a batch sees only some clusters.
    pub fn gauge(&mut self, cluster: &str, metric: Metric, value: u64) {
        self.per_cluster
            .entry(cluster.to_owned())
            .or_default()
            .insert(metric, value);
    }

    /// Adds another tally's counts to this one (places of one hub run: their clusters differ).
    pub fn merge(&mut self, other: &Tally) {
        for (cluster, counts) in &other.per_cluster {
            let mine = self.per_cluster.entry(cluster.clone()).or_default();
            for (metric, n) in counts {
                *mine.entry(*metric).or_default() += n;
            }
        }
        for (key, n) in &other.per_daemon {
            *self.per_daemon.entry(key.clone()).or_default() += n;
        }
        for (operation, n) in &other.per_operation {
            *self.per_operation.entry(operation.clone()).or_default() += n;
        }
        for (metric, n) in &other.total {
            *self.total.entry(*metric).or_default() += n;
        }
    }

    /// Sets an aggregate gauge (no dimension): only a look at every cluster, the sweep's, can.
    pub fn gauge_total(&mut self, metric: Metric, value: u64) {
        self.total.insert(metric, value);
    }

    /// Counts one lost daemon: per cluster, per cluster and daemon, and in the aggregate.
    pub fn count_daemon_lost(&mut self, cluster: &str, daemon: &str) {
        self.count(Some(cluster), Metric::DaemonLost);
        *self
            .per_daemon
            .entry((Metric::DaemonLost, cluster.to_owned(), daemon.to_owned()))
            .or_default() += 1;
    }

    /// Sets a gauge of one daemon on one cluster.
    pub fn daemon_gauge(&mut self, cluster: &str, daemon: &str, metric: Metric, value: u64) {
        self.per_daemon
            .insert((metric, cluster.to_owned(), daemon.to_owned()), value);
    }

    /// Counts a call that could not be made, per operation and in the aggregate.
    pub fn count_impaired(&mut self, operation: &str) {
        self.count(None, Metric::MonitorImpaired);
        *self.per_operation.entry(operation.to_owned()).or_default() += 1;
    }

    /// `DaemonLost` for one daemon of one cluster.
    pub fn daemon_lost(&self, cluster: &str, daemon: &str) -> u64 {
        self.per_daemon(cluster, daemon, Metric::DaemonLost)
    }

    /// A per-daemon value of one cluster.
    pub fn per_daemon(&self, cluster: &str, daemon: &str, metric: Metric) -> u64 {
        self.per_daemon
            .get(&(metric, cluster.to_owned(), daemon.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Whether a cluster's value (a zero gauge included) will be published.
    pub fn has(&self, cluster: &str, metric: Metric) -> bool {
        self.per_cluster.get(cluster).is_some_and(|c| c.contains_key(&metric))
    }

    /// The count for one cluster, or the aggregate when `cluster` is `None`.
    pub fn get(&self, cluster: Option<&str>, metric: Metric) -> u64 {
        let counts = match cluster {
            Some(cluster) => self.per_cluster.get(cluster),
            None => Some(&self.total),
        };
        counts.and_then(|c| c.get(&metric)).copied().unwrap_or(0)
    }

    /// The data points: each non-zero count per cluster, then the aggregate with no dimension.
    pub fn data(&self) -> Vec<MetricDatum> {
        let per_cluster = self.per_cluster.iter().flat_map(|(cluster, counts)| {
            counts.iter().map(move |(metric, n)| MetricDatum {
                name: metric.name(),
                dimensions: vec![(CLUSTER_DIMENSION, cluster.clone())],
                value: *n as f64,
            })
        });
        let per_daemon = self
            .per_daemon
            .iter()
            .map(|((metric, cluster, daemon), n)| MetricDatum {
                name: metric.name(),
                dimensions: vec![(CLUSTER_DIMENSION, cluster.clone()), (DAEMON_DIMENSION, daemon.clone())],
                value: *n as f64,
            });
        let per_operation = self.per_operation.iter().map(|(operation, n)| MetricDatum {
            name: Metric::MonitorImpaired.name(),
            dimensions: vec![(OPERATION_DIMENSION, operation.clone())],
            value: *n as f64,
        });
        let total = self.total.iter().map(|(metric, n)| MetricDatum {
            name: metric.name(),
            dimensions: vec![],
            value: *n as f64,
        });
        per_cluster
            .chain(per_daemon)
            .chain(per_operation)
            .chain(total)
            .collect()
    }
}

/// Renders data points as Embedded Metric Format documents, one line per set of dimension
/// values, for CloudWatch Logs to turn into metrics without an API call.
pub fn emf_lines(namespace: &str, timestamp_ms: u64, data: &[MetricDatum]) -> Vec<String> {
    let mut groups: BTreeMap<Vec<(&str, &str)>, Vec<&MetricDatum>> = BTreeMap::new();
    for datum in data {
        let key = datum.dimensions.iter().map(|(k, v)| (*k, v.as_str())).collect();
        groups.entry(key).or_default().push(datum);
    }
    groups
        .into_iter()
        .map(|(dimensions, data)| {
            let mut document = Map::new();
            let keys: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
            let metrics: Vec<Value> = data.iter().map(|d| json!({"Name": d.name, "Unit": "Count"})).collect();
            document.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [keys], "Metrics": metrics}]
                }),
            );
            for (key, value) in dimensions {
                document.insert(key.into(), value.into());
            }
            for datum in data {
                document.insert(datum.name.into(), datum.value.into());
            }
            Value::Object(document).to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests;
