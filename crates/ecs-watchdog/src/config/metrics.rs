//! What the metrics cost, and whether they reach CloudWatch at all.

use super::{ConfigError, DEFAULT_NAMESPACE, MetricsSinkKind, boolean, invalid};

/// `METRIC_NAMESPACE`, as CloudWatch accepts it.
pub(super) fn namespace(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let namespace = get("METRIC_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    if namespace.len() > 255 || namespace.starts_with(':') || namespace.starts_with("AWS/") {
        return Err(invalid(
            "METRIC_NAMESPACE",
            &namespace,
            "up to 255 characters, not starting with ':' or 'AWS/'",
        ));
    }
    Ok(namespace)
}

/// `METRICS_SINK`: EMF by default in Lambda, the API elsewhere; refused where Lambda would drop
/// the EMF lines.
pub(super) fn sink(get: &impl Fn(&str) -> Option<String>) -> Result<MetricsSinkKind, ConfigError> {
    let in_lambda = get("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let sink = match get("METRICS_SINK").as_deref() {
        None if in_lambda => MetricsSinkKind::Emf,
        None => MetricsSinkKind::Api,
        Some("emf") => MetricsSinkKind::Emf,
        Some("api") => MetricsSinkKind::Api,
        Some(other) => return Err(invalid("METRICS_SINK", other, "emf, api")),
    };
    emf_reaches_cloudwatch(get, sink)?;
    Ok(sink)
}

/// `CLUSTER_GAUGES`: the gauges also per cluster (`ClusterName`). Off by default: a gauge is
/// published every run, so per cluster it is a CloudWatch metric per cluster and gauge, billed
/// whatever happens; the alarms watch the gauges with no dimension.
pub(super) fn cluster_gauges(get: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    boolean(get, "CLUSTER_GAUGES", false)
}

/// Lambda's application log levels, most detail first.
const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// Whether Lambda sends a line that has no `"level"` key (an EMF line) on to CloudWatch Logs,
/// for the function's log format and application log level (`AWS_LAMBDA_LOG_FORMAT`,
/// `AWS_LAMBDA_LOG_LEVEL`, which Lambda sets from the function's logging configuration).
/// The Lambda developer guide, "Log-level filtering"
/// (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html):
/// filtering applies to the JSON log format only; a line whose `"level"` is missing or invalid
/// is given the level INFO; Lambda sends the lines of the selected level and of less detail.
/// So an EMF line survives TRACE, DEBUG and INFO, and is dropped at WARN, ERROR and FATAL.
pub fn lambda_sends_unlevelled_lines(format: Option<&str>, level: Option<&str>) -> bool {
    let filtered = format.is_some_and(|f| f.eq_ignore_ascii_case("JSON"));
    let rank = |name: &str| LEVELS.iter().position(|l| l.eq_ignore_ascii_case(name));
    match level.and_then(rank) {
        Some(selected) if filtered => rank("INFO") >= Some(selected),
        // Text logs are not filtered; an unknown level is Lambda's to refuse, not ours.
        _ => true,
    }
}

/// With the EMF sink, metrics are log lines: a log level that drops them silences every count
/// alarm and pages the sweep's heartbeat alarm forever. Refused at init instead.
fn emf_reaches_cloudwatch(get: &impl Fn(&str) -> Option<String>, sink: MetricsSinkKind) -> Result<(), ConfigError> {
    let level = get("AWS_LAMBDA_LOG_LEVEL");
    if sink == MetricsSinkKind::Emf
        && !lambda_sends_unlevelled_lines(get("AWS_LAMBDA_LOG_FORMAT").as_deref(), level.as_deref())
    {
        return Err(ConfigError {
            variable: "AWS_LAMBDA_LOG_LEVEL",
            problem: format!(
                "is {:?}: Lambda would drop the metric (EMF) lines, which have no level and count as INFO",
                level.unwrap_or_default()
            ),
            accepted: "TRACE, DEBUG, INFO (the template's LogLevel), or any level with METRICS_SINK=api",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_logs_are_filtered_by_level_then_unlevelled_lines_pass_at_info_and_more_detail_only() {
        for (format, level, sent) in [
            (Some("JSON"), Some("TRACE"), true),
            (Some("JSON"), Some("DEBUG"), true),
            (Some("JSON"), Some("INFO"), true),
            (Some("JSON"), Some("WARN"), false),
            (Some("JSON"), Some("ERROR"), false),
            (Some("json"), Some("fatal"), false),
            (Some("Text"), Some("ERROR"), true),
            (None, None, true),
            (Some("JSON"), None, true),
        ] {
            assert_eq!(
                lambda_sends_unlevelled_lines(format, level),
                sent,
                "{format:?} {level:?}"
            );
        }
    }
}
