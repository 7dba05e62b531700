//! ECS Managed Daemons: a cluster's daemons, their placement and criticality, and whether a
//! deployment of one is under way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::DaemonDeploymentStatus;

use super::PAGE_SIZE;
use crate::aws::sdk_error;
use crate::aws::shared::Turns;
use crate::inventory::{Daemon, DaemonPlacement};
use crate::ports::{AwsError, Daemons};

/// How long a daemon's placement and criticality are trusted: a deployment makes a new revision.
const PLACEMENT_TTL: Duration = Duration::from_secs(300);

/// The Managed Daemons APIs, on their own client so they can be configured (or mocked) apart.
pub struct EcsDaemons {
    client: Client,
    turns: Turns,
    /// `DescribeDaemon` and `DescribeDaemonRevisions` answers by daemon ARN, across warm
    /// invocations.
    placements: Mutex<HashMap<String, (DaemonPlacement, Instant)>>,
}

impl EcsDaemons {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            turns: Turns::new(),
            placements: Mutex::new(HashMap::new()),
        }
    }

    /// Whether every current revision is critical (ECS's default when unset); `None` when the
    /// revisions could not be read.
    async fn critical(&self, revision_arns: Vec<String>) -> Option<bool> {
        if revision_arns.is_empty() {
            return None;
        }
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .describe_daemon_revisions()
            .set_daemon_revision_arns(Some(revision_arns))
            .send()
            .await
            .map_err(|e| tracing::warn!(error = %crate::ports::error_chain(&sdk_error("ecs:DescribeDaemonRevisions", e)), "daemon criticality unknown"))
            .ok()?;
        let revisions = output.daemon_revisions();
        (!revisions.is_empty()).then(|| revisions.iter().all(|r| r.critical().unwrap_or(true)))
    }
}

#[async_trait::async_trait]
impl Daemons for EcsDaemons {
    /// By hand: the SDK has no paginator for `ListDaemons` (its model does not mark it paginated).
    async fn list_daemons(&self, cluster_arn: &str) -> Result<Vec<Daemon>, AwsError> {
        let mut daemons = Vec::new();
        let mut next_token = None;
        loop {
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .list_daemons()
                .cluster_arn(cluster_arn)
                .max_results(PAGE_SIZE)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| sdk_error("ecs:ListDaemons", e))?;
            daemons.extend(output.daemon_summaries_list().iter().filter_map(|d| {
                let arn = d.daemon_arn()?;
                Some(Daemon {
                    arn: arn.to_owned(),
                    name: arn.rsplit('/').next().unwrap_or(arn).to_owned(),
                })
            }));
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(daemons),
            }
        }
    }

    async fn describe_daemon(&self, daemon_arn: &str) -> Result<DaemonPlacement, AwsError> {
        let cached = self
            .placements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(daemon_arn)
            .cloned();
        if let Some((placement, _)) = cached.filter(|(_, at)| at.elapsed() < PLACEMENT_TTL) {
            return Ok(placement);
        }
        let output = {
            let _turn = self.turns.wait().await;
            self.client
                .describe_daemon()
                .daemon_arn(daemon_arn)
                .send()
                .await
                .map_err(|e| sdk_error("ecs:DescribeDaemon", e))?
        };
        // Every current revision's capacity providers: during a deployment old and new overlap.
        let revisions = output.daemon().map(|d| d.current_revisions()).unwrap_or_default();
        let mut capacity_providers: Vec<String> = revisions
            .iter()
            .flat_map(|r| r.capacity_providers())
            .filter_map(|p| p.arn())
            .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_owned())
            .collect();
        capacity_providers.sort();
        capacity_providers.dedup();
        let revision_arns = revisions.iter().filter_map(|r| r.arn()).map(str::to_owned).collect();
        let placement = DaemonPlacement {
            capacity_providers,
            critical: self.critical(revision_arns).await,
        };
        if placement.critical.is_some() {
            self.placements
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(daemon_arn.to_owned(), (placement.clone(), Instant::now()));
        }
        Ok(placement)
    }

    async fn deployment_in_progress(&self, daemon_arn: &str) -> Result<bool, AwsError> {
        let unfinished = [
            DaemonDeploymentStatus::Pending,
            DaemonDeploymentStatus::InProgress,
            DaemonDeploymentStatus::StopRequested,
            DaemonDeploymentStatus::RollbackInProgress,
        ];
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .list_daemon_deployments()
            .daemon_arn(daemon_arn)
            .set_status(Some(unfinished.to_vec()))
            .max_results(1)
            .send()
            .await
            .map_err(|e| sdk_error("ecs:ListDaemonDeployments", e))?;
        Ok(!output.daemon_deployments().is_empty())
    }
}
