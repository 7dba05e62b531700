//! Metric data: what a batch counted, as CloudWatch data points and as Embedded Metric Format.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The counts the monitor publishes (unit `Count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    AgentDisconnected,
    Recovered,
    Suppressed,
    EventsRejected,
    CheckErrors,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::AgentDisconnected => "AgentDisconnected",
            Metric::Recovered => "Recovered",
            Metric::Suppressed => "Suppressed",
            Metric::EventsRejected => "EventsRejected",
            Metric::CheckErrors => "CheckErrors",
        }
    }
}

pub const CLUSTER_DIMENSION: &str = "ClusterName";

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
        let total = self.total.iter().map(|(metric, n)| MetricDatum {
            name: metric.name(),
            dimensions: vec![],
            value: *n as f64,
        });
        per_cluster.chain(total).collect()
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
mod tests {
    use super::*;

    #[test]
    fn when_counts_are_tallied_then_each_cluster_and_the_aggregate_have_them() {
        let mut tally = Tally::default();
        tally.count(Some("prod"), Metric::AgentDisconnected);
        tally.count(Some("prod"), Metric::Recovered);
        tally.count(Some("dev"), Metric::Recovered);
        tally.count(None, Metric::EventsRejected);
        assert_eq!(tally.get(Some("prod"), Metric::AgentDisconnected), 1);
        assert_eq!(tally.get(Some("dev"), Metric::AgentDisconnected), 0);
        assert_eq!(tally.get(None, Metric::Recovered), 2);
        assert_eq!(tally.get(None, Metric::EventsRejected), 1);

        let data = tally.data();
        assert!(data.contains(&MetricDatum {
            name: "Recovered",
            dimensions: vec![("ClusterName", "dev".into())],
            value: 1.0
        }));
        assert!(data.contains(&MetricDatum {
            name: "Recovered",
            dimensions: vec![],
            value: 2.0
        }));
        assert_eq!(
            data.len(),
            3 + 3,
            "three per-cluster points, three aggregate points, no zeros"
        );
    }

    #[test]
    fn when_rendered_as_emf_then_each_dimension_set_is_one_valid_document() {
        let mut tally = Tally::default();
        tally.count(Some("prod"), Metric::AgentDisconnected);
        tally.count(Some("prod"), Metric::AgentDisconnected);
        tally.count(None, Metric::EventsRejected);
        let lines = emf_lines("ECSWatchdog", 1_700_000_000_000, &tally.data());
        assert_eq!(lines.len(), 2);
        let documents: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        let aggregate = documents.iter().find(|d| d.get("ClusterName").is_none()).unwrap();
        assert_eq!(aggregate["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!(aggregate["AgentDisconnected"], json!(2.0));
        assert_eq!(aggregate["EventsRejected"], json!(1.0));
        let prod = documents.iter().find(|d| d["ClusterName"] == "prod").unwrap();
        assert_eq!(prod["_aws"]["Timestamp"], json!(1_700_000_000_000u64));
        assert_eq!(prod["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ECSWatchdog");
        assert_eq!(
            prod["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["ClusterName"]])
        );
        assert_eq!(
            prod["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "AgentDisconnected", "Unit": "Count"}])
        );
        assert_eq!(prod["AgentDisconnected"], json!(2.0));
    }
}
