//! The restart step (restart-agent, restart-then-drain): `systemctl restart ecs` on the host
//! through SSM Run Command, which keeps the instance, its image cache and its running tasks.
//! An EC2 instance (`i-…`) and an ECS Anywhere host's managed node (`mi-…`) are both SSM
//! managed nodes; for an Anywhere host it is the only remedy (no Auto Scaling group).
//!
//! The command is the stack's own SSM Command document (`RESTART_DOCUMENT_NAME`, template
//! resource `RestartAgentDocument`): one `aws:runShellScript` step that runs
//! [`RESTART_COMMAND`] and takes no parameter, so the function's `ssm:SendCommand` grant, which
//! names only that document, lets it run nothing else (AWS-RunShellScript would run any
//! command as root on any node in scope).

use aws_sdk_ssm::Client;
use aws_smithy_runtime_api::client::result::SdkError;

use super::sdk_error;
use super::shared::{OnFirstUse, Turns};
use crate::pipeline::RESTART_STEP;
use crate::ports::error_chain;
use crate::remediation::{RemediationStep, Scope, StepOutcome, Target};

/// What the document runs: the ECS agent's systemd unit (`ecs`, from the ecs-init package) on
/// the ECS-optimized AMIs and on the Linux hosts the ECS Anywhere install script sets up
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/agent-update-ecs-ami.html>,
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-anywhere-registration.html>).
/// Kept equal to the template's document by `tests/restart.rs`.
pub const RESTART_COMMAND: &str = "systemctl restart ecs";

pub struct RestartAgent {
    ssm: OnFirstUse<Client>,
    turns: Turns,
    /// The stack's Command document (`RESTART_DOCUMENT_NAME`).
    document: String,
    /// Checked again here, the last step before the call (the pipeline checks it first).
    scope: Scope,
}

impl RestartAgent {
    pub fn new(ssm: OnFirstUse<Client>, document: String, scope: Scope) -> Self {
        Self {
            ssm,
            turns: Turns::new(),
            document,
            scope,
        }
    }

    /// One command per host: a command's outcome (and its id on the incident) is the host's.
    async fn restart(&self, node: &str) -> StepOutcome {
        let _turn = self.turns.wait().await;
        let sent = self
            .ssm
            .get()
            .send_command()
            .document_name(&self.document)
            // Updates of the stack's document are new versions (its UpdateMethod): the latest,
            // not the first one, which stays the default.
            .document_version("$LATEST")
            .instance_ids(node)
            .comment("ecs-watchdog: the ECS agent disconnected")
            .send()
            .await;
        match sent {
            // SSM surely runs nothing it never got or answered with a client error (throttled,
            // refused); after a timeout or a lost answer the command may run, so its claim holds.
            Err(e) => {
                let refused = match &e {
                    SdkError::ConstructionFailure(_) => true,
                    SdkError::ServiceError(_) => e.raw_response().is_some_and(|r| r.status().is_client_error()),
                    _ => false,
                };
                let e = error_chain(&sdk_error("ssm:SendCommand", e));
                match refused {
                    true => StepOutcome::Refused(e),
                    false => StepOutcome::Failed(e),
                }
            }
            Ok(output) => {
                let id = output.command().and_then(|c| c.command_id()).unwrap_or("unknown");
                StepOutcome::Done(format!(
                    "agent restarted ({RESTART_COMMAND}: SSM document {}, command {id})",
                    self.document
                ))
            }
        }
    }
}

/// The managed node a target's agent runs on: its EC2 instance or Anywhere host id.
fn node(target: &Target) -> Option<&str> {
    target
        .ec2_instance_id
        .as_deref()
        .filter(|id| id.starts_with("i-") || id.starts_with("mi-"))
}

#[async_trait::async_trait]
impl RemediationStep for RestartAgent {
    fn name(&self) -> &str {
        RESTART_STEP
    }

    async fn apply(&self, cluster_arn: &str, targets: &[Target], dry_run: bool) -> Vec<StepOutcome> {
        if !self.scope.covers(cluster_arn) {
            let why = Scope::outside(cluster_arn, "restarted");
            return targets.iter().map(|_| StepOutcome::Skipped(why.clone())).collect();
        }
        let outcomes = targets.iter().map(|target| async move {
            match node(target) {
                None => StepOutcome::Skipped("not restarted: no EC2 instance or managed node known".into()),
                Some(node) if dry_run => {
                    StepOutcome::WouldDo(format!("restart the agent on {node} ({RESTART_COMMAND})"))
                }
                Some(node) => self.restart(node).await,
            }
        });
        futures_util::future::join_all(outcomes).await
    }
}
