//! Metrics out: Embedded Metric Format on stdout, or `PutMetricData`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum as CwDatum, StandardUnit};

use crate::metrics::{MetricDatum, emf_lines};
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
                .map_err(|e| AwsError::new("cloudwatch:PutMetricData", e))?;
        }
        Ok(())
    }
}
