//! The places a hub serves (DESIGN §10) and how its alerts speak to chat: `ACCOUNT_ROLE_NAME`,
//! `SWEEP_ACCOUNTS`, `SWEEP_REGIONS`, `CHAT_FORMAT`.

use super::{ConfigError, invalid, list};

/// The member accounts and regions a hub serves (DESIGN §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    /// The hub's own account: the alert topic's. Its events are checked without a role.
    pub home: String,
    /// The partition of the hub's account (`aws`, `aws-cn`, ...), which its members share.
    pub partition: String,
    /// The role the hub assumes in a member account (`ACCOUNT_ROLE_NAME`).
    pub role_name: String,
    /// What the sweep covers besides the hub's own account and region: every account of
    /// `SWEEP_ACCOUNTS` in every region of `SWEEP_REGIONS`.
    pub swept: Vec<Place>,
}

impl Accounts {
    /// The role the hub assumes in `account`.
    pub fn role_arn(&self, account: &str) -> String {
        format!("arn:{}:iam::{account}:role/{}", self.partition, self.role_name)
    }
}

/// An account and a region: where a cluster lives, and whose credentials and endpoints check it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    pub account: String,
    pub region: String,
}

impl Place {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            region: region.into(),
        }
    }

    /// The account and region a cluster ARN names (`arn:aws:ecs:<region>:<account>:cluster/…`).
    pub fn of_cluster(cluster_arn: &str) -> Option<Place> {
        let mut parts = cluster_arn.split(':');
        let (_, _, _, region, account) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        (!region.is_empty() && !account.is_empty()).then(|| Place::new(account, region))
    }
}

/// `123456789012, eu-west-1`; the region alone when the account is unknown.
impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.account.is_empty() {
            f.write_str(&self.region)
        } else {
            write!(f, "{}, {}", self.account, self.region)
        }
    }
}

/// How alerts are rendered for chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// The `default` and `email` keys only.
    Plain,
    /// Also the `https` key, in the custom notification format of Amazon Q Developer in chat
    /// applications (AWS Chatbot), which subscribes to the topic over HTTPS.
    Chatbot,
}

pub const DEFAULT_ACCOUNT_ROLE_NAME: &str = "ecs-watchdog-reader";

/// The hub's account (`HOME_ACCOUNT`, the stack's; without it the alert topic's, which with
/// `AlertTopicArn` may be another account's), the member role's name, and the places the sweep
/// covers: `SWEEP_ACCOUNTS` × `SWEEP_REGIONS` (default: the function's own region).
pub(super) fn accounts(get: &impl Fn(&str) -> Option<String>, alert_topic_arn: &str) -> Result<Accounts, ConfigError> {
    let arn: Vec<&str> = alert_topic_arn.split(':').collect();
    let (partition, mut home) = (arn[1].to_owned(), arn[4].to_owned());
    if let Some(account) = get("HOME_ACCOUNT") {
        if !is_account(&account) {
            return Err(invalid("HOME_ACCOUNT", &account, "an AWS account id (12 digits)"));
        }
        home = account;
    }
    let role_name = get("ACCOUNT_ROLE_NAME").unwrap_or_else(|| DEFAULT_ACCOUNT_ROLE_NAME.to_owned());
    let role_chars = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if role_name.len() > 64 || !role_name.chars().all(role_chars) {
        return Err(invalid(
            "ACCOUNT_ROLE_NAME",
            &role_name,
            "an IAM role name (up to 64 letters, digits and +=,.@_-)",
        ));
    }
    let list = |variable| list(get, variable);
    let accounts = list("SWEEP_ACCOUNTS");
    if let Some(bad) = accounts.iter().find(|a| !is_account(a)) {
        return Err(invalid(
            "SWEEP_ACCOUNTS",
            bad,
            "AWS account ids (12 digits), separated by commas",
        ));
    }
    let mut regions = list("SWEEP_REGIONS");
    let region_chars = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if let Some(bad) = regions
        .iter()
        .find(|r| !r.chars().all(region_chars) || !r.contains('-'))
    {
        return Err(invalid(
            "SWEEP_REGIONS",
            bad,
            "AWS Region codes (eu-west-1), separated by commas",
        ));
    }
    if regions.is_empty() {
        regions.extend(get("AWS_REGION"));
    }
    let mut swept: Vec<Place> = accounts
        .iter()
        .flat_map(|a| regions.iter().map(move |r| Place::new(a, r)))
        .collect();
    swept.sort();
    swept.dedup();
    Ok(Accounts {
        home,
        partition,
        role_name,
        swept,
    })
}

fn is_account(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}
