//! The monitor-impaired alert: the sweep could not make a call it needs, so part of the fleet
//! is unwatched. It names the operation (the IAM action) and the error, once per operation a day.

use crate::config::Place;

use super::{Alert, AlertKind, DaemonChecks, Facts, InstanceFinding, alert, subject};

/// Where the monitor's own problems are filed: they belong to no cluster.
pub const MONITOR_SCOPE: &str = "monitor";

/// Where a place's own problems are filed (`monitor`, or `monitor/<account>/<region>` for a
/// member account's), so each place's sweep closes only its own.
pub fn scope(place: &Place, home: bool) -> String {
    if home {
        MONITOR_SCOPE.to_owned()
    } else {
        format!("{MONITOR_SCOPE}/{}/{}", place.account, place.region)
    }
}

/// The finding that stands for one operation that failed.
pub fn finding(operation: &str, error: &str) -> InstanceFinding {
    InstanceFinding {
        container_instance_arn: operation.to_owned(),
        reason: Some(error.to_owned()),
        ..Default::default()
    }
}

/// One alert naming every operation that failed and is due an alert; the subject keeps the
/// place whole however many operations it names.
pub fn impaired(place: &Place, scope: &str, failed: Vec<InstanceFinding>) -> Alert {
    let operations: Vec<&str> = failed.iter().map(|f| f.container_instance_arn.as_str()).collect();
    let subject = subject(
        "ECS Watchdog cannot call ",
        &operations.join(", "),
        &format!(" ({place})"),
    );
    alert(
        AlertKind::MonitorImpaired,
        place,
        scope,
        failed,
        DaemonChecks { deployments: true },
        "went on with the rest of the sweep",
        // Its findings carry no times, and its severity needs no cluster.
        Facts::at(0),
    )
    .titled(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_an_operation_is_denied_then_the_alert_names_it_and_the_error() {
        let alert = impaired(
            &Place::new("", "eu-west-1"),
            MONITOR_SCOPE,
            vec![finding(
                "ecs:ListContainerInstances",
                "AccessDeniedException: not authorized",
            )],
        );
        assert_eq!(alert.kind, AlertKind::MonitorImpaired);
        assert_eq!(
            alert.subject,
            "ECS Watchdog cannot call ecs:ListContainerInstances (eu-west-1)"
        );
        assert!(alert.email.contains("AccessDeniedException: not authorized"));
        let finding: serde_json::Value = serde_json::from_str(&alert.default).unwrap();
        assert_eq!(finding["kind"], "monitor-impaired");
        assert_eq!(
            finding["instances"][0]["containerInstanceArn"],
            "ecs:ListContainerInstances"
        );
    }
}
