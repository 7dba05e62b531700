//! The silences a run reads (cluster tags cached with the scope, container instances' tags as
//! `DescribeContainerInstances` told), what they keep from remediation, and the incidents read
//! beside the impaired ones that may fold. The rules that hold an owed alert are the plan's
//! ([`super::plan`]).

use super::ledger::Seen;
use super::plan::{AGENT_CONNECTIVITY, Look, agent_key};
use super::run::{Confirmed, Firing};
use crate::inventory::ClusterInstances;
use crate::silence::{self, Hold, Silences};

/// The silence tags of a cluster's container instances, as `DescribeContainerInstances` told.
pub fn instance_silences(cluster: &str, instances: &ClusterInstances, silences: &mut Silences) {
    if let ClusterInstances::Found(found) = instances {
        for instance in found.values() {
            if let Some(value) = instance.tag(silence::TAG_KEY) {
                silences.instance(cluster, &instance.arn, value);
            }
        }
    }
}

/// Takes the silenced instances' firings out of `confirmed`, so remediation leaves them be.
pub fn silenced<'a>(confirmed: &mut Confirmed<'a>, silences: &Silences, now: u64) -> Confirmed<'a> {
    let mut held = Confirmed::new();
    if silences.is_empty() {
        return held;
    }
    for (group, firings) in confirmed.iter_mut() {
        let (out, kept): (Vec<Firing>, Vec<Firing>) = std::mem::take(firings)
            .into_iter()
            .partition(|f| matches!(silences.of(&f.key, now), Hold::Until { .. }));
        *firings = kept;
        if !out.is_empty() {
            held.insert(*group, out);
        }
    }
    confirmed.retain(|_, firings| !firings.is_empty());
    held
}

/// Puts the held firings back, for the ledger.
pub fn restore<'a>(confirmed: &mut Confirmed<'a>, held: Confirmed<'a>) {
    for (group, firings) in held {
        confirmed.entry(group).or_default().extend(firings);
    }
}

/// The agent-disconnected incidents to read beside the impaired ones that may fold into them
/// (same `BatchGetItem` as the others: no call of their own).
pub fn companions(seen: &[Seen]) -> Vec<Seen> {
    seen.iter()
        .filter(|x| match &x.look {
            Look::Confirmed { finding, .. } => {
                crate::kinds::of(x.key.kind).may_repeat_agent()
                    && !finding.health_checks.is_empty()
                    && finding.health_checks.iter().all(|c| c.check == AGENT_CONNECTIVITY)
            }
            _ => false,
        })
        .map(|x| Seen::quiet(agent_key(&x.key), Look::Companion))
        .collect()
}

/// The silence tags a sweep saw: its clusters' (cached with the scope) and their instances'.
pub fn silences(scoping: &super::scope::Scoping, surveys: &[super::survey::Survey], now: u64) -> Silences {
    let mut silences = Silences::default();
    scoping.silences(surveys.iter().map(|s| s.cluster.as_str()), &mut silences);
    for survey in surveys {
        instance_silences(&survey.cluster, &survey.instances, &mut silences);
    }
    silences.warn_refused(now);
    silences
}
