//! A member place whose role cannot be assumed: its messages are retried once, then parked,
//! and the hub files a `monitor-impaired` incident for it.

use tracing::warn;

use crate::alert;
use crate::config::Place;
use crate::metrics::{self, Metric};
use crate::pipeline::impaired::Impaired;
use crate::pipeline::intake::Message;
use crate::pipeline::monitor::Monitor;
use crate::pipeline::run::BatchReport;
use crate::pipeline::watched::Fault;
use crate::ports::{AwsError, ErrorKind, Quarantined, error_chain};

/// The dead-letter reason of a message whose place could not be reached.
pub const PLACE_UNREACHABLE: &str = "place-unreachable";
/// A message of an unreachable place is parked on its second receive: one retry, in case the
/// role came back, and no more.
const TRIES_BEFORE_PARKING: u32 = 2;

/// A place whose role cannot be assumed. A message's first try goes back to the queue (the
/// role may be back by then); from its second on, it is parked in the dead-letter queue with
/// the reason [`PLACE_UNREACHABLE`], so an unreachable member never holds the pollers its
/// five tries long: its storm passes at most twice, beside everyone else's messages. Once
/// the role is fixed, `make redrive FROM=checks` brings the parked messages back.
pub async fn unreachable(
    home: &Monitor,
    impaired: &Impaired,
    place: &Place,
    messages: &[&Message],
    e: AwsError,
) -> BatchReport {
    warn!(account = %place.account, region = %place.region, error = %error_chain(&e), "member account not reachable: its messages are retried once, then parked");
    let io = &home.io;
    // Only a refusal (AccessDenied, no such role) parks: throttling or a timeout of STS is
    // no broken role, and its messages keep SQS's own tries rather than wait for a redrive.
    let refused = e.kind == ErrorKind::Unavailable;
    let (parked, retried): (Vec<&Message>, Vec<&Message>) = messages
        .iter()
        .copied()
        .partition(|m| refused && m.receive_count >= TRIES_BEFORE_PARKING);
    let parked: Vec<Quarantined> = parked
        .into_iter()
        .map(|m| Quarantined {
            message_id: m.id.clone(),
            body: m.body.clone(),
            reason: PLACE_UNREACHABLE.to_owned(),
        })
        .collect();
    let mut report = BatchReport {
        failures: retried.iter().map(|m| m.id.clone()).collect(),
        ..BatchReport::default()
    };
    report.failures.extend(io.quarantine.quarantine(&parked).await);
    let fault = Fault {
        operation: e.operation,
        error: error_chain(&e),
    };
    let scope = alert::impaired::scope(place, false);
    let now = io.clock.now();
    if let Some(alert) = impaired.alert(io, place, &scope, &[fault], &home.settings(now)).await {
        report.alerts.push(alert);
    }
    report.tally.add(None, Metric::CheckErrors, messages.len() as u64);
    report.tally.count_impaired(e.operation);
    let data = metrics::placed(&report.tally.data(), &place.account, &place.region);
    if let Err(e) = io.metrics.publish(&data).await {
        warn!(error = %error_chain(&e), "metrics not published");
    }
    report
}
