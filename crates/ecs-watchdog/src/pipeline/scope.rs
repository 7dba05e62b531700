//! Scope: which clusters are monitored (all, or those carrying the tag), and which carry a
//! silence (`ecs-watchdog-silence-until`). Tag look-ups are cached across warm invocations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{error, warn};

use super::evidence::chunked;
use crate::config::ClusterFilter;
use crate::inventory::{ClusterInfo, cluster_name};
use crate::ports::{Inventory, error_chain};
use crate::silence::{self, Silences};

/// Where a cluster stands with the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Monitored,
    NotMonitored,
    /// The tag look-up failed: its messages stay undecided.
    Unknown,
}

/// What a cluster's tags say: whether it is monitored, and its silence tag's value.
#[derive(Debug, Clone)]
struct Tags {
    monitored: bool,
    silence: Option<String>,
    at: Instant,
}

/// The cluster filter with its cache of tag look-ups.
pub struct Scoping {
    filter: ClusterFilter,
    ttl: Duration,
    cache: Mutex<HashMap<String, Tags>>,
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
    /// whose tags are not cached. With every cluster monitored the call is still made, for the
    /// silence tag, and its failure holds nothing back: an unknown silence silences nothing.
    pub async fn scopes<'a>(
        &self,
        inventory: &dyn Inventory,
        clusters: impl Iterator<Item = &'a String>,
    ) -> HashMap<String, Scope> {
        let mut scopes = HashMap::new();
        let mut unknown = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for cluster in clusters {
                match cache.get(cluster) {
                    Some(tags) if tags.at.elapsed() < self.ttl => {
                        scopes.insert(cluster.clone(), scope(tags.monitored));
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
                        let info = found.iter().find(|info| same_cluster(info, cluster));
                        let tag = |wanted: &str| {
                            info.and_then(|i| i.tags.iter().find(|(k, _)| k == wanted))
                                .map(|(_, v)| v.clone())
                        };
                        let monitored = match &self.filter {
                            ClusterFilter::All => true,
                            ClusterFilter::Tagged { key, value } => tag(key).as_ref() == Some(value),
                        };
                        let silence = tag(silence::TAG_KEY);
                        cache.insert(
                            cluster.clone(),
                            Tags {
                                monitored,
                                silence,
                                at: Instant::now(),
                            },
                        );
                        scopes.insert(cluster.clone(), scope(monitored));
                    }
                }
                Err(e) if self.filter == ClusterFilter::All => {
                    warn!(error = %error_chain(&e), clusters = chunk.len(), "cluster tags unknown: no silence is honoured for them");
                    scopes.extend(chunk.iter().map(|c| (c.clone(), Scope::Monitored)));
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

impl Scoping {
    /// The silence tags of these clusters, as the last look-up (within its TTL) found them.
    pub fn silences<'a>(&self, clusters: impl Iterator<Item = &'a str>, silences: &mut Silences) {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for cluster in clusters {
            if let Some(value) = cache.get(cluster).and_then(|t| t.silence.as_deref()) {
                silences.cluster(cluster, value);
            }
        }
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
