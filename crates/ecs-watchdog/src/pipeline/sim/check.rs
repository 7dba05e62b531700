//! The promises of DESIGN §7, checked against what the topic received, per container instance:
//! 1 never lost (an agent still disconnected at the end was told, one reconnected was told it
//! ended), 2 once (no second alert without a resolved notice between, but for a repeat of a
//! message whose sender never heard SNS accept it), 3 in order (a resolved notice or a reminder
//! only after an alert), 4 grouped (a second page of a cluster within the interval names only
//! repeats), 5 fits (behind [`CHECK_FITS`]).

use std::collections::HashMap;

use serde_json::Value;

use super::fakes::arn;
use super::world::{Gate, Sent};
use crate::alert::{AlertKind, Status};

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

/// What each instance was told, in order, and which messages may repeat.
struct Told {
    said: HashMap<String, Vec<(u64, Said)>>,
    /// Instances named in a message whose sender never heard SNS accept it.
    repeats: HashMap<String, usize>,
    /// Clusters with a page whose JSON left instances out (too many to fit).
    omitted: Vec<String>,
}

fn told(topic: &[Sent]) -> Told {
    let mut t = Told {
        said: HashMap::new(),
        repeats: HashMap::new(),
        omitted: Vec::new(),
    };
    for sent in topic.iter().filter(|s| s.alert.kind == AlertKind::AgentDisconnected) {
        let finding: Value = serde_json::from_str(&sent.alert.default).unwrap_or_default();
        if finding["omittedInstances"].as_u64().unwrap_or(0) > 0 {
            t.omitted
                .push(finding["clusterArn"].as_str().unwrap_or_default().to_owned());
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
                *t.repeats.entry(arn.clone()).or_default() += 1;
            }
            t.said.entry(arn).or_default().push((sent.at, said));
        }
    }
    t
}

/// Every promise, over everything the topic received; the first broken one, in words.
pub fn promises(gate: &Gate, now: u64, clusters: &[String], instances: usize) -> Result<(), String> {
    let t = told(&gate.topic);
    for cluster in clusters {
        for n in 1..=instances {
            let arn = arn(cluster, n);
            let said = t.said.get(&arn).map(Vec::as_slice).unwrap_or_default();
            let repeats = t.repeats.get(&arn).copied().unwrap_or(0);
            let last = in_order(&arn, said, repeats).inspect_err(|_| {
                if std::env::var("SIM_TRACE").is_ok() {
                    for s in gate.topic.iter().filter(|s| s.alert.default.contains(&arn)) {
                        eprintln!("  {} run {} unheard {} {}", s.at, s.run, s.unheard, s.alert.subject);
                    }
                }
            })?;
            let disconnected = !gate.connected(&arn, now);
            if disconnected && last != Some(Said::Alert) && !t.omitted.contains(cluster) {
                return Err(format!("lost: {arn} is disconnected and was never told so ({said:?})"));
            }
            if disconnected && !t.omitted.contains(cluster) {
                late(gate, &arn, said)?;
            }
            // An alert SNS took but the ledger never recorded ends silently: a resolved notice
            // for an alert the ledger cannot know was sent would break promise 3.
            if !disconnected && last == Some(Said::Alert) && repeats == 0 {
                return Err(format!(
                    "lost: {arn} reconnected long ago and its resolved notice never went out ({said:?})"
                ));
            }
        }
    }
    grouped(&gate.topic, &gate.ungrouped, &t)?;
    if CHECK_FITS {
        fits(&gate.topic)?;
    }
    Ok(())
}

/// Promise 1's bound: a problem that lasts to the end was told by the later of when it began
/// and when the faults stopped, plus [`TOLD_WITHIN`].
fn late(gate: &Gate, arn: &str, said: &[(u64, Said)]) -> Result<(), String> {
    let began = gate
        .timeline
        .get(arn)
        .and_then(|flips| flips.iter().rev().find(|at| **at <= gate.now()))
        .copied()
        .unwrap_or(0);
    let by = began.max(gate.calm_from) + TOLD_WITHIN;
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
/// before comes at least the group interval after the previous such page of its cluster, unless
/// its run could not read the group record (it pages ungrouped rather than not at all).
fn grouped(topic: &[Sent], ungrouped: &[bool], t: &Told) -> Result<(), String> {
    let mut last_page: HashMap<String, u64> = HashMap::new();
    let mut named: std::collections::HashSet<String> = Default::default();
    for sent in topic.iter().filter(|s| s.alert.kind == AlertKind::AgentDisconnected) {
        let finding: Value = serde_json::from_str(&sent.alert.default).unwrap_or_default();
        let instances: Vec<String> = finding["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["containerInstanceArn"].as_str().map(str::to_owned))
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
        if let Some(previous) = last_page.get(&cluster)
            && sent.at + TIMEOUT < previous + GROUP_INTERVAL
            && !t.omitted.contains(&cluster)
        {
            return Err(format!(
                "paged {cluster} at {} and again at {}: not grouped",
                previous, sent.at
            ));
        }
        // A page whose sender never heard SNS take it gives its window back: not an opener.
        if !sent.unheard {
            last_page.insert(cluster, sent.at);
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
