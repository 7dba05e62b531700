//! Scope: which clusters are monitored (all, or those carrying the tag). Tag look-ups are
//! cached across warm invocations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::error;

use super::evidence::chunked;
use crate::config::ClusterFilter;
use crate::inventory::{ClusterInfo, cluster_name};
use crate::ports::{Inventory, error_chain};

/// Where a cluster stands with the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Monitored,
    NotMonitored,
    /// The tag look-up failed: its messages stay undecided.
    Unknown,
}

/// The cluster filter with its cache of tag look-ups.
pub struct Scoping {
    filter: ClusterFilter,
    ttl: Duration,
    cache: Mutex<HashMap<String, (bool, Instant)>>,
}

impl Scoping {
    pub fn new(filter: ClusterFilter, ttl: Duration) -> Self {
        Self {
            filter,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Decides, for each cluster, whether it is monitored: `DescribeClusters` per 100 clusters
    /// whose tags are not cached.
    pub async fn scopes<'a>(
        &self,
        inventory: &dyn Inventory,
        clusters: impl Iterator<Item = &'a String>,
    ) -> HashMap<String, Scope> {
        let ClusterFilter::Tagged { key, value } = &self.filter else {
            return clusters.map(|c| (c.clone(), Scope::Monitored)).collect();
        };
        let mut scopes = HashMap::new();
        let mut unknown = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for cluster in clusters {
                match cache.get(cluster) {
                    Some((monitored, at)) if at.elapsed() < self.ttl => {
                        scopes.insert(cluster.clone(), scope(*monitored));
                    }
                    _ => unknown.push(cluster.clone()),
                }
            }
        }
        let answers = chunked(&unknown, |chunk| inventory.describe_clusters(chunk)).await;
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (chunk, answer) in answers {
            match answer {
                Ok(found) => {
                    for cluster in chunk {
                        let monitored = found.iter().any(|info| {
                            same_cluster(info, cluster) && info.tags.iter().any(|(k, v)| k == key && v == value)
                        });
                        cache.insert(cluster.clone(), (monitored, Instant::now()));
                        scopes.insert(cluster.clone(), scope(monitored));
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
}

fn scope(monitored: bool) -> Scope {
    if monitored {
        Scope::Monitored
    } else {
        Scope::NotMonitored
    }
}

fn same_cluster(info: &ClusterInfo, cluster: &str) -> bool {
    info.arn == cluster || cluster_name(&info.arn) == cluster_name(cluster)
}
