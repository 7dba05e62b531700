//! Calls in batches: a look-up of many names is split into calls of at most [`DESCRIBE_LIMIT`]
//! (or a service's own limit), made at once, each answer paired with the names it carried, so a
//! failed call marks only those names unknown; and how such a failure is logged.

use std::future::Future;

use futures_util::future::join_all;
use tracing::error;

use crate::inventory::cluster_name;
use crate::ports::{AwsError, error_chain};

/// The most names one describe call takes (ECS clusters, container instances and tasks; we
/// hold `DescribeInstances` to the same).
pub const DESCRIBE_LIMIT: usize = 100;

/// The most ECS Anywhere hosts one `DescribeInstanceInformation` asks about: it answers at most
/// 50 nodes a page (`MaxResults` 5 to 50, SSM API reference), so 50 ids a call take one page each
/// and 120 hosts cost 3 calls.
pub const MANAGED_NODE_LIMIT: usize = 50;

/// Calls `call` once per [`DESCRIBE_LIMIT`] items, concurrently (the adapters bound how many
/// are in flight), and pairs each chunk with its answer.
pub async fn chunked<'a, T, R, F, Fut>(items: &'a [T], call: F) -> Vec<(&'a [T], Result<R, AwsError>)>
where
    F: Fn(&'a [T]) -> Fut,
    Fut: Future<Output = Result<R, AwsError>>,
{
    chunked_by(items, DESCRIBE_LIMIT, call).await
}

/// The same, `limit` items a call.
pub async fn chunked_by<'a, T, R, F, Fut>(items: &'a [T], limit: usize, call: F) -> Vec<(&'a [T], Result<R, AwsError>)>
where
    F: Fn(&'a [T]) -> Fut,
    Fut: Future<Output = Result<R, AwsError>>,
{
    let chunks: Vec<&[T]> = items.chunks(limit).collect();
    let answers = join_all(chunks.iter().map(|chunk| call(chunk))).await;
    chunks.into_iter().zip(answers).collect()
}

pub fn log_check_error(cluster: &str, error: &AwsError, names: usize) {
    error!(cluster = cluster_name(cluster), operation = error.operation, error = %error_chain(error), names, "check failed: its messages go back to the queue");
}
