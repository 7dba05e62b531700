//! What to do next, as data: each kind says its steps once, the e-mail writes them out and the
//! chat notification lists them (no text is split to find them again).

use std::fmt::Write;

/// A kind's advice for one alert, with the first instance's ids in its commands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NextSteps {
    /// The e-mail's heading, without its colon: `What to do next`.
    pub heading: &'static str,
    /// Numbered (`1. `) in the e-mail, or bulleted (`- `) when they are alternatives.
    pub numbered: bool,
    pub steps: Vec<Step>,
    /// A closing line after the steps.
    pub note: Option<String>,
}

/// One step: what to do, and the command that does it on a line of its own, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub text: String,
    pub command: Option<String>,
}

impl Step {
    pub fn says(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            command: None,
        }
    }

    pub fn runs(text: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            command: Some(command.into()),
        }
    }
}

impl NextSteps {
    /// Numbered steps under `What to do next`.
    pub fn numbered(steps: Vec<Step>) -> Self {
        Self {
            heading: "What to do next",
            numbered: true,
            steps,
            note: None,
        }
    }

    /// The steps as the e-mail says them, after a blank line.
    pub fn write(&self, email: &mut String) {
        let _ = writeln!(email, "\n{}:", self.heading);
        for (number, step) in self.steps.iter().enumerate() {
            let _ = match self.numbered {
                true => writeln!(email, "{}. {}", number + 1, step.text),
                false => writeln!(email, "- {}", step.text),
            };
            if let Some(command) = &step.command {
                let _ = writeln!(email, "   {command}");
            }
        }
        if let Some(note) = &self.note {
            let _ = writeln!(email, "{note}");
        }
    }

    /// The steps as a chat notification lists them: each step with its command, then the note.
    pub fn for_chat(&self) -> Vec<String> {
        let steps = self.steps.iter().map(|step| match &step.command {
            Some(command) => format!("{} {command}", step.text),
            None => step.text.clone(),
        });
        steps.chain(self.note.clone()).collect()
    }
}
