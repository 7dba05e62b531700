//! Scope: which clusters are monitored (all, or those carrying the tag), and which carry a
//! silence (`ecs-watchdog-silence-until`). Tag look-ups are cached across warm invocations; the
//! sweep records what it saw of each cluster in the ledger, and the monitor takes a record seen
//! within the same TTL in place of asking ECS (`DescribeClusters`) again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{error, warn};

use super::batched::{chunked, chunked_by};
use super::ledger::read::{self, Known};
use crate::config::ClusterFilter;
use crate::inventory::{ClusterInfo, cluster_name};
use crate::ports::{CLUSTER_RECORDS_PER_WRITE, ClusterRecord, Inventory, Keys, Ledger, error_chain};
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
    /// When this process learnt it, and how old it was then (a record's age; none for an answer
    /// of ECS). Not an `Instant` of the look: a new Lambda sandbox's clock starts at its boot.
    at: Instant,
    age: Duration,
}

impl Tags {
    /// How long ago ECS answered.
    fn age(&self) -> Duration {
        self.at.elapsed() + self.age
    }
}

/// The cluster filter with its cache of tag look-ups.
pub struct Scoping {
    filter: ClusterFilter,
    ttl: Duration,
    cache: Mutex<HashMap<String, Tags>>,
    /// The sweep's: the look each cluster's record was last written from (its `at`).
    recorded: Mutex<HashMap<String, Instant>>,
}

impl Scoping {
    /// The sweep's: it reads the tags again once its look is half the monitor's TTL old, so the
    /// record it writes is renewed before the monitors refuse it. With its own TTL equal to the
    /// monitor's, a warm sweep every `ttl` would find its look a few milliseconds short of stale,
    /// write nothing, and leave the record past the monitors' TTL until the sweep after.
    pub fn for_sweep(filter: ClusterFilter, monitor_ttl: Duration) -> Self {
        Self::new(filter, monitor_ttl / 2)
    }

    pub fn new(filter: ClusterFilter, ttl: Duration) -> Self {
        Self {
            filter,
            ttl,
            cache: Mutex::new(HashMap::new()),
            recorded: Mutex::new(HashMap::new()),
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
                    Some(tags) if tags.age() < self.ttl => {
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
                                age: Duration::ZERO,
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

/// Where the cluster records come from and go: the monitor reads them, the sweep writes them.
impl Scoping {
    /// The monitor's scope of a batch's clusters. With every cluster monitored nothing needs
    /// asking yet: the facts of the clusters a run looks at come later ([`Scoping::facts`]).
    /// Tagged: the warm cache, then the ledger's records (read with `keys`, the batch's counts
    /// and groups, into `known`), then `DescribeClusters` for the rest.
    pub async fn of_batch(
        &self,
        inventory: &dyn Inventory,
        ledger: Option<&dyn Ledger>,
        clusters: &[String],
        keys: Keys,
        known: &mut Known,
        now: u64,
    ) -> HashMap<String, Scope> {
        if self.filter == ClusterFilter::All {
            return clusters.iter().map(|c| (c.clone(), Scope::Monitored)).collect();
        }
        self.look_up(inventory, ledger, clusters, keys, known, now).await
    }

    /// The tags and sizes of the clusters a run looks at (its silences, its alerts' share): as
    /// [`Scoping::of_batch`] finds them, `keys` being what the ledger stage reads of them.
    pub async fn facts(
        &self,
        inventory: &dyn Inventory,
        ledger: Option<&dyn Ledger>,
        clusters: &[String],
        keys: Keys,
        known: &mut Known,
        now: u64,
    ) {
        self.look_up(inventory, ledger, clusters, keys, known, now).await;
    }

    async fn look_up(
        &self,
        inventory: &dyn Inventory,
        ledger: Option<&dyn Ledger>,
        clusters: &[String],
        keys: Keys,
        known: &mut Known,
        now: u64,
    ) -> HashMap<String, Scope> {
        let missing = self.missing(clusters);
        if let (Some(ledger), false) = (ledger, missing.is_empty()) {
            read::ahead(
                ledger,
                known,
                Keys {
                    clusters: missing,
                    ..keys
                },
            )
            .await;
            self.take(known.clusters.values(), now);
        }
        self.scopes(inventory, clusters.iter()).await
    }

    /// The clusters whose tags are not cached, or not fresh.
    fn missing(&self, clusters: &[String]) -> Vec<String> {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        clusters
            .iter()
            .filter(|c| cache.get(*c).is_none_or(|t| t.age() >= self.ttl))
            .cloned()
            .collect()
    }

    /// Takes records in place of asking ECS: those judged by this filter, seen within the TTL,
    /// and newer than what is cached.
    pub fn take<'a>(&self, records: impl Iterator<Item = &'a ClusterRecord>, now: u64) {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A record from the future (the sweep's clock ahead, or this one stepped back) has no
        // age to trust: ECS is asked.
        let written = |r: &&ClusterRecord| r.seen_at <= now + CLOCK_SLACK_SECONDS;
        for r in records.filter(|r| r.filter == filter_id(&self.filter)).filter(written) {
            let age = Duration::from_secs(now.saturating_sub(r.seen_at));
            if age >= self.ttl || cache.get(&r.cluster_arn).is_some_and(|t| t.age() <= age) {
                continue;
            }
            let tags = Tags {
                monitored: r.monitored,
                silence: r.silence.clone(),
                registered: r.registered,
                at: Instant::now(),
                age,
            };
            cache.insert(r.cluster_arn.clone(), tags);
        }
    }

    /// The sweep's: writes what it saw of these clusters (one `BatchWriteItem` per 25), each
    /// only when its look is newer than the one last written; with the cache's TTL that is once
    /// per TTL, so a record is rewritten as it goes stale and whenever the tags are read again.
    pub async fn record(&self, ledger: &dyn Ledger, clusters: &[String], now: u64) {
        let (records, looks): (Vec<ClusterRecord>, HashMap<String, Instant>) = {
            let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let recorded = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let fresh = clusters
                .iter()
                .filter_map(|c| Some((c, cache.get(c)?)))
                .filter(|(c, tags)| recorded.get(*c) != Some(&tags.at));
            fresh
                .map(|(c, tags)| (self.record_of(c, tags, now), (c.clone(), tags.at)))
                .unzip()
        };
        let written = chunked_by(&records, CLUSTER_RECORDS_PER_WRITE, |chunk| ledger.note_clusters(chunk)).await;
        let mut recorded = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (chunk, answer) in written {
            match answer {
                Ok(()) => recorded.extend(chunk.iter().filter_map(|r| {
                    let at = looks.get(&r.cluster_arn)?;
                    Some((r.cluster_arn.clone(), *at))
                })),
                Err(e) => {
                    warn!(error = %error_chain(&e), clusters = chunk.len(), "cluster records not written: the monitor asks ECS")
                }
            }
        }
    }

    fn record_of(&self, cluster: &str, tags: &Tags, now: u64) -> ClusterRecord {
        ClusterRecord {
            cluster_arn: cluster.to_owned(),
            filter: filter_id(&self.filter),
            monitored: tags.monitored,
            silence: tags.silence.clone(),
            registered: tags.registered,
            seen_at: now.saturating_sub(tags.age().as_secs()),
        }
    }
}

/// How far ahead of this clock a record's `seen_at` may be and still be taken: clocks of two
/// Lambda sandboxes agree within a second or two.
const CLOCK_SLACK_SECONDS: u64 = 5;

/// How a record names the filter it was judged by.
fn filter_id(filter: &ClusterFilter) -> String {
    match filter {
        ClusterFilter::All => "all".to_owned(),
        ClusterFilter::Tagged { key, value } => format!("{key}={value}"),
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
    use std::sync::atomic::Ordering;

    use super::super::fakes::{A, B, FakeInventory, FakeLedger, leak};
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

    fn tagged() -> ClusterFilter {
        ClusterFilter::Tagged {
            key: "team".into(),
            value: "platform".into(),
        }
    }

    /// What the sweep writes of A (silenced, monitored) and B (not monitored) at `at`, with `filter`.
    async fn swept(filter: ClusterFilter, at: u64) -> &'static FakeLedger {
        let ledger = leak(FakeLedger::default());
        let mut inventory = silenced_a();
        inventory
            .cluster_tags
            .get_mut(A)
            .into_iter()
            .for_each(|t| t.push(("team".into(), "platform".into())));
        let sweep = Scoping::new(filter, Duration::from_secs(300));
        let clusters = [A.to_owned(), B.to_owned()];
        sweep.scopes(&inventory, clusters.iter()).await;
        sweep.record(&ledger, &clusters, at).await;
        ledger
    }

    async fn monitor_scopes(
        scoping: &Scoping,
        inventory: &FakeInventory,
        ledger: &'static FakeLedger,
        now: u64,
    ) -> HashMap<String, Scope> {
        let clusters = [A.to_owned(), B.to_owned()];
        let mut known = Known::default();
        let keys = Keys {
            counts: clusters.to_vec(),
            ..Keys::default()
        };
        let scopes = scoping
            .of_batch(inventory, Some(&ledger), &clusters, keys.clone(), &mut known, now)
            .await;
        scoping
            .facts(inventory, Some(&ledger), &clusters, keys, &mut known, now)
            .await;
        assert!(known.counts.contains_key(A), "the counts come with the records");
        scopes
    }

    #[tokio::test]
    async fn when_the_sweep_recorded_a_cluster_within_the_ttl_then_the_monitor_takes_its_scope_silence_and_size_without_asking_ecs()
     {
        for filter in [ClusterFilter::All, tagged()] {
            let ledger = swept(filter.clone(), NOW - 200).await;
            let scoping = Scoping::new(filter.clone(), Duration::from_secs(300));
            // ECS would say nothing is silenced: the record's word is taken.
            let inventory = FakeInventory::default();

            let scopes = monitor_scopes(&scoping, &inventory, ledger, NOW).await;

            assert_eq!(inventory.described_clusters.load(Ordering::SeqCst), 0, "{filter:?}");
            assert!(matches!(hold(&scoping, A), Hold::Until { end, .. } if end == NOW + 600));
            assert_eq!(scoping.sizes([A].into_iter()).get(A), Some(&0));
            let b = match filter {
                ClusterFilter::All => Scope::Monitored,
                _ => Scope::NotMonitored,
            };
            assert_eq!((scopes[A], scopes[B]), (Scope::Monitored, b), "{filter:?}");
        }
    }

    #[tokio::test]
    async fn when_a_record_is_older_than_the_ttl_or_of_another_filter_then_ecs_is_asked_and_its_answer_holds() {
        let cases = [
            (ClusterFilter::All, NOW - 300, ClusterFilter::All),
            // A record from the future is not taken either.
            (ClusterFilter::All, NOW + 60, ClusterFilter::All),
            (tagged(), NOW - 10, ClusterFilter::All),
            // Every cluster monitored, as an "all" record says, must not let an untagged
            // cluster into a tagged monitor.
            (ClusterFilter::All, NOW - 10, tagged()),
        ];
        for (recorded_with, at, monitoring) in cases {
            let ledger = swept(recorded_with, at).await;
            let scoping = Scoping::new(monitoring, Duration::from_secs(300));
            // The silence was lifted since: ECS no longer shows the tag.
            let inventory = FakeInventory::default();

            monitor_scopes(&scoping, &inventory, ledger, NOW).await;

            assert_eq!(inventory.described_clusters.load(Ordering::SeqCst), 1);
            assert_eq!(hold(&scoping, A), Hold::None);
        }
    }

    #[tokio::test]
    async fn when_the_sweep_looks_again_within_the_ttl_then_it_writes_no_record_and_after_it_writes_each_once() {
        let ledger = leak(FakeLedger::default());
        let clusters = [A.to_owned(), B.to_owned()];
        let inventory = silenced_a();
        let sweep = Scoping::new(ClusterFilter::All, Duration::from_secs(300));
        sweep.scopes(&inventory, clusters.iter()).await;
        sweep.record(&ledger, &clusters, NOW).await;
        assert_eq!(ledger.clusters.lock().unwrap()[A].seen_at, NOW);
        ledger.clusters.lock().unwrap().clear();

        // Cached: the same look, not written again.
        sweep.scopes(&inventory, clusters.iter()).await;
        sweep.record(&ledger, &clusters, NOW + 60).await;
        assert!(ledger.clusters.lock().unwrap().is_empty());

        // A new look (TTL 0: every sweep reads the tags) is written, each cluster once.
        let every_time = Scoping::new(ClusterFilter::All, Duration::ZERO);
        for now in [NOW, NOW + 60] {
            every_time.scopes(&inventory, clusters.iter()).await;
            every_time.record(&ledger, &clusters, now).await;
            let records = ledger.clusters.lock().unwrap();
            assert_eq!(records.len(), 2);
            assert_eq!(records[A].seen_at, now);
            assert_eq!(records[A].silence, Some(iso(NOW + 600)));
            assert_eq!((records[A].filter.as_str(), records[B].silence.clone()), ("all", None));
        }
    }
}
