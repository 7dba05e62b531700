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
    /// Its registered container instances, when DescribeClusters answered for it.
    registered: Option<usize>,
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
                                registered: info.map(|i| i.registered_instances),
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
    /// How many container instances these clusters have registered, as the last look-up
    /// (within its TTL) counted them: the share an outage takes, for its severity.
    pub fn sizes<'a>(&self, clusters: impl Iterator<Item = &'a str>) -> HashMap<String, usize> {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        clusters
            .filter_map(|c| Some((c.to_owned(), cache.get(c)?.registered?)))
            .collect()
    }

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

#[cfg(test)]
mod tests {
    use super::super::fakes::{A, B, FakeInventory};
    use super::*;
    use crate::silence::{Hold, iso};

    const NOW: u64 = 1_796_464_800;

    fn silenced_a() -> FakeInventory {
        let tag = (silence::TAG_KEY.to_owned(), iso(NOW + 600));
        FakeInventory {
            cluster_tags: HashMap::from([(A.to_owned(), vec![tag])]),
            ..FakeInventory::default()
        }
    }

    fn hold(scoping: &Scoping, cluster: &str) -> Hold {
        let mut silences = Silences::default();
        scoping.silences([cluster].into_iter(), &mut silences);
        let key = crate::incident::IncidentKey::new(cluster, crate::alert::AlertKind::AgentDisconnected, "ci/1", None);
        silences.of(&key, NOW)
    }

    #[tokio::test]
    async fn when_every_cluster_is_monitored_then_the_silence_tag_is_read_and_cached_and_a_failed_read_holds_nothing_back()
     {
        let clusters = [A.to_owned(), B.to_owned()];
        let scoping = Scoping::new(ClusterFilter::All, Duration::from_secs(300));

        let scopes = scoping.scopes(&silenced_a(), clusters.iter()).await;

        assert!(scopes.values().all(|s| *s == Scope::Monitored));
        assert!(matches!(hold(&scoping, A), Hold::Until { end, .. } if end == NOW + 600));
        assert_eq!(hold(&scoping, B), Hold::None);
        // Cached: an inventory that would fail is not asked again within the TTL.
        let failing = FakeInventory {
            failing: ["ecs:DescribeClusters"].into(),
            ..FakeInventory::default()
        };
        scoping.scopes(&failing, clusters.iter()).await;
        assert!(matches!(hold(&scoping, A), Hold::Until { .. }));

        // Not cached and not readable: still monitored, silenced by nothing.
        let cold = Scoping::new(ClusterFilter::All, Duration::from_secs(300));
        let scopes = cold.scopes(&failing, clusters.iter()).await;
        assert!(scopes.values().all(|s| *s == Scope::Monitored), "{scopes:?}");
        assert_eq!(hold(&cold, A), Hold::None);
    }
}
