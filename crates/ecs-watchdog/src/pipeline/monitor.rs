//! The monitor: one batch of queue messages through the stages, intake → scope → evidence →
//! decide → act → ledger → report. Only evidence, act, ledger and report do I/O, through the
//! ports. A failed call leaves only the messages that needed it undecided: they go back to the
//! queue, nothing else does.

use std::collections::HashSet;

use futures_util::future::join;
use tracing::{info, warn};

use super::decide::{self, Decision, Outcome};
use super::intake::Checked;
use super::intake::{self, Message};
use super::run::{Adapters, BatchReport};
use super::run::{Confirmed, Firing};
use super::scope::{Scope, Scoping};
use super::{act, evidence, group, hold, ledger, looks, plan, report};
use crate::config::{Config, Place};
use crate::inventory::cluster_name;
use crate::metrics::{Metric, Tally};
use crate::ports::error_chain;
use crate::silence::Silences;
use crate::verdict::{Deployment, Verdict};

/// How long a lease lasts: longer than the functions' timeout (template: 120 s), shorter than
/// the queue's visibility timeout (at least six times it), so a redelivery finds a dead
/// sender's lease expired.
pub(super) const LEASE_SECONDS: u64 = 300;

/// A lease token no other run holds.
pub(super) fn token(now: u64) -> String {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{now}-{}-{n}", std::process::id())
}

/// The looks of a run: what it confirmed, what it found over, and (when remediation drains)
/// DRAINING instances, whose alert may still be owed after a drain and a refused publish.
pub(super) fn looks(confirmed: Confirmed<'_>, decisions: &[Decision<'_>], drains: bool) -> Vec<ledger::Seen> {
    let mut seen: Vec<ledger::Seen> = confirmed
        .into_values()
        .flatten()
        .map(|f| ledger::Seen {
            key: f.key,
            look: plan::Look::Confirmed {
                finding: Box::new(f.finding),
                hold: f.hold,
            },
            time: f.time,
            told: true,
        })
        .collect();
    seen.extend(decisions.iter().filter_map(ledger::over));
    seen.extend(
        decisions
            .iter()
            .filter(|d| drains && d.draining())
            .map(|d| ledger::Seen {
                key: d.incident(),
                look: plan::Look::Owed,
                time: d.checked.time,
                told: true,
            }),
    );
    seen
}

/// The monitor with its adapters; built once per Lambda instance, so the tag cache survives
/// warm invocations.
pub struct Monitor {
    pub(super) config: Config,
    /// The account and region whose clusters it checks.
    pub(super) place: Place,
    pub(super) io: Adapters,
    pub(super) scoping: Scoping,
}

impl Monitor {
    /// The monitor of the hub's own account in `region`.
    pub fn new(config: Config, region: impl Into<String>, io: Adapters) -> Self {
        let place = Place::new(config.accounts.home.clone(), region);
        Self::at(config, place, io)
    }

    /// The monitor of the clusters in `place`, with adapters that reach it.
    pub fn at(config: Config, place: Place, io: Adapters) -> Self {
        let scoping = Scoping::new(config.cluster_filter.clone(), config.tag_cache_ttl);
        Self {
            config,
            place,
            io,
            scoping,
        }
    }

    /// The same monitor as the sweep's: its cluster look-ups renewed early enough to keep the
    /// records it writes fresh for the monitors ([`Scoping::for_sweep`]).
    pub(super) fn sweeping(self) -> Self {
        let scoping = Scoping::for_sweep(self.config.cluster_filter.clone(), self.config.tag_cache_ttl);
        Self { scoping, ..self }
    }

    /// Runs one batch. Never fails as a whole: what cannot be decided is listed in
    /// [`BatchReport::failures`].
    pub async fn process(&self, messages: &[Message]) -> BatchReport {
        self.process_intake(intake::read(messages)).await
    }

    /// Runs one batch as intake read it (the hub parses a batch once, to split it by place).
    pub(super) async fn process_intake(&self, intake: intake::Intake) -> BatchReport {
        let mut report = BatchReport::default();
        let mut known = ledger::read::Known::default();
        let monitored = self.scope(&intake, &mut known, &mut report).await;
        let mut silences = Silences::default();
        let (decisions, deployments_unknown) = self.evidence(&monitored, &mut silences, &mut report.tally).await;
        decide::tally(&decisions, &mut report.tally);
        let mut confirmed = confirmed(&decisions);
        let undecided = decisions.iter().filter(|d| d.outcome == Outcome::Undecided);
        report
            .failures
            .extend(undecided.flat_map(|d| intake.ids(&d.checked.key)).cloned());
        let now = self.io.clock.now();
        let drains = !self.io.steps.is_empty() && !self.config.remediation.dry_run;
        let grouping = !self.config.incidents.group_interval.is_zero();
        let (looked, keys) = ledger::read::ahead_keys(&confirmed, &decisions, drains, grouping);
        let (inventory, ledger) = (self.io.inventory.as_ref(), self.io.ledger.as_deref());
        let facts = self.scoping.facts(inventory, ledger, &looked, keys, &mut known, now);
        facts.await;
        self.scoping.silences(monitored.iter().map(|(c, _)| *c), &mut silences);
        silences.warn_refused(now);
        // Someone is working on a silenced instance: no drain or replacement under them.
        let silenced = hold::silenced(&mut confirmed, &silences, now);
        act::remediate(&self.io, &self.config.remediation, &mut confirmed, &mut report.tally).await;
        hold::restore(&mut confirmed, silenced);
        let s = plan::Settings {
            silences,
            cluster_sizes: self.scoping.sizes(monitored.iter().map(|(c, _)| *c)),
            ..self.settings(now)
        };
        let context = report::Context {
            place: &self.place,
            action: report::action(self.config.remediation.clone()),
            deployments_unknown: &deployments_unknown,
            settings: &s,
        };
        let mut looks = looks(confirmed, &decisions, drains);
        looks.extend(hold::companions(&looks));
        let groups = ledger::run(&self.io, &context, looks, &s, &mut report, known).await;
        if let Some(ledger) = self.io.ledger.as_deref() {
            group::send_due(&self.io, ledger, &self.place, groups.into_values(), &s, &mut report).await;
        }
        // Two work items of one incident (a deployment's failure and its success) share their
        // messages' ids: each id goes back, and counts, once.
        let mut failing = HashSet::new();
        report.failures.retain(|id| failing.insert(id.clone()));
        for key in std::mem::take(&mut report.undecided) {
            for id in intake.ids(&key) {
                if failing.insert(id.clone()) {
                    report.tally.count(None, Metric::CheckErrors);
                    report.failures.push(id.clone());
                }
            }
        }
        report::metrics(&self.io, &report).await;
        report
    }

    pub(super) fn settings(&self, now: u64) -> plan::Settings {
        plan::Settings {
            now,
            remind_after: self.config.incidents.remind_after.as_secs(),
            group_interval: self.config.incidents.group_interval.as_secs(),
            lease: LEASE_SECONDS,
            token: token(now),
            silences: Default::default(),
            critical_percent: self.config.critical_percent,
            cluster_sizes: Default::default(),
            flap_threshold: self.config.incidents.flap_threshold,
            dashboard: self.config.dashboard,
        }
    }

    /// Intake's rejects go to the dead-letter queue while the clusters' scope is looked up
    /// (tagged: with what the ledger stage reads of them, into `known`); returns the monitored
    /// clusters with their signals.
    async fn scope<'a>(
        &self,
        intake: &'a intake::Intake,
        known: &mut ledger::read::Known,
        report: &mut BatchReport,
    ) -> Vec<(&'a str, &'a [Checked])> {
        report.tally.add(None, Metric::EventsIgnored, intake.ignored);
        let clusters: Vec<String> = intake.by_cluster.keys().cloned().collect();
        let keys = ledger::read::batch_keys(intake, !self.config.incidents.group_interval.is_zero());
        let (inventory, ledger, now) = (
            self.io.inventory.as_ref(),
            self.io.ledger.as_deref(),
            self.io.clock.now(),
        );
        let (unkept, scopes) = join(
            self.io.quarantine.quarantine(&intake.rejected),
            self.scoping.of_batch(inventory, ledger, &clusters, keys, known, now),
        )
        .await;
        let kept = (intake.rejected.len() - unkept.len()) as u64;
        report.tally.add(None, Metric::EventsRejected, kept);
        report.failures.extend(unkept);
        let mut monitored = Vec::new();
        for (cluster, checked) in &intake.by_cluster {
            match scopes.get(cluster) {
                Some(Scope::Monitored) => monitored.push((cluster.as_str(), checked.as_slice())),
                Some(Scope::NotMonitored) => {
                    info!(
                        cluster = cluster_name(cluster),
                        messages = checked.len(),
                        "cluster not monitored: ignored"
                    )
                }
                _ => {
                    let name = Some(cluster_name(cluster));
                    report.tally.add(name, Metric::CheckErrors, checked.len() as u64);
                    report.failures.extend(intake.cluster_ids(cluster).iter().cloned());
                }
            }
        }
        monitored
    }

    /// ECS first, per cluster; then EC2 once for every cluster's instances (it is regional, so
    /// a storm across clusters costs one call per 100 instances), beside each cluster's daemon
    /// look-ups. Returns the decisions and the clusters whose deployments could not be checked.
    async fn evidence<'a>(
        &self,
        monitored: &[(&'a str, &'a [Checked])],
        silences: &mut Silences,
        tally: &mut Tally,
    ) -> (Vec<Decision<'a>>, HashSet<&'a str>) {
        let (inventory, daemons) = (self.io.inventory.as_ref(), self.io.daemons.as_ref());
        let (snapshots, ec2) = evidence::gather(inventory, daemons, monitored).await;
        let mut decisions = Vec::new();
        let mut deployments_unknown = HashSet::new();
        for ((cluster, checked), snapshot) in monitored.iter().zip(&snapshots) {
            hold::instance_silences(cluster, &snapshot.instances, silences);
            let checks = &snapshot.daemons;
            if let Some(e) = &checks.unavailable {
                tally.count(Some(cluster_name(cluster)), Metric::DaemonApiUnavailable);
                if deployments_unknown.is_empty() {
                    warn!(error = %error_chain(e), "Managed Daemons APIs unavailable: deciding lost daemons from tasks and instance state");
                }
                deployments_unknown.insert(*cluster);
            }
            if checks.deployments.values().any(|d| *d == Some(Deployment::Unknown)) {
                deployments_unknown.insert(*cluster);
            }
            let looks = looks::Looks { snapshot, hosts: &ec2 };
            decisions.extend(decide::decide(checked, &looks));
        }
        (decisions, deployments_unknown)
    }
}

/// The confirmed problems by cluster and kind.
fn confirmed<'a>(decisions: &[Decision<'a>]) -> Confirmed<'a> {
    let mut confirmed = Confirmed::new();
    for decision in decisions {
        if let Outcome::Decided(Verdict::Confirmed, Some(finding)) = &decision.outcome {
            let group = (decision.cluster, decision.kind());
            confirmed.entry(group).or_default().push(Firing {
                key: decision.incident(),
                time: decision.checked.time,
                finding: (**finding).clone(),
                hold: 0,
            });
        }
    }
    confirmed
}
