//! An `aws.ecs` EventBridge event as the kinds' parsers read it: lenient on what the decision
//! does not need (a field missing, empty or of another type is absent), strict on what it does
//! (a required field missing rejects the body).

use serde_json::Value;

use super::signal::RejectReason;

/// One event whose source is `aws.ecs`, with its detail-type.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub detail_type: &'a str,
    event: &'a Value,
    detail: &'a Value,
}

impl<'a> Envelope<'a> {
    pub(super) fn new(detail_type: &'a str, event: &'a Value) -> Self {
        Self {
            detail_type,
            event,
            detail: event.get("detail").unwrap_or(&Value::Null),
        }
    }

    /// A non-empty string field of `detail`.
    pub fn text(&self, field: &str) -> Option<&'a str> {
        text(self.detail, field)
    }

    /// The same, required: `path` is the field as a reject reason names it (`detail.clusterArn`).
    pub fn required(&self, path: &'static str) -> Result<&'a str, RejectReason> {
        let field = path.strip_prefix("detail.").unwrap_or(path);
        self.text(field).ok_or(RejectReason::MissingField(path))
    }

    /// An integer field of `detail` (`version`).
    pub fn integer(&self, field: &str) -> Option<i64> {
        self.detail.get(field).and_then(Value::as_i64)
    }

    /// A boolean field of `detail`.
    pub fn flag(&self, field: &str) -> Option<bool> {
        self.detail.get(field).and_then(Value::as_bool)
    }

    /// The elements of an array field of `detail`; none when it is absent or no array.
    pub fn list(&self, field: &str) -> impl Iterator<Item = &'a Value> {
        self.detail.get(field).and_then(Value::as_array).into_iter().flatten()
    }

    /// A time field of `detail`, else the event's own `time`.
    pub fn since(&self, field: &str) -> Option<String> {
        self.text(field).or_else(|| text(self.event, "time")).map(str::to_owned)
    }

    /// The event's own `time`.
    pub fn time(&self) -> Option<&'a str> {
        text(self.event, "time")
    }
}

/// A non-empty string field; anything else counts as absent.
pub fn text<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str).filter(|s| !s.is_empty())
}
