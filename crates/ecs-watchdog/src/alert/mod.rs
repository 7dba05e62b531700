//! Alerts: one message per cluster and kind, readable for people (`email`) and exact for
//! machines (`default`, the [`Finding`] as JSON). Pure rendering, no I/O.

use crate::config::{ChatFormat, Place};

mod chat;
mod digest;
pub(crate) mod frame;
pub mod impaired;
mod layout;
pub mod pagerduty;
mod resolved;
mod route;
mod text;
pub use crate::finding::lines::lasted;
pub(crate) use crate::finding::lines::shorten;
pub use crate::finding::{
    Alert, AlertKind, DaemonChecks, Finding, InstanceFinding, MessageStatus, SERVICES_LISTED, ServiceTasks, Severity,
    Status,
};
pub use digest::digest;
pub(crate) use frame::subject;
pub use frame::{ATTRIBUTE_TYPE, SNS_MAX_BYTES};
pub use impaired::impaired;
pub use resolved::resolved;
pub use route::{DEFAULT_CRITICAL_PERCENT, Facts, dedup_key, severity};

/// The message's keys but the chat's, as SNS reads them.
#[derive(serde::Serialize)]
struct Keys<'a> {
    default: &'a str,
    email: &'a str,
}

impl Alert {
    /// The SNS message with `MessageStructure=json`: a key per protocol, `default` for the
    /// rest. With [`ChatFormat::Chatbot`], `https` carries the chat notification. The bytes the
    /// frame measured, serialised once when it assembled the alert.
    pub fn message(&self, chat: ChatFormat) -> String {
        match chat {
            _ if self.sent.is_empty() => String::new(),
            ChatFormat::Chatbot => self.sent.clone(),
            ChatFormat::Plain => format!("{}}}", &self.sent[..self.plain_end]),
        }
    }

    /// The alert once SNS took it: its text kept, its SNS message (up to 256 KiB, which no one
    /// sends again) dropped, so a batch's report of its alerts does not hold every message.
    pub(crate) fn published(mut self) -> Self {
        self.sent = String::new();
        self.plain_end = 0;
        self
    }

    /// The alert with its SNS message serialised from its text and subject.
    pub(crate) fn with_message(mut self) -> Self {
        let keys = Keys {
            default: &self.default,
            email: &self.email,
        };
        let mut sent = serde_json::to_string(&keys).unwrap_or_default();
        sent.pop();
        self.plain_end = sent.len();
        self.sent = sent;
        self.with_chat()
    }

    /// The chat key written again after the subject changed (it is the chat's title).
    fn with_chat(mut self) -> Self {
        let https = chat::notification(&self).to_string();
        self.sent.truncate(self.plain_end);
        self.sent.push_str(",\"https\":");
        self.sent.push_str(&serde_json::to_string(&https).unwrap_or_default());
        self.sent.push('}');
        self
    }

    /// The same alert as a reminder of incidents already alerted: the subject says so (and
    /// keeps its place whole).
    pub fn as_reminder(mut self) -> Self {
        self.subject = frame::prefixed("Still open: ", &self.subject);
        self.message_status = MessageStatus::Reminder;
        self.with_chat()
    }

    /// The same alert under another subject.
    pub(crate) fn titled(mut self, subject: String) -> Self {
        self.subject = subject;
        self.with_chat()
    }
}

/// Renders the alert of one kind for one cluster.
pub fn alert(
    kind: AlertKind,
    place: &Place,
    cluster_arn: &str,
    instances: Vec<InstanceFinding>,
    checks: DaemonChecks,
    action: &str,
    facts: Facts,
) -> Alert {
    fit(
        finding(kind, place, cluster_arn, instances, checks, action, facts),
        facts,
    )
}

/// The finding of one kind for one cluster, its instances in a stable order, each with its
/// incident's id; rated before the frame leaves any out.
fn finding(
    kind: AlertKind,
    place: &Place,
    cluster_arn: &str,
    mut instances: Vec<InstanceFinding>,
    checks: DaemonChecks,
    action: &str,
    facts: Facts,
) -> Finding {
    instances
        .sort_by(|a, b| (&a.daemon_name, &a.container_instance_arn).cmp(&(&b.daemon_name, &b.container_instance_arn)));
    for instance in &mut instances {
        instance.dedup_key = Some(dedup_key(kind, cluster_arn, instance));
    }
    Finding {
        schema_version: "1",
        kind,
        severity: severity(kind, &instances, facts),
        account: place.account.clone(),
        region: place.region.clone(),
        cluster_name: crate::inventory::cluster_name(cluster_arn).to_owned(),
        cluster_arn: cluster_arn.to_owned(),
        checked: crate::kinds::of(kind).checked(checks, &instances),
        instances,
        omitted_instances: 0,
        action: action.to_owned(),
        digest: None,
    }
}

/// Renders the finding in the frame: as many instances as fit SNS's limit, the rest counted in
/// `omitted`.
fn fit(mut finding: Finding, facts: Facts) -> Alert {
    let instances = std::mem::take(&mut finding.instances);
    let one = instances.first().filter(|_| instances.len() == 1);
    let status = match finding.digest {
        Some(_) => MessageStatus::Digest,
        None => MessageStatus::Firing,
    };
    let incident = route::incident(finding.kind, &finding.cluster_arn, one, status);
    frame::fit(&text::AlertLayout {
        finding: &finding,
        instances: &instances,
        facts,
        status,
        incident: &incident,
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod truth_tests;
