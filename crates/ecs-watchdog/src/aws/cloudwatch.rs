//! Metrics out: Embedded Metric Format on stdout, or `PutMetricData`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum as CwDatum, StandardUnit};

use crate::metrics::{MetricDatum, emf_lines, without_cluster_gauges};
use crate::ports::{AwsError, MetricsSink};

/// `PutMetricData` takes at most 1,000 data points a call.
const PUT_LIMIT: usize = 1000;

/// Writes EMF lines to stdout, where Lambda sends them to CloudWatch Logs.
pub struct EmfMetrics {
    namespace: String,
}

impl EmfMetrics {
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[async_trait::async_trait]
impl MetricsSink for EmfMetrics {
    async fn publish(&self, data: &[MetricDatum]) -> Result<(), AwsError> {
        // One locked write so the lines are not interleaved with log lines.
        let mut text = emf_lines(&self.namespace, now_ms(), data).join("\n");
        text.push('\n');
        std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| AwsError::new("stdout", e))
    }
}

/// Either sink without the per-cluster gauges (`CLUSTER_GAUGES=false`, the default): what the
/// stack's cost does not grow with ([`without_cluster_gauges`]).
pub struct WithoutClusterGauges(pub Box<dyn MetricsSink>);

#[async_trait::async_trait]
impl MetricsSink for WithoutClusterGauges {
    async fn publish(&self, data: &[MetricDatum]) -> Result<(), AwsError> {
        let kept = without_cluster_gauges(data);
        if kept.is_empty() {
            return Ok(());
        }
        self.0.publish(&kept).await
    }
}

/// Publishes with `PutMetricData`: one call per 1,000 data points.
pub struct CloudWatchMetrics {
    client: Client,
    namespace: String,
}

impl CloudWatchMetrics {
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        Self {
            client,
            namespace: namespace.into(),
        }
    }
}

#[async_trait::async_trait]
impl MetricsSink for CloudWatchMetrics {
    async fn publish(&self, data: &[MetricDatum]) -> Result<(), AwsError> {
        let timestamp = aws_smithy_types::DateTime::from_millis(now_ms() as i64);
        for chunk in data.chunks(PUT_LIMIT) {
            let datums = chunk
                .iter()
                .map(|d| {
                    CwDatum::builder()
                        .metric_name(d.name)
                        .set_dimensions(Some(
                            d.dimensions
                                .iter()
                                .map(|(k, v)| Dimension::builder().name(*k).value(v).build())
                                .collect(),
                        ))
                        .value(d.value)
                        .unit(StandardUnit::Count)
                        .timestamp(timestamp)
                        .build()
                })
                .collect();
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(datums))
                .send()
                .await
                .map_err(|e| super::sdk_error("cloudwatch:PutMetricData", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::put_metric_data::{PutMetricDataError, PutMetricDataOutput};
    use aws_sdk_cloudwatch::types::error::InternalServiceFault;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn data(n: usize) -> Vec<MetricDatum> {
        (0..n)
            .map(|i| MetricDatum {
                name: "AgentDisconnected",
                dimensions: vec![("ClusterName", format!("c{i}"))],
                value: 1.0,
            })
            .collect()
    }

    #[tokio::test]
    async fn when_data_fits_one_call_then_put_metric_data_is_called_once_with_counts() {
        let put = mock!(aws_sdk_cloudwatch::Client::put_metric_data)
            .match_requests(|r| {
                r.namespace() == Some("ECSWatchdog")
                    && r.metric_data().len() == 1000
                    && r.metric_data()
                        .iter()
                        .all(|d| d.unit() == Some(&StandardUnit::Count) && d.dimensions().len() == 1)
            })
            .then_output(|| PutMetricDataOutput::builder().build());
        let sink = CloudWatchMetrics::new(
            mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&put]),
            "ECSWatchdog",
        );
        sink.publish(&data(1000)).await.unwrap();
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn when_data_exceeds_1000_points_then_it_is_split_across_calls() {
        let put = mock!(aws_sdk_cloudwatch::Client::put_metric_data)
            .match_requests(|r| r.metric_data().len() <= 1000)
            .then_output(|| PutMetricDataOutput::builder().build());
        let sink = CloudWatchMetrics::new(
            mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&put]),
            "ECSWatchdog",
        );
        sink.publish(&data(1500)).await.unwrap();
        assert_eq!(put.num_calls(), 2);
    }

    #[tokio::test]
    async fn when_cloudwatch_fails_then_the_error_names_the_operation_and_keeps_the_cause() {
        let put = mock!(aws_sdk_cloudwatch::Client::put_metric_data).then_error(|| {
            PutMetricDataError::InternalServiceFault(InternalServiceFault::builder().message("boom").build())
        });
        let sink = CloudWatchMetrics::new(
            mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&put]),
            "ECSWatchdog",
        );
        let error = sink.publish(&data(1)).await.unwrap_err();
        assert_eq!(error.operation, "cloudwatch:PutMetricData");
        assert!(
            crate::ports::error_chain(&error).contains("boom"),
            "{}",
            crate::ports::error_chain(&error)
        );
    }
}
