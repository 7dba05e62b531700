//! The alert's text: its subject, the e-mail every kind shares (preface, list, what was
//! checked and done, links, next steps), and the pieces the kinds' modules use.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::frame::subject;
use super::layout::{Layout, around_instances};
use super::route::Facts;
use crate::finding::lines::first;
use crate::finding::steps::NextSteps;
use crate::finding::{Alert, Counts, Finding, InstanceFinding, MessageStatus, Status, instances};
use crate::inventory::instance_key;
use crate::kinds;

/// An alert as the frame lays it out: the finding without its instances, and the instances
/// (in order) that it lists as many of as fit.
pub(super) struct AlertLayout<'a> {
    pub finding: &'a Finding,
    pub instances: &'a [InstanceFinding],
    pub facts: Facts,
    pub status: MessageStatus,
    pub incident: &'a str,
}

impl AlertLayout<'_> {
    fn kind(&self) -> &'static dyn kinds::Kind {
        kinds::of(self.finding.kind)
    }
}

impl Layout for AlertLayout<'_> {
    fn total(&self) -> usize {
        self.instances.len()
    }

    fn json_around(&self) -> (String, String) {
        around_instances(&serde_json::to_string(self.finding).unwrap_or_default())
    }

    fn instance_json(&self, index: usize) -> String {
        serde_json::to_string(&self.instances[index]).unwrap_or_default()
    }

    /// A digest's preface, the severity, and the kind's opening.
    fn email_head(&self) -> String {
        let (total, finding) = (self.total(), self.finding);
        let mut email = String::new();
        if let Some(counts) = &finding.digest {
            preface(&mut email, counts, total, instances(total));
        }
        let _ = writeln!(email, "Severity: {}\n", finding.severity.as_str());
        email.push_str(&self.kind().opening(finding, total));
        email
    }

    fn instance_lines(&self, index: usize) -> String {
        self.kind().instance_lines(&self.instances[index], self.facts.now)
    }

    fn group(&self, index: usize) -> Option<&str> {
        let daemon = self.instances[index].daemon_name.as_deref().unwrap_or("unknown");
        self.kind().lists_by_daemon().then_some(daemon)
    }

    fn group_heading(&self, group: &str, listed: usize) -> String {
        self.kind().daemon_heading(group, listed)
    }

    /// What the monitor checked and did, the links, and the steps with the first instance's ids.
    fn email_tail(&self, first_listed: bool) -> (String, Option<NextSteps>) {
        let kind = self.kind();
        let first = Finding {
            instances: self.instances.iter().take(usize::from(first_listed)).cloned().collect(),
            ..self.finding.clone()
        };
        let mut email = String::from("\nWhat the monitor checked:\n");
        for check in &first.checked {
            let _ = writeln!(email, "  - {check}");
        }
        let _ = writeln!(email, "\nWhat it did: {}", first.action);
        if kind.of_a_cluster() {
            links(&mut email, &first, kind.of_instances(), self.facts.dashboard);
        }
        (email, kind.next_steps(&first))
    }

    /// What broke, on how many, where: the daemons named are those listed.
    fn subject(&self, listed: usize) -> String {
        let kind = self.kind();
        let total = self.total();
        let what = kind.headline(&daemons(&self.instances[..listed]));
        let more = if self.finding.digest.is_some() { " more" } else { "" };
        let on = if kind.of_instances() {
            format!(" on {total}{more} {}", instances(total))
        } else {
            String::new()
        };
        subject(
            &format!("{what}{on} in "),
            &self.finding.cluster_name,
            &format!(" ({})", self.finding.place()),
        )
    }

    fn shell(&self) -> Alert {
        let finding = self.finding;
        Alert {
            cluster_name: finding.cluster_name.clone(),
            kind: finding.kind,
            status: Status::Firing,
            message_status: self.status,
            severity: finding.severity,
            account: finding.account.clone(),
            region: finding.region.clone(),
            incident: self.incident.to_owned(),
            subject: String::new(),
            email: String::new(),
            next_steps: None,
            steps_at: 0,
            default: String::new(),
            thread: crate::finding::thread(&finding.account, &finding.region, &finding.cluster_name, finding.kind),
            sent: String::new(),
            plain_end: 0,
        }
    }
}

/// The daemons the instances name, each once and in order (`unknown` for an instance without).
fn daemons(instances: &[InstanceFinding]) -> Vec<&str> {
    let names: BTreeSet<&str> = instances
        .iter()
        .map(|i| i.daemon_name.as_deref().unwrap_or("unknown"))
        .collect();
    names.into_iter().collect()
}

/// The console's pages for the cluster, the first instance, a shell on its host, and the
/// stack's dashboard. ECS console v2, Session Manager and CloudWatch dashboard URLs; the region
/// picks the console's partition-wide page.
fn links(email: &mut String, finding: &Finding, of_instances: bool, dashboard: Option<&str>) {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let base = format!("https://{region}.console.aws.amazon.com");
    let _ = write!(
        email,
        "\nLinks:\n  - cluster: {base}/ecs/v2/clusters/{cluster}/infrastructure?region={region}\n"
    );
    if let Some(name) = dashboard {
        let _ = writeln!(
            email,
            "  - dashboard: {base}/cloudwatch/home?region={region}#dashboards:name={name}"
        );
    }
    let Some(instance) = first(finding).filter(|_| of_instances) else {
        return;
    };
    // An instance that never registered has no container instance: its EC2 id stands there.
    if instance.container_instance_arn.contains(":container-instance/") {
        let _ = writeln!(
            email,
            "  - container instance: {base}/ecs/v2/clusters/{cluster}/infrastructure/container-instances/{}?region={region}",
            instance_key(&instance.container_instance_arn)
        );
    }
    if let Some(id) = &instance.ec2_instance_id {
        let _ = writeln!(
            email,
            "  - shell on {id} (Session Manager): {base}/systems-manager/session-manager/{id}?region={region}"
        );
    }
}

/// A digest's first lines: how many joined, resolved since, and are open now.
fn preface(email: &mut String, counts: &Counts, total: usize, noun: &str) {
    let _ = write!(
        email,
        "Digest: {total} more {noun} joined since the last alert of this cluster and kind, told together so a \
         storm pages once."
    );
    if counts.resolved > 0 {
        let _ = write!(email, " {} of them already resolved (marked below).", counts.resolved);
    }
    if let Some(open) = counts.still_open {
        let _ = write!(email, " Open now, all told: {open}.");
    }
    email.push_str("\n\n");
}
