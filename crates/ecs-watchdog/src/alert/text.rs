//! The alert's text: its subject, the e-mail every kind shares (preface, list, what was
//! checked and done, links, next steps), and the pieces the kinds' modules use.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::finding::{Alert, Counts, EMAIL_LISTED, Finding, MessageStatus, Status};
use super::frame::{self, subject};
use super::lines::first;
use super::route::Facts;
use crate::inventory::instance_key;
use crate::kinds;

/// The alert of the finding: the kind tells its headline, its body and its next steps; the
/// rest is the same for every kind.
pub(super) fn render(finding: &Finding, facts: Facts, status: MessageStatus, incident: &str) -> Alert {
    let kind = kinds::of(finding.kind);
    let (total, noun) = finding.counted();
    let (cluster, place) = (&finding.cluster_name, finding.place());
    let what = kind.headline(&daemons(finding));
    let more = if finding.digest.is_some() { " more" } else { "" };
    let on = if kind.of_instances() {
        format!(" on {total}{more} {noun}")
    } else {
        String::new()
    };
    let subject = subject(&format!("{what}{on} in "), cluster, &format!(" ({place})"));

    let mut email = String::new();
    if let Some(counts) = &finding.digest {
        preface(&mut email, counts, total, noun);
    }
    let _ = writeln!(email, "Severity: {}\n", finding.severity.as_str());
    kind.body(&mut email, finding, facts.now);
    let listed = finding.instances.len();
    frame::and_more(&mut email, total, listed.min(EMAIL_LISTED), listed);
    email.push_str("\nWhat the monitor checked:\n");
    for check in &finding.checked {
        let _ = writeln!(email, "  - {check}");
    }
    let _ = writeln!(email, "\nWhat it did: {}", finding.action);
    if kind.of_a_cluster() {
        links(&mut email, finding, kind.of_instances(), facts.dashboard);
    }
    let steps_at = email.len();
    let next_steps = kind.next_steps(finding);
    if let Some(steps) = &next_steps {
        steps.write(&mut email);
    }

    Alert {
        cluster_name: finding.cluster_name.clone(),
        kind: finding.kind,
        status: Status::Firing,
        message_status: status,
        severity: finding.severity,
        account: finding.account.clone(),
        region: finding.region.clone(),
        incident: incident.to_owned(),
        subject,
        email,
        next_steps,
        steps_at,
        default: serde_json::to_string(finding).unwrap_or_default(),
        thread: super::finding::thread(&finding.account, &finding.region, &finding.cluster_name, finding.kind),
    }
}

/// The daemons a finding names, each once and in order (`unknown` for an instance without).
fn daemons(finding: &Finding) -> Vec<&str> {
    let names: BTreeSet<&str> = finding
        .instances
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
