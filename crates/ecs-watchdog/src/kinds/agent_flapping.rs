//! The `agent-flapping` kind: an agent that disconnected and came back `FLAP_THRESHOLD` times
//! within an hour. Each return is counted as a recovered look sees it (the delayed event of a
//! disconnect that recovered inside the queue's delay finds the agent connected: that counts
//! too), on the instance's agent-disconnected record the look reads anyway; the plan's flap
//! step (`pipeline/plan/flaps.rs`) opens this kind from that count. It ends after an hour
//! without a return, as the sweep's look at its open incidents finds.

use super::kind::Kind;
use crate::finding::lines::{first, host, remediation_line, since};
use crate::finding::steps::{NextSteps, Step};
use crate::finding::{DaemonChecks, Finding, InstanceFinding, Severity, instances};
use crate::kind::AlertKind;
use crate::metrics::Metric;

/// How far back returns are counted, and how long without one ends the incident (seconds).
pub const WINDOW: u64 = 3600;

/// How a quiet hour ends it, in the resolved notice.
pub const QUIET: &str = "quiet: no agent disconnect for an hour";

/// The returns within the hour up to `now`, with one more at `now`, oldest first.
pub fn counted(before: &[u64], now: u64) -> Vec<u64> {
    let mut flaps: Vec<u64> = before
        .iter()
        .copied()
        .filter(|t| *t <= now && now - *t < WINDOW)
        .collect();
    flaps.push(now);
    flaps
}

/// Whether that many returns within the hour make the agent flapping.
pub fn flapping(flaps: &[u64], threshold: usize) -> bool {
    flaps.len() >= threshold
}

/// Whether an hour went by since the last return (none known: quiet).
pub fn quiet(flaps: &[u64], now: u64) -> bool {
    flaps.last().is_none_or(|last| now >= last + WINDOW)
}

fn opening(finding: &Finding, total: usize) -> String {
    let noun = instances(total);
    let (cluster, place) = (&finding.cluster_name, finding.place());
    format!(
        "The ECS container agent on {total} container {noun} in cluster {cluster} ({place}) keeps losing its \
         connection to the ECS control plane and coming back within the grace period: each time counted as \
         recovered, never alerted as disconnected.\n\
         While it is away ECS cannot start, stop or report tasks there.\n\nInstances:\n"
    )
}

fn instance_lines(instance: &InstanceFinding, now: u64) -> String {
    let ago: Vec<String> = instance
        .flaps
        .iter()
        .map(|t| format!("{} min ago", now.saturating_sub(*t) / 60))
        .collect();
    format!(
        "  - {} ({}): flapping since {}, back from {} disconnects within the hour ({}), agent {}\n    \
             container instance {}{}\n",
        instance.ec2_instance_id.as_deref().unwrap_or("unknown EC2 id"),
        instance.availability_zone.as_deref().unwrap_or("unknown zone"),
        since(instance.since.as_deref(), now),
        instance.flaps.len(),
        ago.join(", "),
        instance.agent_version.as_deref().unwrap_or("version unknown"),
        instance.container_instance_arn,
        remediation_line(instance),
    )
}

fn next_steps(finding: &Finding) -> Option<NextSteps> {
    let instance = first(finding)?;
    let (region, target) = (&finding.region, host(instance));
    Some(NextSteps::numbered(vec![
        Step::says(format!(
            "Open a shell on the instance: aws ssm start-session --region {region} --target {target}"
        )),
        Step::says(
            "Read why it drops: sudo grep -iE 'disconnect|websocket|timeout' /var/log/ecs/ecs-agent.log | tail -n 50",
        ),
        Step::says(
            "Look for memory pressure (the agent OOM-killed: dmesg | grep -i oom), a proxy or NAT that closes idle \
             connections, or an agent too old for the platform (update it: sudo yum update -y ecs-init).",
        ),
        Step::says("If it keeps flapping, drain and replace the instance."),
    ]))
}

pub struct AgentFlapping;

impl Kind for AgentFlapping {
    fn kind(&self) -> AlertKind {
        AlertKind::AgentFlapping
    }

    /// None of its own: it is counted from the agent's events (and the sweep's looks).
    fn detail_types(&self) -> &'static [&'static str] {
        &[]
    }

    fn headline(&self, _daemons: &[&str]) -> String {
        "ECS agent flapping".to_owned()
    }

    fn opening(&self, finding: &Finding, total: usize) -> String {
        opening(finding, total)
    }

    fn instance_lines(&self, instance: &InstanceFinding, now: u64) -> String {
        instance_lines(instance, now)
    }

    fn next_steps(&self, finding: &Finding) -> Option<NextSteps> {
        next_steps(finding)
    }

    fn checked(&self, _checks: DaemonChecks, _instances: &[InstanceFinding]) -> Vec<&'static str> {
        vec!["DescribeContainerInstances after each disconnect's grace period: agentConnected=true again"]
    }

    /// A warning: the instance works between its drops.
    fn severity(&self, _instances: &[InstanceFinding], _widespread: &dyn Fn(usize) -> bool) -> Severity {
        Severity::Warning
    }

    fn metric(&self) -> Option<Metric> {
        Some(Metric::AgentFlapping)
    }

    fn looked_at_each_sweep(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded::splitmix;

    /// Replays returns at the given gaps (seconds), the sweep looking just before each: the
    /// returns at which it opened, and when it ended.
    fn replay(gaps: &[u64], threshold: usize) -> (Vec<usize>, Vec<u64>) {
        let (mut now, mut flaps, mut open) = (0, Vec::new(), false);
        let (mut opened, mut closed) = (Vec::new(), Vec::new());
        for (n, gap) in gaps.iter().enumerate() {
            if open && quiet(&flaps, now + gap) {
                open = false;
                closed.push(now + gap);
            }
            now += gap;
            flaps = counted(&flaps, now);
            if !open && flapping(&flaps, threshold) {
                open = true;
                opened.push(n);
            }
        }
        (opened, closed)
    }

    /// Gaps between returns: minutes apart, most of an hour, or more than one.
    fn gaps(seed: &mut u64) -> Vec<u64> {
        let len = 1 + splitmix(seed) % 40;
        (0..len)
            .map(|_| match splitmix(seed) % 3 {
                0 => 1 + splitmix(seed) % 900,
                1 => 900 + splitmix(seed) % 2_700,
                _ => WINDOW + splitmix(seed) % 4_000,
            })
            .collect()
    }

    /// Opens exactly at the return that makes `threshold` within an hour, once while it goes
    /// on; ends only after an hour without a return; over 5,000 generated sequences.
    #[test]
    fn when_returns_are_counted_then_it_opens_at_the_threshold_within_an_hour_once_and_ends_after_a_quiet_hour() {
        for case in 0..5_000u64 {
            let mut seed = case;
            let gaps = gaps(&mut seed);
            let threshold = 2 + (splitmix(&mut seed) % 4) as usize;
            let (opened, closed) = replay(&gaps, threshold);
            let times: Vec<u64> = gaps
                .iter()
                .scan(0, |t, gap| {
                    *t += gap;
                    Some(*t)
                })
                .collect();
            // The reference: a return reaches the threshold when the `threshold` returns ending
            // with it span less than an hour; an open incident ends at a gap of an hour.
            let reaches = |n: usize| n + 1 >= threshold && times[n] - times[n + 1 - threshold] < WINDOW;
            let (mut open, mut expected) = (false, Vec::new());
            for n in 0..times.len() {
                if open && times[n] - times[n - 1] >= WINDOW {
                    open = false;
                }
                if !open && reaches(n) {
                    open = true;
                    expected.push(n);
                }
            }
            assert_eq!(opened, expected, "case {case}: {gaps:?} threshold {threshold}");
            for end in closed {
                let last = times.iter().copied().filter(|t| *t < end).max().unwrap_or(0);
                assert!(
                    end - last >= WINDOW,
                    "case {case}: ended {} s after a return",
                    end - last
                );
            }
        }
    }

    /// What is kept never reaches back an hour, and holds every return within it.
    #[test]
    fn when_a_return_is_counted_then_only_the_last_hours_are_kept() {
        for case in 0..2_000u64 {
            let mut seed = case;
            let mut before: Vec<u64> = (0..splitmix(&mut seed) % 20)
                .map(|_| splitmix(&mut seed) % 20_000)
                .collect();
            before.sort_unstable();
            let now = 10_000 + splitmix(&mut seed) % 10_000;
            let kept = counted(&before, now);
            assert_eq!(kept.last(), Some(&now));
            assert!(kept.iter().all(|t| *t <= now && now - t < WINDOW), "case {case}");
            let within = before.iter().filter(|t| **t <= now && now - **t < WINDOW).count();
            assert_eq!(kept.len(), within + 1, "case {case}");
        }
    }

    #[test]
    fn when_three_returns_come_within_an_hour_then_it_flaps_and_an_hour_later_it_is_quiet() {
        let flaps = counted(&counted(&counted(&[], 100), 1_000), 3_000);
        assert!(flapping(&flaps, 3));
        assert!(!quiet(&flaps, 3_000 + WINDOW - 1));
        assert!(quiet(&flaps, 3_000 + WINDOW));
        let spread = counted(&counted(&counted(&[], 100), 1_000), 100 + WINDOW);
        assert!(!flapping(&spread, 3), "the first fell out of the hour: {spread:?}");
    }
}
