//! The incident ledger's table and times, and the sweep's (DESIGN §7, §8).

use std::time::Duration;

use super::{ConfigError, Incidents, SweepTimes, invalid, seconds};

pub(super) fn incidents(get: &impl Fn(&str) -> Option<String>) -> Result<Incidents, ConfigError> {
    let table_name = get("INCIDENT_TABLE_NAME");
    if let Some(table) = &table_name
        && !(3..=255).contains(&table.len())
    {
        return Err(invalid(
            "INCIDENT_TABLE_NAME",
            table,
            "a DynamoDB table name (3 to 255 characters) or its ARN",
        ));
    }
    let remind_after = match get("REMIND_AFTER_MINUTES") {
        None => Duration::from_secs(240 * 60),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|m| *m <= 7 * 24 * 60)
            .map(|m| Duration::from_secs(m * 60))
            .ok_or_else(|| {
                invalid(
                    "REMIND_AFTER_MINUTES",
                    &raw,
                    "a whole number of minutes from 0 (never) to 10080 (a week)",
                )
            })?,
    };
    let group_interval = seconds(
        get,
        "GROUP_INTERVAL_MINUTES",
        5 * 60,
        24 * 3600,
        "a whole number of minutes from 0 (no grouping) to 1440 (a day)",
    )?;
    let flap_threshold = match get("FLAP_THRESHOLD") {
        None => 3,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (2..=100).contains(n))
            .ok_or_else(|| invalid("FLAP_THRESHOLD", &raw, "a whole number of disconnects from 2 to 100"))?,
    };
    Ok(Incidents {
        table_name,
        remind_after,
        group_interval,
        flap_threshold,
    })
}

pub(super) fn sweep_times(get: &impl Fn(&str) -> Option<String>) -> Result<SweepTimes, ConfigError> {
    let grace = seconds(
        get,
        "GRACE_PERIOD_SECONDS",
        180,
        900,
        "a whole number of seconds from 0 to 900",
    )?;
    let stuck_after = seconds(
        get,
        "STUCK_AFTER_MINUTES",
        30 * 60,
        7 * 24 * 3600,
        "a whole number of minutes from 1 to 10080 (a week)",
    )?;
    if stuck_after.is_zero() {
        return Err(invalid(
            "STUCK_AFTER_MINUTES",
            "0",
            "a whole number of minutes from 1 to 10080 (a week)",
        ));
    }
    // An instance registers within a minute or two of boot; under a minute would alert on
    // instances still booting, over a day would never alert.
    let register_within = seconds(
        get,
        "REGISTER_WITHIN_MINUTES",
        10 * 60,
        24 * 3600,
        "a whole number of minutes from 1 to 1440 (a day)",
    )?;
    if register_within.is_zero() {
        return Err(invalid(
            "REGISTER_WITHIN_MINUTES",
            "0",
            "a whole number of minutes from 1 to 1440 (a day)",
        ));
    }
    Ok(SweepTimes {
        grace,
        stuck_after,
        register_within,
    })
}
