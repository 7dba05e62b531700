//! What the adapters share: one HTTPS client, a limit on calls in flight, clients built on
//! first use.

use std::sync::OnceLock;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use tokio::sync::{Semaphore, SemaphorePermit};

/// The SDK's default HTTPS client (rustls, proxy from the environment), on ring rather than
/// aws-lc (BENCHMARKS.md says why), and without its start-up check.
///
/// The stock client checks itself each time a service client is constructed by building a TLS
/// connector and throwing it away, which parses every system root certificate: with five
/// clients that was 84% of the instructions before the first `/next` (callgrind). Here the
/// connector is built once, on the first call, which needs it anyway; and one client means one
/// connection pool for all services.
#[derive(Debug)]
pub struct FirstUseTls(SharedHttpClient);

impl FirstUseTls {
    pub fn shared() -> SharedHttpClient {
        // `build_with_connector_fn` is how the SDK builds its own default client.
        let client = Builder::new().build_with_connector_fn(|settings, components| {
            let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
            connector.set_connector_settings(settings.cloned());
            connector.set_sleep_impl(components.and_then(|c| c.sleep_impl()));
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        });
        Self(client).into_shared()
    }
}

impl HttpClient for FirstUseTls {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// How many calls one adapter has in flight at once. A batch of thousands of events fans out
/// to dozens of describe calls; all at once they meet the service's request-rate limits and
/// their own timeouts while they queue. A call's timeouts start when it gets its turn.
pub const IN_FLIGHT: usize = 8;

#[derive(Debug)]
pub struct Turns(Semaphore);

impl Turns {
    pub fn new() -> Self {
        Self(Semaphore::new(IN_FLIGHT))
    }

    pub async fn wait(&self) -> SemaphorePermit<'_> {
        self.0.acquire().await.expect("the semaphore is never closed")
    }
}

/// Every page of an SDK paginator, each fetched in a turn of its own: a long listing does not
/// hold a turn while the caller is not asking for the next page.
pub async fn every_page<Page, E>(
    turns: &Turns,
    mut pages: aws_smithy_async::future::pagination_stream::PaginationStream<Result<Page, E>>,
) -> Result<Vec<Page>, E> {
    let mut all = Vec::new();
    loop {
        let _turn = turns.wait().await;
        match pages.next().await {
            Some(page) => all.push(page?),
            None => return Ok(all),
        }
    }
}

/// An SDK client built the first time it is needed, for the services only some batches call:
/// SNS when something is confirmed, SQS when a message is malformed. Building a client parses
/// its SDK crate's own copy of the endpoint partition table, 0.4 M instructions, a sixth of
/// start-up each (callgrind). ECS and EC2, which every batch calls, are built at init, where
/// Lambda runs the function on a full vCPU rather than its memory size's share.
pub struct OnFirstUse<C> {
    sdk: aws_config::SdkConfig,
    build: fn(&aws_config::SdkConfig) -> C,
    client: OnceLock<C>,
}

impl<C> OnFirstUse<C> {
    pub fn new(sdk: &aws_config::SdkConfig, build: fn(&aws_config::SdkConfig) -> C) -> Self {
        Self {
            sdk: sdk.clone(),
            build,
            client: OnceLock::new(),
        }
    }

    /// One already built (a test's mocked client).
    pub fn ready(client: C) -> Self {
        Self {
            sdk: aws_config::SdkConfig::builder().build(),
            build: |_| unreachable!("the client was handed in built"),
            client: OnceLock::from(client),
        }
    }

    pub fn get(&self) -> &C {
        self.client.get_or_init(|| (self.build)(&self.sdk))
    }
}
