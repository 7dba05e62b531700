//! A message as the frame lays it out: parts each rendered once, and what each costs in the
//! SNS message. With `MessageStatus=json` every text is a JSON string in the message (the
//! chat notification a JSON string in a JSON string), and JSON escapes character by character:
//! the escaped size of a concatenation is the sum of its parts', so the frame adds up sizes
//! measured once instead of rendering the message again for each count it tries.

use crate::finding::Alert;
use crate::finding::steps::NextSteps;

/// What a message is made of (an alert, a digest, a resolved notice), asked by the frame.
pub(super) trait Layout {
    /// How many instances the message is about, listed or not.
    fn total(&self) -> usize;

    /// The machine-readable JSON around its instances: up to and with `"instances":[`, and
    /// after the list's `]` (where `"omitted"` goes first).
    fn json_around(&self) -> (String, String);

    /// One instance as JSON, in the list.
    fn instance_json(&self, index: usize) -> String;

    /// The e-mail before its list.
    fn email_head(&self) -> String;

    /// One instance's lines in the e-mail.
    fn instance_lines(&self, index: usize) -> String;

    /// The group of the e-mail's list the instance is in, and the group's heading for that many
    /// listed; none for a list not grouped.
    fn group(&self, _index: usize) -> Option<&str> {
        None
    }

    fn group_heading(&self, _group: &str, _listed: usize) -> String {
        String::new()
    }

    /// The e-mail after its list, up to the steps, and the steps: with its first instance
    /// listed, or with none.
    fn email_tail(&self, first_listed: bool) -> (String, Option<NextSteps>);

    /// The subject when the first `listed` instances are listed.
    fn subject(&self, listed: usize) -> String;

    /// The alert's routing fields, its text left empty for the frame.
    fn shell(&self) -> Alert;
}

/// The bytes `text` takes inside a JSON string as `serde_json` writes it.
pub(super) fn escaped(text: &str) -> usize {
    text.chars().map(escaped_char).sum()
}

fn escaped_char(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The bytes `text` takes escaped twice: in the chat notification's JSON, itself a string in
/// the message's JSON (`"` is `\\\"`, a line break `\\n`, a control character `\\u0001`).
pub(super) fn escaped_twice(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => 4,
            '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 3,
            c if u32::from(c) < 0x20 => 7,
            c => c.len_utf8(),
        })
        .sum()
}

/// Splits a JSON object serialised with an empty `"instances":[]` around that list. A string
/// value cannot hold that text unescaped (its quotes would be `\"`), so the first is the key.
pub(super) fn around_instances(json: &str) -> (String, String) {
    const EMPTY: &str = "\"instances\":[]";
    match json.find(EMPTY) {
        Some(at) => (
            json[..at + EMPTY.len() - 1].to_owned(),
            json[at + EMPTY.len()..].to_owned(),
        ),
        None => (json.to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_text_is_escaped_then_its_measure_is_what_serde_json_writes() {
        let texts = [
            "plain",
            "\"quoted\" back\\slash",
            "tab\there\nline\r\u{8}\u{c}",
            "ctl\u{1}\u{1f}\u{7f}",
            "Überprüfung 日本語 🚨",
            "</script>/",
        ];
        for text in texts {
            let once = serde_json::to_string(text).unwrap();
            assert_eq!(escaped(text), once.len() - 2, "{text:?}");
            let twice = serde_json::to_string(&once[1..once.len() - 1]).unwrap();
            assert_eq!(escaped_twice(text), twice.len() - 2, "{text:?}");
        }
    }
}
