//! ECS capacity providers: their type (ECS Managed Instances or not) and Auto Scaling group.

use std::collections::HashMap;

use aws_sdk_ecs::types::CapacityProvider;

use super::EcsInventory;
use crate::aws::sdk_error;
use crate::inventory::CapacityProviderType;
use crate::ports::AwsError;

/// `DescribeCapacityProviders` page size: its most.
pub const CAPACITY_PROVIDER_PAGE: i32 = 10;

impl EcsInventory {
    /// `DescribeCapacityProviders`: each named provider's type (an ECS Managed Instances
    /// provider's instances are repaired by ECS, never drained).
    pub async fn describe_capacity_providers(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, CapacityProviderType>, AwsError> {
        let providers = self.capacity_providers(names).await?;
        Ok(providers
            .iter()
            .filter_map(|p| {
                let kind = CapacityProviderType::parse(p.r#type().map_or("", |t| t.as_str()));
                Some((p.name()?.to_owned(), kind))
            })
            .collect())
    }

    /// `DescribeCapacityProviders`: the Auto Scaling group of each named EC2 Auto Scaling
    /// provider (`autoScalingGroupProvider.autoScalingGroupArn`); other providers are left out.
    pub async fn capacity_provider_groups(&self, names: &[String]) -> Result<HashMap<String, String>, AwsError> {
        let providers = self.capacity_providers(names).await?;
        Ok(providers
            .iter()
            .filter_map(|p| {
                let group = p.auto_scaling_group_provider()?.auto_scaling_group_arn();
                Some((p.name()?.to_owned(), group.to_owned()))
            })
            .collect())
    }

    /// The named providers, every page: ECS answers at most 10 providers a page (API reference,
    /// `maxResults` 1 to 10) and the SDK has no paginator for it, so the pages are followed by
    /// `nextToken`, each one call. (Remediation once read only the first page: an 11th
    /// provider's Managed Instances were not known as such.)
    async fn capacity_providers(&self, names: &[String]) -> Result<Vec<CapacityProvider>, AwsError> {
        let mut providers = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .describe_capacity_providers()
                .set_capacity_providers(Some(names.to_vec()))
                .max_results(CAPACITY_PROVIDER_PAGE)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| sdk_error("ecs:DescribeCapacityProviders", e))?;
            providers.extend(output.capacity_providers().iter().cloned());
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(providers),
            }
        }
    }
}
