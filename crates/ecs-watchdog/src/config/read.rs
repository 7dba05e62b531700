//! How one variable is read: required, a duration, a list, a boolean; and the error that names it.

use std::time::Duration;

use super::ConfigError;

/// A duration read as a whole number (seconds, or minutes when the variable says so), at most
/// `max_seconds`.
pub(super) fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default_seconds: u64,
    max_seconds: u64,
    accepted: &'static str,
) -> Result<Duration, ConfigError> {
    let unit = if variable.ends_with("_MINUTES") { 60 } else { 1 };
    match get(variable) {
        None => Ok(Duration::from_secs(default_seconds)),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .map(|n| n.saturating_mul(unit))
            .filter(|s| *s <= max_seconds)
            .map(Duration::from_secs)
            .ok_or_else(|| invalid(variable, &raw, accepted)),
    }
}

pub(super) fn required(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    accepted: &'static str,
) -> Result<String, ConfigError> {
    get(variable).ok_or(ConfigError {
        variable,
        problem: "is required but not set".to_owned(),
        accepted,
    })
}

/// A comma-separated variable's items, blanks left out; none when unset.
pub(super) fn list(get: &impl Fn(&str) -> Option<String>, variable: &str) -> Vec<String> {
    get(variable)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn boolean(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(raw) if raw.eq_ignore_ascii_case("true") => Ok(true),
        Some(raw) if raw.eq_ignore_ascii_case("false") => Ok(false),
        Some(raw) => Err(invalid(variable, &raw, "true, false")),
    }
}

pub(super) fn invalid(variable: &'static str, value: &str, accepted: &'static str) -> ConfigError {
    ConfigError {
        variable,
        problem: format!("has an invalid value {value:?}"),
        accepted,
    }
}

pub(super) fn is_arn_of(arn: &str, service: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == service && !parts[5].is_empty()
}
