//! PagerDuty's Events API v2, an optional output beside SNS: the routing key read once at init
//! from Systems Manager, each event posted with bounded retries, and a notifier that sends to
//! PagerDuty before SNS. What is sent, and when, is [`crate::alert::pagerduty`]'s.
//!
//! Why PagerDuty first: a notice that PagerDuty took and SNS refused is given back and sent
//! again later, to both; PagerDuty folds the repeat by its `dedup_key`, so the retry is
//! harmless there. The other order would leave a refused event with no one owing it (SNS
//! took the notice, the ledger marks it sent) or send SNS twice.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Connector, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use tracing::{error, info, warn};

use super::shared::{OnFirstUse, Turns};
use crate::alert::Alert;
use crate::alert::pagerduty::{self, Action, Event};
use crate::config::{ConfigError, PagerDutyConfig, RoutingKey};
use crate::incident::IncidentKey;
use crate::metrics::MetricDatum;
use crate::ports::{AwsError, BoxError, Clock, Ledger, MetricsSink, Notifier, error_chain};

/// Not an AWS action (the IAM contract test reads `service:Operation` literals in lower case).
const OPERATION: &str = "PagerDuty:Enqueue";
/// What reading the routing key calls: `GetParameter`, and for a Secrets Manager reference,
/// `GetSecretValue` on the caller's behalf, authorized against the function's role too.
const READ_KEY: &str = "ssm:GetParameter";
const READ_SECRET: &str = "secretsmanager:GetSecretValue";
/// Counted when PagerDuty refuses an event as malformed (a 4xx other than 429).
pub const REJECTED_METRIC: &str = "PagerDutyRejected";

/// How hard one event is tried. The whole budget stays well inside the function's timeout
/// (template: 120 s), beside the batch's other calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each.
    pub first_backoff: Duration,
    pub attempt_timeout: Duration,
    /// All attempts and waits of one event.
    pub budget: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(5),
            budget: Duration::from_secs(20),
        }
    }
}

/// An answer that is not 202.
#[derive(Debug, thiserror::Error)]
#[error("PagerDuty answered {status}: {body}")]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// What became of one event.
#[derive(Debug)]
pub enum Sent {
    Accepted,
    /// A 4xx other than 429: the event itself is wrong; sending it again cannot help.
    Rejected(Answer),
}

/// The Events API v2 endpoint with its routing key.
pub struct EventsApi {
    url: String,
    routing_key: RoutingKey,
    retry: Retry,
    /// Built on first use: parsing the root certificates is start-up time only an alert needs.
    connector: OnceLock<Connector>,
    turns: Turns,
}

impl EventsApi {
    pub fn new(url: impl Into<String>, routing_key: RoutingKey, retry: Retry) -> Self {
        Self {
            url: url.into(),
            routing_key,
            retry,
            connector: OnceLock::new(),
            turns: Turns::new(),
        }
    }

    /// The request body: the event with the routing key.
    fn body(&self, event: &Event) -> String {
        let mut body = serde_json::to_value(event).unwrap_or_default();
        body["routing_key"] = self.routing_key.expose().into();
        body.to_string()
    }

    /// Posts the event: again on 429, 5xx, a timeout or a network error, waiting longer each
    /// time, within the budget; a 202 is accepted, another 4xx rejected at once.
    pub async fn send(&self, event: &Event) -> Result<Sent, AwsError> {
        let body = self.body(event);
        let started = Instant::now();
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            let last = match self.attempt(&body).await {
                Ok(Answer { status: 202, .. }) => return Ok(Sent::Accepted),
                Ok(answer) if (400..500).contains(&answer.status) && answer.status != 429 => {
                    return Ok(Sent::Rejected(answer));
                }
                Ok(answer) => BoxError::from(answer),
                Err(e) => e,
            };
            let left = self.retry.budget.saturating_sub(started.elapsed());
            if attempt >= self.retry.attempts || left <= backoff + self.retry.attempt_timeout {
                return Err(AwsError::new(OPERATION, last));
            }
            warn!(attempt, error = %error_chain(last.as_ref()), dedup_key = %event.dedup_key, "PagerDuty event not taken: trying again");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    /// One POST; its status and body.
    async fn attempt(&self, body: &str) -> Result<Answer, BoxError> {
        let mut request = HttpRequest::new(SdkBody::from(body.to_owned()));
        request.set_method("POST")?;
        request.set_uri(self.url.as_str())?;
        request.headers_mut().insert("content-type", "application/json");
        let connector = self.connector.get_or_init(connector);
        let _turn = self.turns.wait().await;
        // The timeout covers the whole exchange: connecting, the answer's head and its body.
        let exchange = async {
            let response = connector.call(request).await?;
            let status = response.status().as_u16();
            let body = ByteStream::new(response.into_body()).collect().await?.to_vec();
            Ok::<_, BoxError>(Answer {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        tokio::time::timeout(self.retry.attempt_timeout, exchange).await?
    }
}

/// The SDK's own HTTPS connector (rustls on ring, the proxy from the environment), as
/// [`super::FirstUseTls`] builds it for the AWS clients: no second HTTP stack.
fn connector() -> Connector {
    ConnectorBuilder::default()
        .proxy_config(ProxyConfig::from_env())
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build()
}

/// Sends each notice to PagerDuty, then to SNS (`sns`); a notice PagerDuty did not take after
/// its retries is not published, and its messages stay undecided like a refused publish.
pub struct PagerDutyThenSns {
    pub events: EventsApi,
    pub sns: Box<dyn Notifier>,
    /// Read before a resolve: whether another incident of the cluster and kind is alerted.
    pub ledger: Option<Box<dyn Ledger>>,
    /// Where a rejected event is counted.
    pub metrics: Box<dyn MetricsSink>,
    pub clock: Box<dyn Clock>,
}

#[async_trait::async_trait]
impl Notifier for PagerDutyThenSns {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        let now = self.clock.now();
        let event = pagerduty::event(alert, now);
        if event.event_action == Action::Trigger || !self.still_alerted(alert, now).await? {
            self.deliver(&event).await?;
        } else {
            info!(dedup_key = %event.dedup_key, "other incidents of the cluster and kind are alerted: the PagerDuty alert stays open");
        }
        self.sns.publish(alert).await
    }
}

impl PagerDutyThenSns {
    async fn deliver(&self, event: &Event) -> Result<(), AwsError> {
        match self.events.send(event).await {
            Ok(Sent::Accepted) => Ok(()),
            // Malformed for PagerDuty: logged with its answer and counted; SNS still tells it.
            Ok(Sent::Rejected(answer)) => {
                error!(status = answer.status, body = %answer.body, dedup_key = %event.dedup_key, "PagerDuty rejected the event");
                let datum = MetricDatum {
                    name: REJECTED_METRIC,
                    dimensions: Vec::new(),
                    value: 1.0,
                };
                if let Err(e) = self.metrics.publish(&[datum]).await {
                    error!(error = %error_chain(&e), "metrics not published");
                }
                Ok(())
            }
            Err(e) => {
                error!(error = %error_chain(&e), dedup_key = %event.dedup_key, "PagerDuty did not take the event: the notice is given back");
                Err(e)
            }
        }
    }

    /// Whether an incident of the alert's cluster and kind other than those closing is still
    /// alerted ([`pagerduty::holds_page`]): the cluster index names the open ones, a consistent
    /// read of each says where it is now.
    async fn still_alerted(&self, alert: &Alert, now: u64) -> Result<bool, AwsError> {
        let (Some(ledger), Some(cluster_arn)) = (self.ledger.as_deref(), pagerduty::cluster_arn(alert)) else {
            return Ok(false);
        };
        let keys: Vec<IncidentKey> = ledger
            .open_incidents(&cluster_arn)
            .await?
            .into_iter()
            .filter(|k| k.kind == alert.kind)
            .collect();
        for chunk in keys.chunks(crate::pipeline::DESCRIBE_LIMIT) {
            if pagerduty::holds_page(&ledger.get(chunk).await?, now) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Reads the routing key named by `PAGERDUTY_ROUTING_KEY_PARAMETER` (a SecureString, or a
/// Secrets Manager secret through `/aws/reference/secretsmanager/<id>`), decrypted, into the
/// configuration; nothing to do when PagerDuty is off. A parameter that cannot be read stops
/// init, naming the variable.
pub async fn load_routing_key(
    pagerduty: &mut Option<PagerDutyConfig>,
    sdk: &aws_config::SdkConfig,
) -> Result<(), ConfigError> {
    let Some(pagerduty) = pagerduty.as_mut() else {
        return Ok(());
    };
    let ssm = OnFirstUse::new(sdk, aws_sdk_ssm::Client::new);
    let unreadable = |problem: String| ConfigError {
        variable: crate::config::PAGERDUTY_ROUTING_KEY_PARAMETER,
        problem,
        accepted: crate::config::PAGERDUTY_PARAMETER_ACCEPTED,
    };
    let answer = ssm
        .get()
        .get_parameter()
        .name(&pagerduty.parameter)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            unreadable(format!(
                "names {:?}, which could not be read ({READ_KEY}, and {READ_SECRET} for a secret): {}",
                pagerduty.parameter,
                error_chain(&e)
            ))
        })?;
    let value = answer.parameter().and_then(|p| p.value()).unwrap_or_default();
    pagerduty.routing_key = Some(RoutingKey::parse(value).ok_or_else(|| {
        unreadable(format!(
            "names {:?}, whose value is not a routing key (empty, or with spaces)",
            pagerduty.parameter
        ))
    })?);
    Ok(())
}
