//! The frame every SNS message goes through (DESIGN §7, promise 5): whatever its kind (alert,
//! reminder, digest, resolved notice), a message is rendered listing as many of its instances
//! as fit SNS's limit, counting the rest, and its subject is cut between words.
//!
//! SNS counts the message (with `MessageStructure=json`, the whole JSON object with its keys),
//! and every message attribute's name, data type and value, against 262,144 bytes; the subject
//! must be under 100 characters, with no line breaks or control characters:
//! <https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>,
//! <https://docs.aws.amazon.com/sns/latest/api/API_MessageAttributeValue.html>.

use std::fmt::Write;

use super::finding::Alert;
use crate::config::ChatFormat;

/// What SNS accepts at most in one publish, message and attributes together.
pub const SNS_MAX_BYTES: usize = 262_144;
const MAX_SUBJECT_CHARS: usize = 99;
/// The subject is counted at its longest (a character is at most four bytes in UTF-8), so a
/// subject changed after rendering (a reminder's `Still open:`) cannot push a message over.
const SUBJECT_BYTES: usize = MAX_SUBJECT_CHARS * 4;
/// Every attribute is a `String`.
pub const ATTRIBUTE_TYPE: &str = "String";

/// The bytes SNS counts for the alert, with the Chatbot key (the larger message), so one
/// rendering fits whatever `CHAT_FORMAT` says.
fn counted_bytes(alert: &Alert) -> usize {
    let attributes: usize = alert
        .attributes()
        .into_iter()
        .map(|(name, value)| name.len() + ATTRIBUTE_TYPE.len() + value.len())
        .sum();
    SUBJECT_BYTES + alert.message(ChatFormat::Chatbot).len() + attributes
}

/// The first probe lists this many; each next one four times as many, so no probe renders far
/// more than fits (a storm of 5,000 instances with long stop reasons is megabytes as JSON).
const FIRST_PROBE: usize = 64;

/// A rendering and its size.
struct Probe {
    listed: usize,
    bytes: usize,
    alert: Alert,
}

fn probe(render: &impl Fn(usize) -> Alert, listed: usize) -> Probe {
    let alert = render(listed);
    Probe {
        listed,
        bytes: counted_bytes(&alert),
        alert,
    }
}

/// The alert of `total` instances that lists the most of them and still fits: `render(n)`
/// lists the first `n` and counts the rest as omitted. Every probe is measured, so the result
/// fits even where listing one more could shrink the text.
pub(super) fn fit(total: usize, render: impl Fn(usize) -> Alert) -> Alert {
    let mut fits: Option<Probe> = None;
    let mut listed = total.min(FIRST_PROBE);
    let too_many = loop {
        let next = probe(&render, listed);
        if next.bytes > SNS_MAX_BYTES {
            break next;
        }
        if listed == total {
            return next.alert;
        }
        fits = Some(next);
        listed = (listed * 4).min(total);
    };
    // Listing none always fits: the frame's own text is bounded.
    narrow(&render, fits.unwrap_or_else(|| probe(&render, 0)), too_many).alert
}

/// Between a probe that fits and one that lists too many, the one that lists the most and fits.
/// The probes interpolate (a message grows about linearly with what it lists), and bisect when
/// a guess does not halve the range.
fn narrow(render: &impl Fn(usize) -> Alert, mut fits: Probe, mut too_many: Probe) -> Probe {
    let mut halve = false;
    while too_many.listed - fits.listed > 1 {
        let width = too_many.listed - fits.listed;
        let step = if halve {
            width / 2
        } else {
            let room = SNS_MAX_BYTES.saturating_sub(fits.bytes) as u128 * width as u128;
            (room / too_many.bytes.saturating_sub(fits.bytes).max(1) as u128) as usize
        };
        let next = probe(render, fits.listed + step.clamp(1, width - 1));
        if next.bytes <= SNS_MAX_BYTES {
            fits = next;
        } else {
            too_many = next;
        }
        halve = !halve && too_many.listed - fits.listed > width / 2;
    }
    fits
}

/// The line after the e-mail's list: how many it did not name, and whether the JSON lists them
/// or left some out to fit.
pub(super) fn and_more(email: &mut String, total: usize, in_email: usize, in_json: usize) {
    let unnamed = total - in_email;
    if unnamed == 0 {
        return;
    }
    let _ = match total - in_json {
        0 => writeln!(email, "  ... and {unnamed} more (the JSON lists them)"),
        omitted => writeln!(
            email,
            "  ... and {unnamed} more (the JSON lists the first {in_json}; {omitted} left out to fit SNS's 256 KiB)"
        ),
    };
}

/// A subject from its parts: the suffix (the place) stays whole; the name (a cluster) is cut
/// at a separator to leave room for it, and where the prefix alone leaves too little room, the
/// prefix and name are cut together at a word. Nothing is cut inside a word.
pub(crate) fn subject(prefix: &str, name: &str, suffix: &str) -> String {
    let (prefix, name, suffix) = (one_line(prefix), one_line(name), one_line(suffix));
    let room = MAX_SUBJECT_CHARS.saturating_sub(suffix.chars().count());
    let head = match room.checked_sub(prefix.chars().count()) {
        Some(left) if left >= name.chars().count().min(MIN_NAME_CHARS) => {
            format!("{prefix}{}", shorten_name(&name, left))
        }
        _ => shorten(&format!("{prefix}{name}"), room),
    };
    subject_line(&format!("{head}{suffix}"))
}

/// A subject with `prefix` before it (`Still open: `), the place at its end kept whole.
pub(crate) fn prefixed(prefix: &str, subject: &str) -> String {
    match subject.rfind(" (") {
        Some(at) => self::subject(prefix, &subject[..at], &subject[at..]),
        None => subject_line(&format!("{prefix}{subject}")),
    }
}

/// Below this, a name says too little: the prefix is cut instead.
const MIN_NAME_CHARS: usize = 12;

fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A subject SNS accepts: one line, under 100 characters, cut between words.
pub(crate) fn subject_line(text: &str) -> String {
    shorten(&one_line(text), MAX_SUBJECT_CHARS)
}

/// `text` in at most `max` characters, cut before the last space that leaves room for `…`.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    cut(text, max, char::is_whitespace)
}

/// A name (cluster, daemon) in at most `max` characters, cut before a separator (`-`, `_`, `.`,
/// `/`, `:` or a space) so each part left is whole.
pub(crate) fn shorten_name(text: &str, max: usize) -> String {
    cut(text, max, |c| c.is_whitespace() || "-_./:".contains(c))
}

fn cut(text: &str, max: usize, separator: impl Fn(char) -> bool) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let end = text
        .char_indices()
        .take(max.saturating_sub(1) + 1)
        .filter(|&(_, c)| separator(c))
        .map(|(i, _)| i)
        .last()
        .unwrap_or(0);
    format!("{}…", text[..end].trim_end())
}

#[cfg(test)]
mod tests;
