//! The frame every SNS message goes through (DESIGN §7, promise 5): whatever its kind (alert,
//! reminder, digest, resolved notice), a message is rendered listing as many of its instances
//! as fit SNS's limit, counting the rest, and its subject is cut between words. It is rendered
//! once: the frame measures parts rendered once each ([`super::layout`]) and assembles the one
//! message it measured, which `aws/sns.rs` publishes as is.
//!
//! SNS counts the message (with `MessageStructure=json`, the whole JSON object with its keys),
//! and every message attribute's name, data type and value, against 262,144 bytes; the subject
//! must be under 100 characters, with no line breaks or control characters:
//! <https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>,
//! <https://docs.aws.amazon.com/sns/latest/api/API_MessageAttributeValue.html>.

use crate::finding::lines::{shorten, shorten_name};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use super::chat;
use super::layout::{Layout, escaped, escaped_twice};
use crate::config::ChatFormat;
use crate::finding::steps::NextSteps;
use crate::finding::{Alert, EMAIL_LISTED};

/// What SNS accepts at most in one publish, message and attributes together.
pub const SNS_MAX_BYTES: usize = 262_144;
const MAX_SUBJECT_CHARS: usize = 99;
/// The subject is counted at its longest (a character is at most four bytes in UTF-8), so a
/// subject changed after rendering (a reminder's `Still open:`) cannot push a message over.
const SUBJECT_BYTES: usize = MAX_SUBJECT_CHARS * 4;
/// Every attribute is a `String`.
pub const ATTRIBUTE_TYPE: &str = "String";

/// The JSON message around its keys' strings: `{"default":"…","email":"…","https":"…"}`.
const MESSAGE_KEYS: usize = r#"{"default":"","email":"","https":""}"#.len();

/// The bytes SNS counts for a message of this shell besides its keys' strings: the subject at
/// its longest, and every attribute's name, data type and value.
fn counted_besides(shell: &Alert) -> usize {
    let attributes: usize = shell
        .attributes()
        .into_iter()
        .map(|(name, value)| name.len() + ATTRIBUTE_TYPE.len() + value.len())
        .sum();
    SUBJECT_BYTES + MESSAGE_KEYS + attributes
}

#[cfg(test)]
thread_local! {
    /// Instances rendered (as JSON, as e-mail lines) and messages assembled, for the tests that
    /// count them.
    pub(super) static RENDERED: std::cell::Cell<(usize, usize, usize)> = const { std::cell::Cell::new((0, 0, 0)) };
}

#[cfg(test)]
fn rendered(json: usize, lines: usize, assembled: usize) {
    RENDERED.with(|r| {
        let (a, b, c) = r.get();
        r.set((a + json, b + lines, c + assembled));
    });
}

#[cfg(not(test))]
fn rendered(_json: usize, _lines: usize, _assembled: usize) {}

/// One message being laid out: each part rendered on first use, and kept with its size.
struct Frame<'a, L: Layout> {
    layout: &'a L,
    total: usize,
    shell: Alert,
    around: (String, String),
    head: String,
    /// The instances' JSON so far, in order, and the sum of their sizes before each.
    json: Vec<String>,
    json_before: Vec<usize>,
    lines: HashMap<usize, String>,
    /// The tail and steps with none listed, and with the first listed.
    tails: [Option<Tail>; 2],
    /// The chat key's size with an empty description, by subject and whether steps are there.
    chat_shell: HashMap<(String, bool), usize>,
}

/// The e-mail after its list: up to the steps, the steps as data and as the e-mail says them.
struct Tail {
    text: String,
    steps: Option<NextSteps>,
    steps_text: String,
}

/// A piece of the e-mail's list: a group's heading, or an instance's lines.
enum Piece {
    Heading(String),
    Instance(usize),
}

impl<'a, L: Layout> Frame<'a, L> {
    fn new(layout: &'a L) -> Self {
        Self {
            layout,
            total: layout.total(),
            shell: layout.shell(),
            around: layout.json_around(),
            head: layout.email_head(),
            json: Vec::new(),
            json_before: vec![0],
            lines: HashMap::new(),
            tails: [None, None],
            chat_shell: HashMap::new(),
        }
    }

    /// The sum of the first `listed` instances' JSON sizes in the message, rendering those not
    /// rendered yet.
    fn json_size(&mut self, listed: usize) -> usize {
        while self.json.len() < listed {
            let json = self.layout.instance_json(self.json.len());
            rendered(1, 0, 0);
            let before = self.json_before[self.json.len()] + escaped(&json);
            self.json.push(json);
            self.json_before.push(before);
        }
        self.json_before[listed] + listed.saturating_sub(1)
    }

    fn lines(&mut self, index: usize) -> &str {
        let layout = self.layout;
        self.lines.entry(index).or_insert_with(|| {
            rendered(0, 1, 0);
            layout.instance_lines(index)
        })
    }

    fn tail(&mut self, first_listed: bool) -> &Tail {
        let layout = self.layout;
        self.tails[usize::from(first_listed)].get_or_insert_with(|| {
            let (text, steps) = layout.email_tail(first_listed);
            let mut steps_text = String::new();
            if let Some(steps) = &steps {
                steps.write(&mut steps_text);
            }
            Tail {
                text,
                steps,
                steps_text,
            }
        })
    }

    /// The e-mail's list with the first `listed` instances in the JSON: their first
    /// [`EMAIL_LISTED`], under their group's heading where the list is grouped.
    fn list(&self, listed: usize) -> Vec<Piece> {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for index in 0..listed {
            match self.layout.group(index) {
                Some(group) => groups.entry(group).or_default().push(index),
                None => return (0..listed.min(EMAIL_LISTED)).map(Piece::Instance).collect(),
            }
        }
        let mut pieces = Vec::new();
        let mut named = 0;
        for (group, indexes) in groups {
            pieces.push(Piece::Heading(self.layout.group_heading(group, indexes.len())));
            let shown = indexes.len().min(EMAIL_LISTED - named);
            pieces.extend(indexes[..shown].iter().copied().map(Piece::Instance));
            named += shown;
        }
        pieces
    }

    /// The e-mail up to its steps, with the first `listed` instances in the JSON.
    fn summary(&mut self, listed: usize) -> String {
        let mut summary = self.head.clone();
        for piece in self.list(listed) {
            match piece {
                Piece::Heading(heading) => summary.push_str(&heading),
                Piece::Instance(index) => summary.push_str(self.lines(index)),
            }
        }
        and_more(&mut summary, self.total, listed.min(EMAIL_LISTED), listed);
        summary.push_str(&self.tail(listed > 0).text);
        summary
    }

    fn omitted(&self, listed: usize) -> String {
        match self.total - listed {
            0 => String::new(),
            n => format!(",\"omitted\":{n}"),
        }
    }

    /// The bytes SNS counts for the message listing the first `listed`.
    fn size(&mut self, listed: usize) -> usize {
        let summary = self.summary(listed);
        let default = escaped(&self.around.0) + self.json_size(listed) + 1 + escaped(&self.omitted(listed));
        let tail = self.tail(listed > 0);
        let email = escaped(&summary) + escaped(&tail.steps_text);
        let subject = self.layout.subject(listed);
        let https = self.chat_shell(subject, listed > 0) + escaped_twice(&chat::description(&summary));
        counted_besides(&self.shell) + default + escaped(&self.around.1) + email + https
    }

    /// The chat key's size with an empty description, rendered once per subject.
    fn chat_shell(&mut self, subject: String, first_listed: bool) -> usize {
        if let Some(size) = self.chat_shell.get(&(subject.clone(), first_listed)) {
            return *size;
        }
        let shell = Alert {
            subject: subject.clone(),
            next_steps: self.tail(first_listed).steps.clone(),
            ..self.shell.clone()
        };
        let size = escaped(&chat::notification_with(&shell, String::new()).to_string());
        self.chat_shell.insert((subject, first_listed), size);
        size
    }

    /// The one message that is sent, listing the first `listed`.
    fn assemble(mut self, listed: usize) -> Alert {
        rendered(0, 0, 1);
        let measured = cfg!(debug_assertions).then(|| self.size(listed));
        let mut email = self.summary(listed);
        let steps_at = email.len();
        let tail = self.tail(listed > 0);
        email.push_str(&tail.steps_text);
        let next_steps = tail.steps.clone();
        self.json_size(listed);
        let mut default = std::mem::take(&mut self.around.0);
        default.push_str(&self.json[..listed].join(","));
        default.push(']');
        default.push_str(&self.omitted(listed));
        default.push_str(&self.around.1);
        let alert = Alert {
            subject: self.layout.subject(listed),
            email,
            next_steps,
            steps_at,
            default,
            ..self.shell
        }
        .with_message();
        if let Some(measured) = measured {
            let sent = SUBJECT_BYTES
                + alert.message(ChatFormat::Chatbot).len()
                + alert
                    .attributes()
                    .iter()
                    .map(|(n, v)| n.len() + ATTRIBUTE_TYPE.len() + v.len())
                    .sum::<usize>();
            debug_assert_eq!(measured, sent, "the frame measured what it sends");
        }
        alert
    }
}

/// How much the rest of a message (all but its instances' JSON) may shrink as it lists more
/// than the e-mail's first [`EMAIL_LISTED`]: the counts' digits, `"omitted"` and the `and N
/// more` line. A guess for where to stop rendering, never for what fits.
const REST_MAY_SHRINK: usize = 512;

/// The message of `layout` that lists the most of its instances and still fits. The instances'
/// JSON is rendered in order while it and the rest of the message (at least) fit: about one past
/// the most that can be listed. Then the count is bisected on measured sizes (sums of parts),
/// and the message assembled once.
pub(super) fn fit(layout: &impl Layout) -> Alert {
    let mut frame = Frame::new(layout);
    let total = frame.total;
    let fixed =
        counted_besides(&frame.shell) + escaped(&frame.around.0) + escaped(&frame.around.1) + escaped(&frame.head);
    // Past the e-mail's list, the rest of the message hardly changes: measured once there.
    let full_list = total.clamp(1, EMAIL_LISTED);
    let mut rest = fixed;
    let mut most = 0;
    while most < total {
        if most + 1 == full_list {
            let past = frame.size(full_list) - frame.json_size(full_list);
            rest = rest.max(past.saturating_sub(REST_MAY_SHRINK));
        }
        if rest + frame.json_size(most + 1) > SNS_MAX_BYTES {
            break;
        }
        most += 1;
    }
    // Listing all says no more and omits none: it may fit where one fewer does not.
    if most == total && frame.size(total) <= SNS_MAX_BYTES {
        return frame.assemble(total);
    }
    // Listing none always fits (the frame's own text is bounded); `too_many` does not.
    let (mut fits, mut too_many) = (0, if most == total { total } else { most + 1 });
    while too_many - fits > 1 {
        let middle = fits + (too_many - fits) / 2;
        if frame.size(middle) <= SNS_MAX_BYTES {
            fits = middle;
        } else {
            too_many = middle;
        }
    }
    frame.assemble(fits)
}

/// The line after the e-mail's list: how many it did not name, and whether the JSON lists them
/// or left some out to fit.
fn and_more(email: &mut String, total: usize, in_email: usize, in_json: usize) {
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

#[cfg(test)]
mod tests;
