//! Member places (DESIGN §10): the hub assumes `ACCOUNT_ROLE_NAME` in each account, once while
//! the credentials last, and builds the clients of each account and region once per Lambda
//! instance. Only the hub's own account and region needs no role ([`crate::pipeline::Hub`]
//! checks it with the function's own); another region of its own account is reached through the
//! reader role spoke.yaml creates there too, since the function's grants name its own region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};

use super::shared::OnFirstUse;
use crate::config::{Accounts, Config, Place};
use crate::pipeline::{Adapters, Reach};
use crate::ports::AwsError;

/// How long assumed credentials are asked for; they are renewed this long before they expire.
const SESSION: Duration = Duration::from_secs(3600);
const RENEW_BEFORE: Duration = Duration::from_secs(300);
const SESSION_NAME: &str = "ecs-watchdog";

/// The member accounts as the hub reaches them.
pub struct MemberAccounts {
    config: Config,
    hub: aws_config::SdkConfig,
    sts: Arc<OnFirstUse<aws_sdk_sts::Client>>,
    roles: Mutex<HashMap<String, Arc<AssumedRole>>>,
}

impl MemberAccounts {
    pub fn new(config: Config, hub: &aws_config::SdkConfig) -> Self {
        Self {
            sts: Arc::new(OnFirstUse::new(hub, aws_sdk_sts::Client::new)),
            config,
            hub: hub.clone(),
            roles: Mutex::new(HashMap::new()),
        }
    }

    fn role(&self, account: &str) -> Arc<AssumedRole> {
        let mut roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        roles
            .entry(account.to_owned())
            .or_insert_with(|| Arc::new(AssumedRole::new(self.sts.clone(), &self.config.accounts, account)))
            .clone()
    }
}

#[async_trait::async_trait]
impl Reach for MemberAccounts {
    async fn ready(&self, place: &Place) -> Result<(), AwsError> {
        self.role(&place.account).credentials().await.map(drop)
    }

    fn adapters(&self, place: &Place) -> Adapters {
        let member = self
            .hub
            .to_builder()
            .region(aws_config::Region::new(place.region.clone()))
            .credentials_provider(SharedCredentialsProvider::new(Provider(self.role(&place.account))))
            .build();
        let mut io = super::adapters(&self.config, &self.hub);
        let member = super::in_place(&self.config, &member);
        io.inventory = member.inventory;
        io.daemons = member.daemons;
        io.steps = member.steps;
        io
    }
}

/// The role of one member account: `sts:AssumeRole` when no credentials are held or they
/// expire within [`RENEW_BEFORE`], one call at a time.
struct AssumedRole {
    sts: Arc<OnFirstUse<aws_sdk_sts::Client>>,
    role_arn: String,
    held: tokio::sync::Mutex<Option<Credentials>>,
}

impl AssumedRole {
    fn new(sts: Arc<OnFirstUse<aws_sdk_sts::Client>>, accounts: &Accounts, account: &str) -> Self {
        Self {
            sts,
            role_arn: accounts.role_arn(account),
            held: tokio::sync::Mutex::new(None),
        }
    }

    async fn credentials(&self) -> Result<Credentials, AwsError> {
        let mut held = self.held.lock().await;
        let fresh = |c: &Credentials| c.expiry().is_some_and(|at| at > SystemTime::now() + RENEW_BEFORE);
        if let Some(credentials) = held.as_ref().filter(|c| fresh(c)) {
            return Ok(credentials.clone());
        }
        let answer = self
            .sts
            .get()
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(SESSION_NAME)
            .duration_seconds(SESSION.as_secs() as i32)
            .send()
            .await
            .map_err(|e| super::sdk_error("sts:AssumeRole", e))?;
        let given = answer
            .credentials()
            .ok_or_else(|| AwsError::new("sts:AssumeRole", "the answer has no credentials"))?;
        let expiry = SystemTime::try_from(*given.expiration()).unwrap_or_else(|_| SystemTime::now() + SESSION);
        let credentials = Credentials::new(
            given.access_key_id(),
            given.secret_access_key(),
            Some(given.session_token().to_owned()),
            Some(expiry),
            "ecs-watchdog-member-role",
        );
        *held = Some(credentials.clone());
        Ok(credentials)
    }
}

impl std::fmt::Debug for AssumedRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssumedRole").field("role_arn", &self.role_arn).finish()
    }
}

/// The role as the SDK clients of its account ask for credentials.
#[derive(Debug)]
struct Provider(Arc<AssumedRole>);

impl ProvideCredentials for Provider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map_err(provider::error::CredentialsError::provider_error)
        })
    }
}
