//! The promises of DESIGN §7, checked against what the topic received, per kind and container
//! instance: 1 never lost (trouble that lasts to the end was told, in time; trouble that ended
//! was told it ended), 2 once (no second alert without a resolved notice between, but for a
//! repeat of a message whose sender never heard SNS accept it), 3 in order (a resolved notice or
//! a reminder only after an alert), 4 grouped (a second page of a cluster and kind within the
//! interval names only repeats), 5 fits (behind [`CHECK_FITS`]); and no alert of a kind of
//! trouble the instance never had.

use std::collections::HashMap;

use serde_json::Value;

use super::world::{Gate, Sent};
use crate::alert::{AlertKind, Status};
use crate::inventory::cluster_name;
use crate::ports::{Batch, Keys};

/// Promise 5: the rendering's size caps (the `fits` work) keep every message under the limit.
const CHECK_FITS: bool = true;
const SNS_LIMIT: usize = 262_144;
const GROUP_INTERVAL: u64 = 300;
const TIMEOUT: u64 = super::TIMEOUT;
/// Promise 1's time bound once nothing fails any more: a dead sender's lease ends, a sweep
/// sees the problem first, the next confirms it past the grace period, its group's digest is
/// due within the interval and the next sweep sends it.
const TOLD_WITHIN: u64 = super::LEASE + 2 * super::SWEEP_EVERY + GROUP_INTERVAL + super::SWEEP_EVERY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Said {
    Alert,
    Ended,
    Reminder,
    Resolved,
}

/// The kinds of trouble the simulated fleet has.
const SIMULATED: [AlertKind; 4] = [
    AlertKind::AgentDisconnected,
    AlertKind::DaemonLost,
    AlertKind::InstanceImpaired,
    AlertKind::DaemonDeploymentFailed,
];

/// A kind of trouble of one container instance (ARN).
type Trouble = (AlertKind, String);

/// What each instance was told of each kind, in order, and which messages may repeat.
struct Told {
    said: HashMap<Trouble, Vec<(u64, Said)>>,
    /// Instances named in a message whose sender never heard SNS accept it.
    repeats: HashMap<Trouble, usize>,
    /// Firing messages whose JSON counted instances it left out (too many to fit SNS): the
    /// cluster's ARN, the kind, when.
    omitted: Vec<(String, AlertKind, u64)>,
}

impl Told {
    /// Whether a firing message of the cluster and kind sent in `from..=to` left instances out:
    /// an instance not named may be among them.
    fn counted(&self, cluster: &str, kind: AlertKind, from: u64, to: u64) -> bool {
        (self.omitted.iter()).any(|(c, k, at)| c == cluster && *k == kind && (from..=to).contains(at))
    }
}

fn told(topic: &[Sent]) -> Told {
    let mut t = Told {
        said: HashMap::new(),
        repeats: HashMap::new(),
        omitted: Vec::new(),
    };
    for sent in topic.iter().filter(|s| SIMULATED.contains(&s.alert.kind)) {
        let kind = sent.alert.kind;
        let finding: Value = serde_json::from_str(&sent.alert.default).unwrap_or_default();
        if finding["omitted"].as_u64().unwrap_or(0) > 0 && sent.alert.status == Status::Firing {
            let cluster = finding["clusterArn"].as_str().unwrap_or_default().to_owned();
            t.omitted.push((cluster, kind, sent.at));
        }
        let reminder = sent.alert.subject.starts_with("Still open");
        for instance in finding["instances"].as_array().into_iter().flatten() {
            let arn = instance["containerInstanceArn"].as_str().unwrap_or_default().to_owned();
            let said = match sent.alert.status {
                Status::Resolved => Said::Resolved,
                // A digest lists what ended before it was told: a resolved notice if it was
                // told already (its digest went out unrecorded), else nothing.
                Status::Firing if instance.get("resolved").is_some_and(|r| !r.is_null()) => Said::Ended,
                Status::Firing if reminder => Said::Reminder,
                Status::Firing => Said::Alert,
            };
            if sent.unheard {
                *t.repeats.entry((kind, arn.clone())).or_default() += 1;
            }
            t.said.entry((kind, arn)).or_default().push((sent.at, said));
        }
    }
    t
}

/// Every promise, over everything the topic received; the first broken one, in words.
pub fn promises(gate: &Gate, now: u64, clusters: &[String]) -> Result<(), String> {
    let t = told(&gate.topic);
    if let Some(((kind, arn), _)) = t.said.iter().find(|(trouble, _)| !gate.timeline.contains_key(*trouble)) {
        return Err(format!(
            "false alarm: {} for {arn}, which never had that trouble",
            kind.as_str()
        ));
    }
    for ((kind, arn), flips) in &gate.timeline {
        let (kind, trouble) = (*kind, (*kind, arn.clone()));
        let said = t.said.get(&trouble).map(Vec::as_slice).unwrap_or_default();
        let repeats = t.repeats.get(&trouble).copied().unwrap_or(0);
        let last = in_order(arn, said, repeats).inspect_err(|_| trace(gate, arn))?;
        let cluster = clusters
            .iter()
            .find(|c| arn.contains(&format!("/{}/", cluster_name(c))));
        let began = flips.iter().rev().find(|at| **at <= now).copied().unwrap_or(0);
        let by = began.max(gate.calm_from) + TOLD_WITHIN;
        let counted = cluster.is_some_and(|c| t.counted(c, kind, began, by));
        let troubled = gate.troubled(kind, arn, now);
        let what = kind.as_str();
        if troubled && last != Some(Said::Alert) && !counted {
            trace(gate, arn);
            return Err(format!(
                "lost: {arn} has {what} since {began} and was never told so ({said:?})"
            ));
        }
        if troubled && !counted {
            late(arn, said, began, by)?;
        }
        // An alert SNS took but the ledger never recorded ends silently: a resolved notice
        // for an alert the ledger cannot know was sent would break promise 3.
        if !troubled && last == Some(Said::Alert) && repeats == 0 {
            trace(gate, arn);
            return Err(format!(
                "lost: {arn}'s {what} ended long ago and its resolved notice never went out ({said:?})"
            ));
        }
    }
    grouped(&gate.topic, &gate.ungrouped, &t)?;
    if CHECK_FITS {
        fits(&gate.topic)?;
    }
    Ok(())
}

/// With `SIM_TRACE` set: every message that named the instance.
fn trace(gate: &Gate, arn: &str) {
    if std::env::var("SIM_TRACE").is_ok() {
        let timeline: Vec<_> = gate.timeline.iter().filter(|((_, a), _)| a == arn).collect();
        eprintln!("  {arn}: {timeline:?}, gone at {:?}", gate.gone.get(arn));
        for s in gate.topic.iter().filter(|s| s.alert.default.contains(arn)) {
            let (kind, run, unheard) = (s.alert.kind.as_str(), s.run, s.unheard);
            eprintln!("  {} {kind} run {run} unheard {unheard} {}", s.at, s.alert.subject);
        }
    }
}

/// Promise 1's bound: a problem that lasts to the end was told by `by`: the later of when it
/// began and when the faults stopped, plus [`TOLD_WITHIN`].
fn late(arn: &str, said: &[(u64, Said)], began: u64, by: u64) -> Result<(), String> {
    let told = said.iter().rev().find(|(_, s)| *s == Said::Alert).map(|(at, _)| *at);
    match told {
        Some(at) if at <= by => Ok(()),
        other => Err(format!(
            "late: {arn} disconnected at {began}, told at {other:?}, due by {by}"
        )),
    }
}

/// Promises 2 and 3 for one instance: alert, (reminders), resolved, alert… A repeat is allowed
/// as often as a message naming it went unheard. Returns the last thing said (reminders aside).
fn in_order(arn: &str, said: &[(u64, Said)], mut repeats: usize) -> Result<Option<Said>, String> {
    let mut last: Option<Said> = None;
    for (at, s) in said {
        let s = match (last, s) {
            (Some(Said::Alert), Said::Ended) => &Said::Resolved,
            (_, Said::Ended) => continue,
            _ => s,
        };
        let fine = matches!(
            (last, s),
            (None | Some(Said::Resolved), Said::Alert) | (Some(Said::Alert), Said::Reminder | Said::Resolved)
        );
        if !fine {
            if repeats == 0 {
                return Err(format!("{s:?} after {last:?} at {at} for {arn} ({said:?})"));
            }
            repeats -= 1;
        }
        if *s != Said::Reminder {
            last = Some(*s);
        }
    }
    Ok(last)
}

/// Promise 4: a page (an alert, not a digest nor a reminder) that names an instance not told
/// before comes at least the group interval after the previous such page of its cluster and
/// kind, unless its run could not read the group record (it pages ungrouped rather than not at
/// all) or a message before it left instances out (one it names may have been told there).
fn grouped(topic: &[Sent], ungrouped: &[bool], t: &Told) -> Result<(), String> {
    let mut last_page: HashMap<(String, AlertKind), u64> = HashMap::new();
    let mut named: std::collections::HashSet<Trouble> = Default::default();
    for sent in topic.iter().filter(|s| SIMULATED.contains(&s.alert.kind)) {
        let kind = sent.alert.kind;
        let finding: Value = serde_json::from_str(&sent.alert.default).unwrap_or_default();
        let instances: Vec<Trouble> = finding["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["containerInstanceArn"].as_str().map(|arn| (kind, arn.to_owned())))
            .collect();
        let page = sent.alert.status == Status::Firing
            && finding.get("digest").is_none_or(Value::is_null)
            && !sent.alert.subject.starts_with("Still open");
        let new = instances.iter().any(|i| !named.contains(i));
        named.extend(instances);
        if !page || !new || ungrouped.get(sent.run).copied().unwrap_or(false) {
            continue;
        }
        let cluster = finding["clusterArn"].as_str().unwrap_or_default().to_owned();
        // The window opens when a run decides to page, which publishes within its timeout.
        if let Some(previous) = last_page.get(&(cluster.clone(), kind))
            && sent.at + TIMEOUT < previous + GROUP_INTERVAL
            && !t.counted(&cluster, kind, 0, sent.at)
        {
            return Err(format!(
                "paged {cluster} ({}) at {previous} and again at {}: not grouped",
                kind.as_str(),
                sent.at
            ));
        }
        // A page whose sender never heard SNS take it gives its window back: not an opener.
        if !sent.unheard {
            last_page.insert((cluster, kind), sent.at);
        }
    }
    Ok(())
}

/// Promise 5: every message, with its attributes, fits SNS.
fn fits(topic: &[Sent]) -> Result<(), String> {
    for sent in topic {
        let size = sent.alert.message(crate::config::ChatFormat::Plain).len() + sent.alert.subject.len() + 200;
        if size > SNS_LIMIT {
            return Err(format!("a message of {size} bytes: over SNS's {SNS_LIMIT}"));
        }
    }
    Ok(())
}

/// Why DynamoDB would refuse a `TransactWriteItems` of the batch (`ValidationException`): more
/// than 100 actions, or an item twice (a record, or a count moved by an incident put again).
/// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
pub fn refused_write(batch: &Batch) -> Option<String> {
    let mut counts: Vec<&str> = (batch.incidents.iter().zip(&batch.opens))
        .filter(|(_, o)| **o != 0)
        .map(|(i, _)| i.key.cluster_arn.as_str())
        .collect();
    counts.sort_unstable();
    counts.dedup();
    let mut ids: Vec<String> = batch.groups.iter().map(|g| g.key.id()).collect();
    ids.extend(batch.incidents.iter().map(|i| i.key.id()));
    let actions = ids.len() + counts.len();
    refused("TransactWriteItems", ids, actions)
}

/// Why DynamoDB would refuse a `BatchGetItem` of the keys: more than 100, or a key twice.
/// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
pub fn refused_read(keys: &Keys) -> Option<String> {
    let mut ids: Vec<String> = keys.incidents.iter().map(|k| k.id()).collect();
    ids.extend(keys.groups.iter().map(|k| k.id()));
    ids.extend(keys.counts.iter().map(|c| format!("count|{c}")));
    ids.extend(keys.clusters.iter().map(|c| format!("cluster|{c}")));
    refused("BatchGetItem", ids, keys.len())
}

fn refused(operation: &str, mut ids: Vec<String>, items: usize) -> Option<String> {
    if items > 100 {
        return Some(format!("{operation} of {items} items (DynamoDB takes 100)"));
    }
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    (ids.len() < all).then(|| format!("{operation} names an item twice (DynamoDB refuses it)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::InstanceFinding;
    use crate::incident::{Incident, IncidentKey, State};

    fn incident(n: usize) -> Incident {
        let cluster = super::super::A;
        let key = IncidentKey::new(cluster, AlertKind::AgentDisconnected, &format!("{cluster}/{n}"), None);
        Incident::new(key, State::Due, InstanceFinding::default(), 0)
    }

    #[test]
    fn when_a_batch_names_an_item_twice_or_exceeds_100_actions_then_dynamodb_would_refuse_it() {
        let batch = |incidents: Vec<Incident>| Batch {
            opens: vec![1; incidents.len()],
            incidents,
            groups: Vec::new(),
        };
        assert_eq!(refused_write(&batch((0..99).map(incident).collect())), None);
        assert!(
            refused_write(&batch((0..100).map(incident).collect())).is_some(),
            "100 and a count"
        );
        assert!(refused_write(&batch(vec![incident(1), incident(1)])).is_some());
        let keys = |n: usize| Keys {
            incidents: (0..n).map(|i| incident(i).key).collect(),
            ..Keys::default()
        };
        assert_eq!(refused_read(&keys(100)), None);
        assert!(refused_read(&keys(101)).is_some());
    }
}
