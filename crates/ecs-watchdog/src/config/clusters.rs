//! Which clusters are watched, and how long their tags are trusted.

use std::time::Duration;

use super::{ClusterFilter, ConfigError, DEFAULT_TAG_KEY, boolean, invalid, required};

const DEFAULT_TAG_CACHE_TTL_SECONDS: u64 = 300;

pub(super) fn cluster_filter(get: &impl Fn(&str) -> Option<String>) -> Result<ClusterFilter, ConfigError> {
    if boolean(get, "MONITOR_ALL_CLUSTERS", true)? {
        return Ok(ClusterFilter::All);
    }
    let key = get("MONITORING_TAG_KEY").unwrap_or_else(|| DEFAULT_TAG_KEY.to_owned());
    let value = required(
        get,
        "MONITORING_TAG_VALUE",
        "the tag value that marks a monitored cluster (required when MONITOR_ALL_CLUSTERS=false)",
    )?;
    Ok(ClusterFilter::Tagged { key, value })
}

pub(super) fn tag_cache_ttl(get: &impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    match get("TAG_CACHE_TTL_SECONDS") {
        None => Ok(Duration::from_secs(DEFAULT_TAG_CACHE_TTL_SECONDS)),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= 86_400)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                invalid(
                    "TAG_CACHE_TTL_SECONDS",
                    &raw,
                    "a whole number of seconds from 0 to 86400",
                )
            }),
    }
}
