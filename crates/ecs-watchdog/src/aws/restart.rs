//! The restart step (restart-agent, restart-then-drain): `systemctl restart ecs` on the host
//! through SSM Run Command, which keeps the instance, its image cache and its running tasks.
//! An EC2 instance (`i-…`) and an ECS Anywhere host's managed node (`mi-…`) are both SSM
//! managed nodes; for an Anywhere host it is the only remedy (no Auto Scaling group).

use aws_sdk_ssm::Client;

use super::sdk_error;
use super::shared::{OnFirstUse, Turns};
use crate::pipeline::RESTART_STEP;
use crate::ports::error_chain;
use crate::remediation::{RemediationStep, Scope, StepOutcome, Target};

/// The AWS-owned document that runs shell commands on Linux managed nodes.
pub const RESTART_DOCUMENT: &str = "AWS-RunShellScript";
/// What it runs there: the ECS agent's systemd unit on the ECS-optimized AMIs and on ECS
/// Anywhere hosts (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/agent-update-ecs-ami.html>).
pub const RESTART_COMMAND: &str = "systemctl restart ecs";

pub struct RestartAgent {
    ssm: OnFirstUse<Client>,
    turns: Turns,
    /// Checked again here, the last step before the call (the pipeline checks it first).
    scope: Scope,
}

impl RestartAgent {
    pub fn new(ssm: OnFirstUse<Client>, scope: Scope) -> Self {
        Self {
            ssm,
            turns: Turns::new(),
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
            .document_name(RESTART_DOCUMENT)
            .instance_ids(node)
            .parameters("commands", vec![RESTART_COMMAND.to_owned()])
            .comment("ecs-watchdog: the ECS agent disconnected")
            .send()
            .await
            .map_err(|e| sdk_error("ssm:SendCommand", e));
        match sent {
            Err(e) => StepOutcome::Failed(error_chain(&e)),
            Ok(output) => {
                let id = output.command().and_then(|c| c.command_id()).unwrap_or("unknown");
                StepOutcome::Done(format!("agent restarted ({RESTART_COMMAND}, SSM command {id})"))
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
