//! Findings out for custom remediation: an EventBridge event per finding, and a hook function
//! invoked asynchronously with the same JSON.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use tracing::error;

use super::{batch, sdk_error};
use crate::alert::Alert;
use crate::ports::{AwsError, FindingSink, error_chain};

pub const FINDING_SOURCE: &str = "ecs-watchdog";
pub const FINDING_DETAIL_TYPE: &str = "ECS Watchdog Finding";
/// `PutEvents` takes at most ten entries a call, and their sizes together must be under 256 KB.
const PUT_EVENTS_ENTRIES: usize = 10;
const PUT_EVENTS_BYTES: usize = 256 * 1024 - 1;

/// An entry's size as EventBridge counts it
/// (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html>, "Calculating
/// PutEvents event entry size"): 14 bytes for `Time` if set, the UTF-8 bytes of `Source`,
/// `DetailType`, `Detail` and each of `Resources`. A finding sets neither `Time` nor `Resources`.
fn entry_size(detail: &str) -> usize {
    FINDING_SOURCE.len() + FINDING_DETAIL_TYPE.len() + detail.len()
}

/// Findings that did not reach the bus after the retries: which ones (by the thread of their
/// alert) and the last reason.
#[derive(Debug, thiserror::Error)]
#[error("{} finding(s) not sent: {threads:?}", threads.len())]
struct Unsent {
    threads: Vec<String>,
}

pub struct EventBridgeFindings {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeFindings {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

impl EventBridgeFindings {
    /// One `PutEvents` call for these alerts; returns the positions (in `alerts`) of the entries
    /// that failed, all of them when the call did.
    async fn put(&self, alerts: &[&Alert]) -> Vec<usize> {
        let entries = alerts
            .iter()
            .map(|alert| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(FINDING_SOURCE)
                    .detail_type(FINDING_DETAIL_TYPE)
                    .detail(&alert.default)
                    .build()
            })
            .collect();
        match self.client.put_events().set_entries(Some(entries)).send().await {
            // The result entries are in the order of the request's; one missing counts as failed.
            Ok(output) => (0..alerts.len())
                .filter(|&i| output.entries().get(i).is_none_or(|e| e.error_code().is_some()))
                .collect(),
            Err(e) => {
                let e = sdk_error("events:PutEvents", e);
                error!(error = %error_chain(&e), entries = alerts.len(), "PutEvents failed");
                (0..alerts.len()).collect()
            }
        }
    }
}

#[async_trait::async_trait]
impl FindingSink for EventBridgeFindings {
    /// Sends the findings in requests within `PutEvents`' limits; an entry that fails is sent
    /// again (only it), and those that still fail are returned in the error, by alert.
    async fn send(&self, alerts: &[&Alert]) -> Result<(), AwsError> {
        let sizes: Vec<usize> = alerts.iter().map(|a| entry_size(&a.default)).collect();
        let mut threads = Vec::new();
        for run in batch::split(&sizes, PUT_EVENTS_ENTRIES, PUT_EVENTS_BYTES) {
            let batch = &alerts[run];
            let unsent = batch::with_retries(batch.len(), |pending: Vec<usize>| async move {
                let failed = self.put(&pending.iter().map(|&i| batch[i]).collect::<Vec<_>>()).await;
                failed.into_iter().map(|i| pending[i]).collect()
            })
            .await;
            threads.extend(unsent.into_iter().map(|i| batch[i].thread.clone()));
        }
        if threads.is_empty() {
            Ok(())
        } else {
            Err(AwsError::new("events:PutEvents", Unsent { threads }))
        }
    }
}

pub struct LambdaHook {
    client: aws_sdk_lambda::Client,
    function_arn: String,
}

impl LambdaHook {
    pub fn new(client: aws_sdk_lambda::Client, function_arn: impl Into<String>) -> Self {
        Self {
            client,
            function_arn: function_arn.into(),
        }
    }
}

#[async_trait::async_trait]
impl FindingSink for LambdaHook {
    async fn send(&self, alerts: &[&Alert]) -> Result<(), AwsError> {
        for alert in alerts {
            self.client
                .invoke()
                .function_name(&self.function_arn)
                .invocation_type(InvocationType::Event)
                .payload(Blob::new(alert.default.as_bytes()))
                .send()
                .await
                .map_err(|e| sdk_error("lambda:InvokeFunction", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::alert::{AlertKind, MessageStatus, Severity, Status};

    /// An alert whose finding is `bytes` long, marked `tag` so the fake bus can fail it.
    fn alert(tag: &str, bytes: usize) -> Alert {
        Alert {
            cluster_name: "prod".into(),
            kind: AlertKind::AgentDisconnected,
            status: Status::Firing,
            message_status: MessageStatus::Firing,
            severity: Severity::High,
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            incident: format!("agent-disconnected|prod|{tag}|-"),
            subject: String::new(),
            email: String::new(),
            next_steps: None,
            steps_at: 0,
            sent: String::new(),
            plain_end: 0,
            default: format!("{{\"tag\":\"{tag}\",\"pad\":\"{}\"}}", "x".repeat(bytes)),
            thread: format!("123456789012/eu-west-1/prod/{tag}"),
        }
    }

    /// A bus that fails entries tagged `once` the first time it sees them and `always` every time,
    /// and keeps each request's entries (their details).
    struct Bus {
        requests: Arc<Mutex<Vec<Vec<String>>>>,
        sink: EventBridgeFindings,
    }

    fn bus() -> Bus {
        let requests = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let seen = requests.clone();
        let put = mock!(aws_sdk_eventbridge::Client::put_events).then_compute_output(move |r: &PutEventsInput| {
            let details: Vec<String> = r
                .entries()
                .iter()
                .map(|e| e.detail().unwrap_or_default().to_owned())
                .collect();
            let mut requests = seen.lock().unwrap();
            let failed = |d: &String| {
                d.contains("\"always\"") || (d.contains("\"once\"") && !requests.iter().flatten().any(|s| s == d))
            };
            let entries: Vec<PutEventsResultEntry> = details
                .iter()
                .map(|d| match failed(d) {
                    true => PutEventsResultEntry::builder()
                        .error_code("ThrottlingException")
                        .build(),
                    false => PutEventsResultEntry::builder().event_id("e").build(),
                })
                .collect();
            let failures = entries.iter().filter(|e| e.error_code().is_some()).count();
            requests.push(details);
            PutEventsOutput::builder()
                .set_entries(Some(entries))
                .failed_entry_count(failures as i32)
                .build()
        });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put]);
        Bus {
            requests,
            sink: EventBridgeFindings::new(client, "default"),
        }
    }

    fn request_bytes(details: &[String]) -> usize {
        details.iter().map(|d| entry_size(d)).sum()
    }

    #[tokio::test]
    async fn when_findings_are_large_then_each_put_events_request_stays_under_256_kb() {
        let bus = bus();
        let alerts: Vec<Alert> = (0..10).map(|i| alert(&format!("a{i}"), 100_000)).collect();
        bus.sink.send(&alerts.iter().collect::<Vec<_>>()).await.unwrap();
        let requests = bus.requests.lock().unwrap();
        // Ten findings of ~100 KB: two a request, not ten in one (~1 MB).
        assert_eq!(requests.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2, 2, 2]);
        assert!(requests.iter().all(|r| request_bytes(r) < 256 * 1024));
    }

    #[tokio::test]
    async fn when_findings_are_many_and_small_then_requests_take_ten_each() {
        let bus = bus();
        let alerts: Vec<Alert> = (0..25).map(|i| alert(&format!("a{i}"), 100)).collect();
        bus.sink.send(&alerts.iter().collect::<Vec<_>>()).await.unwrap();
        let sizes: Vec<usize> = bus.requests.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
    }

    #[tokio::test]
    async fn when_put_events_fails_some_entries_then_only_those_are_sent_again() {
        let bus = bus();
        let alerts = [alert("a", 10), alert("once", 10), alert("b", 10)];
        bus.sink.send(&alerts.iter().collect::<Vec<_>>()).await.unwrap();
        let requests = bus.requests.lock().unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1], [alerts[1].default.clone()]);
    }

    #[tokio::test]
    async fn when_an_entry_keeps_failing_then_it_is_reported_by_its_alert_not_dropped() {
        let bus = bus();
        let alerts = [alert("a", 10), alert("always", 10)];
        let error = bus.sink.send(&alerts.iter().collect::<Vec<_>>()).await.unwrap_err();
        assert_eq!(error.operation, "events:PutEvents");
        let unsent = error.source.downcast_ref::<Unsent>().expect("the unsent findings");
        assert_eq!(unsent.threads, [alerts[1].thread.clone()]);
        // Tried three times, the entry that went out only once.
        let requests = bus.requests.lock().unwrap();
        assert_eq!(requests.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1, 1]);
    }
}
