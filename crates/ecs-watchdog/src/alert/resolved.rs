//! The resolved notice: one per cluster and kind, naming the incidents that closed, how, and
//! after how long. Same topic as alerts, attribute `status=resolved`.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::Serialize;

use super::frame::{self, subject};
use super::layout::{Layout, around_instances};
use super::route::{self, Facts};
use crate::config::Place;
use crate::finding::lines::lasted;
use crate::finding::steps::NextSteps;
use crate::finding::{Alert, AlertKind, InstanceFinding, MessageStatus, Severity, Status, instances, thread};
use crate::inventory::cluster_name;
use crate::kinds;

/// A resolved notice as machines read it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Notice<'a> {
    schema_version: &'static str,
    status: Status,
    kind: AlertKind,
    account: &'a str,
    region: &'a str,
    cluster_name: &'a str,
    cluster_arn: &'a str,
    instances: Vec<Closed<'a>>,
    /// Instances closed but left out of `instances` to keep the message within SNS's limit.
    #[serde(skip_serializing_if = "crate::finding::is_zero")]
    omitted: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Closed<'a> {
    container_instance_arn: &'a str,
    dedup_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ec2_instance_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon_name: Option<&'a str>,
    resolution: &'a str,
    lasted_seconds: u64,
    /// A silence holds the place now (`ecs-watchdog-silence-until`): until then, and on what.
    #[serde(skip_serializing_if = "Option::is_none")]
    silenced_until: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    silenced_on: Option<&'a str>,
}

/// Renders the notice for incidents of one kind on one cluster that closed: each with its
/// finding, how the look found it over, and how long it lasted (seconds); in the frame, so it
/// lists as many as fit and counts the rest.
pub fn resolved(
    kind: AlertKind,
    place: &Place,
    cluster_arn: &str,
    mut closed: Vec<(InstanceFinding, String, u64)>,
) -> Alert {
    closed.sort_by(|a, b| {
        (&a.0.daemon_name, &a.0.container_instance_arn).cmp(&(&b.0.daemon_name, &b.0.container_instance_arn))
    });
    let daemons: BTreeSet<&str> = closed.iter().filter_map(|(f, _, _)| f.daemon_name.as_deref()).collect();
    let what = kinds::of(kind).headline(&daemons.into_iter().collect::<Vec<_>>());
    let findings: Vec<InstanceFinding> = closed.iter().map(|(f, _, _)| f.clone()).collect();
    // Rated by its instances alone: the cluster's count is the alert's, not the notice's.
    let severity = route::severity(kind, &findings, Facts::at(0));
    let one = findings.first().filter(|_| findings.len() == 1);
    let incident = route::incident(kind, cluster_arn, one, MessageStatus::Resolved);
    let notice = Notice {
        schema_version: "1",
        status: Status::Resolved,
        kind,
        account: &place.account,
        region: &place.region,
        cluster_name: cluster_name(cluster_arn),
        cluster_arn,
        instances: closed
            .iter()
            .map(|(f, how, seconds)| Closed {
                container_instance_arn: &f.container_instance_arn,
                dedup_key: route::dedup_key(kind, cluster_arn, f),
                ec2_instance_id: f.ec2_instance_id.as_deref(),
                daemon_name: f.daemon_name.as_deref(),
                resolution: how,
                lasted_seconds: *seconds,
                silenced_until: f.silenced_until.as_deref(),
                silenced_on: f.silenced_on.as_deref(),
            })
            .collect(),
        omitted: 0,
    };
    frame::fit(&NoticeLayout {
        what: &what,
        place,
        notice: &notice,
        severity,
        incident: &incident,
    })
}

/// A resolved notice as the frame lays it out.
struct NoticeLayout<'a> {
    what: &'a str,
    place: &'a Place,
    notice: &'a Notice<'a>,
    severity: Severity,
    incident: &'a str,
}

impl NoticeLayout<'_> {
    /// A deployment is of a daemon, not of instances.
    fn of_instances(&self) -> bool {
        kinds::of(self.notice.kind).of_instances()
    }
}

impl Layout for NoticeLayout<'_> {
    fn total(&self) -> usize {
        self.notice.instances.len()
    }

    fn json_around(&self) -> (String, String) {
        let empty = Notice {
            instances: Vec::new(),
            ..*self.notice
        };
        around_instances(&serde_json::to_string(&empty).unwrap_or_default())
    }

    fn instance_json(&self, index: usize) -> String {
        serde_json::to_string(&self.notice.instances[index]).unwrap_or_default()
    }

    fn email_head(&self) -> String {
        let (total, cluster, what) = (self.total(), self.notice.cluster_name, self.what);
        let on = if self.of_instances() {
            format!(" on {total} container {}", instances(total))
        } else {
            String::new()
        };
        format!(
            "Resolved: {what}{on} in cluster {cluster} ({}). The monitor looked again and found each problem \
             over:\n\n",
            self.place
        )
    }

    fn instance_lines(&self, index: usize) -> String {
        let of_instances = self.of_instances();
        let of = if of_instances { "container instance" } else { "daemon" };
        let mut lines = String::new();
        closed_lines(&mut lines, &self.notice.instances[index], of_instances, of);
        lines
    }

    fn email_tail(&self, _first_listed: bool) -> (String, Option<NextSteps>) {
        let tail = "\nNothing more to do for these. A problem that comes back opens a new incident and alerts again.\n";
        (tail.to_owned(), None)
    }

    fn subject(&self, _listed: usize) -> String {
        let total = self.total();
        let on = if self.of_instances() {
            format!(" on {total} {}", instances(total))
        } else {
            String::new()
        };
        subject(
            &format!("Resolved: {}{on} in ", self.what),
            self.notice.cluster_name,
            &format!(" ({})", self.place),
        )
    }

    fn shell(&self) -> Alert {
        let (place, cluster) = (self.place, self.notice.cluster_name);
        Alert {
            cluster_name: cluster.to_owned(),
            kind: self.notice.kind,
            status: Status::Resolved,
            message_status: MessageStatus::Resolved,
            severity: self.severity,
            account: place.account.clone(),
            region: place.region.clone(),
            incident: self.incident.to_owned(),
            subject: String::new(),
            email: String::new(),
            next_steps: None,
            steps_at: 0,
            default: String::new(),
            thread: thread(&place.account, &place.region, cluster, self.notice.kind),
            sent: String::new(),
            plain_end: 0,
        }
    }
}

/// One closed incident in the e-mail: what it was, how and after how long it ended, and the
/// silence that held it.
fn closed_lines(email: &mut String, closed: &Closed<'_>, of_instances: bool, of: &str) {
    let who = match closed.daemon_name {
        Some(d) if !of_instances => format!("daemon {d}"),
        daemon => format!(
            "{}{}",
            closed.ec2_instance_id.unwrap_or("unknown EC2 id"),
            daemon.map(|d| format!(" (daemon {d})")).unwrap_or_default()
        ),
    };
    let _ = writeln!(
        email,
        "  - {who}: {}, after {}\n    {of} {}",
        closed.resolution,
        lasted(closed.lasted_seconds),
        closed.container_instance_arn,
    );
    if let Some(until) = closed.silenced_until {
        let on = closed.silenced_on.unwrap_or("it");
        let _ = writeln!(email, "    silenced until {until} (on {on}): planned work there");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_incidents_close_then_the_notice_says_resolved_with_how_and_how_long() {
        let finding = InstanceFinding {
            container_instance_arn: "arn:aws:ecs:eu-west-1:1:container-instance/prod/a".into(),
            ec2_instance_id: Some("i-0abc".into()),
            ..Default::default()
        };
        let notice = resolved(
            AlertKind::AgentDisconnected,
            &Place::new("123456789012", "eu-west-1"),
            "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
            vec![(finding, "recovered: the agent reconnected".into(), 25 * 60)],
        );
        assert_eq!(
            notice.subject,
            "Resolved: ECS agent disconnected on 1 instance in prod (123456789012, eu-west-1)"
        );
        assert_eq!(notice.status, Status::Resolved);
        assert!(
            notice
                .email
                .contains("i-0abc: recovered: the agent reconnected, after 25 min"),
            "{}",
            notice.email
        );
        let json: serde_json::Value = serde_json::from_str(&notice.default).unwrap();
        assert_eq!(json["status"], "resolved");
        assert_eq!(json["instances"][0]["lastedSeconds"], 1500);
    }
}
