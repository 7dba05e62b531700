//! PagerDuty, an optional output beside SNS: where the routing key is kept, and the endpoint.
//! The key itself is never in the environment: the function reads it from Systems Manager at
//! init ([`crate::aws::load_routing_key`]).

use super::{ConfigError, invalid};

pub const PAGERDUTY_ROUTING_KEY_PARAMETER: &str = "PAGERDUTY_ROUTING_KEY_PARAMETER";
pub const PAGERDUTY_PARAMETER_ACCEPTED: &str = "the name or ARN of an SSM parameter (a SecureString) holding an \
     Events API v2 routing key, or /aws/reference/secretsmanager/<secret id> for a Secrets Manager secret";
pub const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty's configuration; none when `PAGERDUTY_ROUTING_KEY_PARAMETER` is unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyConfig {
    /// The SSM parameter holding the routing key.
    pub parameter: String,
    /// `PAGERDUTY_EVENTS_URL`: the Events API v2 endpoint (a test's local receiver).
    pub events_url: String,
    /// Read at init; none until then.
    pub routing_key: Option<RoutingKey>,
}

/// An Events API v2 routing key: a secret, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RoutingKey(String);

impl RoutingKey {
    /// A key as stored: trimmed, not empty, no spaces inside.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        (!value.is_empty() && !value.contains(char::is_whitespace)).then(|| Self(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RoutingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoutingKey(redacted)")
    }
}

pub(super) fn pagerduty(get: &impl Fn(&str) -> Option<String>) -> Result<Option<PagerDutyConfig>, ConfigError> {
    let events_url = get("PAGERDUTY_EVENTS_URL").unwrap_or_else(|| DEFAULT_EVENTS_URL.to_owned());
    if !(events_url.starts_with("https://") || events_url.starts_with("http://")) || events_url.contains(' ') {
        return Err(invalid(
            "PAGERDUTY_EVENTS_URL",
            &events_url,
            "an http(s) URL of the Events API v2 (https://events.pagerduty.com/v2/enqueue)",
        ));
    }
    let Some(parameter) = get(PAGERDUTY_ROUTING_KEY_PARAMETER) else {
        return Ok(None);
    };
    // A parameter name: up to 2048 characters of letters, digits and `_.-/`; or its ARN.
    let name_ok =
        |name: &str| name.len() <= 2048 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    let ok = match parameter.strip_prefix("arn:") {
        Some(_) => parameter.split(':').nth(2) == Some("ssm") && parameter.contains(":parameter/"),
        None => name_ok(&parameter),
    };
    if !ok {
        return Err(invalid(
            PAGERDUTY_ROUTING_KEY_PARAMETER,
            &parameter,
            PAGERDUTY_PARAMETER_ACCEPTED,
        ));
    }
    Ok(Some(PagerDutyConfig {
        parameter,
        events_url,
        routing_key: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<PagerDutyConfig>, ConfigError> {
        pagerduty(&|name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn when_no_parameter_is_named_then_pagerduty_is_off() {
        assert_eq!(read(&[]), Ok(None));
    }

    #[test]
    fn when_a_parameter_is_named_then_it_is_kept_with_the_default_endpoint_and_no_key_yet() {
        for name in [
            "/ecs-watchdog/pagerduty",
            "/aws/reference/secretsmanager/ecs-watchdog/pagerduty",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/ecs-watchdog/pagerduty",
        ] {
            let config = read(&[(PAGERDUTY_ROUTING_KEY_PARAMETER, name)])
                .expect(name)
                .expect(name);
            assert_eq!(config.parameter, name);
            assert_eq!(config.events_url, DEFAULT_EVENTS_URL);
            assert_eq!(config.routing_key, None);
        }
    }

    #[test]
    fn when_a_value_is_malformed_then_the_error_names_its_variable() {
        let cases = [
            (
                vec![(PAGERDUTY_ROUTING_KEY_PARAMETER, "my key")],
                PAGERDUTY_ROUTING_KEY_PARAMETER,
            ),
            (
                vec![(PAGERDUTY_ROUTING_KEY_PARAMETER, "arn:aws:sns:eu-west-1:1:topic")],
                PAGERDUTY_ROUTING_KEY_PARAMETER,
            ),
            (
                vec![("PAGERDUTY_EVENTS_URL", "events.pagerduty.com")],
                "PAGERDUTY_EVENTS_URL",
            ),
        ];
        for (vars, variable) in cases {
            assert_eq!(read(&vars).map_err(|e| e.variable), Err(variable), "{vars:?}");
        }
    }

    #[test]
    fn when_a_routing_key_is_printed_then_it_is_redacted() {
        let key = RoutingKey::parse(" R0123456789abcdef0123456789abcd \n").expect("a key");
        assert_eq!(key.expose(), "R0123456789abcdef0123456789abcd");
        assert_eq!(format!("{key:?}"), "RoutingKey(redacted)");
        assert_eq!(RoutingKey::parse("two words"), None);
        assert_eq!(RoutingKey::parse("  "), None);
    }
}
