//! README.md and docs/ read as the drift tests (`tests/docs.rs`) need them: tables by their header,
//! the backticked names in a cell, links with a title, fenced blocks by their language.

use std::path::{Path, PathBuf};

use crate::repo_root;

/// A page of the docs, by its path from the repository's root.
pub fn page(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// README.md and every page of docs/, with their paths from the root.
pub fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![PathBuf::from("README.md")];
    let docs = std::fs::read_dir(repo_root().join("docs")).expect("docs/");
    let mut more: Vec<PathBuf> = docs
        .map(|entry| entry.expect("a page").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .map(|path| path.strip_prefix(repo_root()).expect("under the root").to_path_buf())
        .collect();
    more.sort();
    paths.extend(more);
    paths
        .into_iter()
        .map(|path| {
            let text = page(path.to_str().expect("a UTF-8 path"));
            (path, text)
        })
        .collect()
}

/// A table row's cells, trimmed, without the outer pipes; `\|` stays inside its cell.
pub fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => cells.last_mut().expect("a cell").push(chars.next().expect("|")),
            '|' => cells.push(String::new()),
            _ => cells.last_mut().expect("a cell").push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The rows of the table whose header row is `header` (cells compared trimmed), without the
/// header and its separator. Panics when the page has no such table: a renamed column fails.
pub fn table(text: &str, header: &[&str]) -> Vec<Vec<String>> {
    let mut lines = text
        .lines()
        .skip_while(|line| !line.starts_with('|') || cells(line) != header);
    assert!(lines.next().is_some(), "no table with the header {header:?}");
    lines
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(cells)
        .collect()
}

/// The `backticked` names in a cell, in order.
pub fn ticked(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// A link `[text](target "title")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub text: String,
    pub target: String,
    pub title: Option<String>,
}

/// Every inline link of a page (no nested brackets in the text).
pub fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let (before, after) = rest.split_at(at);
        let after = &after[2..];
        rest = after;
        let Some(open) = before.rfind('[') else { continue };
        let Some((target, title, used)) = destination(after) else {
            continue;
        };
        found.push(Link {
            text: before[open + 1..].to_owned(),
            target,
            title,
        });
        rest = &after[used..];
    }
    found
}

/// The target and optional `"title"` (with `\"` inside) up to the closing parenthesis, and the
/// bytes read.
fn destination(after: &str) -> Option<(String, Option<String>, usize)> {
    let end_of_target = after.find([' ', ')'])?;
    let target = after[..end_of_target].to_owned();
    if after[end_of_target..].starts_with(')') {
        return Some((target, None, end_of_target + 1));
    }
    let quoted = after[end_of_target..].strip_prefix(" \"")?;
    let mut title = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => title.push(chars.next()?.1),
            '"' => {
                let used = end_of_target + 2 + i + 1;
                return after[used..].starts_with(')').then(|| (target, Some(title), used + 1));
            }
            _ => title.push(c),
        }
    }
    None
}

/// The fenced blocks of one language (the word after the opening fence), in order.
pub fn fenced(text: &str, language: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<(bool, Vec<&str>)> = None;
    for line in text.lines() {
        match open.as_mut() {
            None if line.starts_with("```") => open = Some((line[3..].trim() == language, Vec::new())),
            None => {}
            Some(_) if line.starts_with("```") => {
                let (wanted, body) = open.take().expect("open");
                if wanted {
                    blocks.push(body.join("\n"));
                }
            }
            Some((_, body)) => body.push(line),
        }
    }
    blocks
}

/// A link's target resolved against the page that holds it, from the root; none for a URL.
pub fn resolve(page: &Path, target: &str) -> Option<PathBuf> {
    if target.contains("://") || target.starts_with('#') {
        return None;
    }
    let file = target.split('#').next().expect("a path");
    let joined = page.parent().unwrap_or(Path::new("")).join(file);
    let mut resolved = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                resolved.pop();
            }
            std::path::Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    Some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_link_has_a_title_with_quotes_then_it_is_read_whole() {
        let text = r#"about [2 / 25](../BENCHMARKS.md "SNS alerts of a storm: \"25 invocations") and [x](y.md)."#;
        assert_eq!(
            links(text),
            vec![
                Link {
                    text: "2 / 25".into(),
                    target: "../BENCHMARKS.md".into(),
                    title: Some("SNS alerts of a storm: \"25 invocations".into())
                },
                Link {
                    text: "x".into(),
                    target: "y.md".into(),
                    title: None
                },
            ]
        );
    }

    #[test]
    fn when_a_cell_holds_an_escaped_pipe_then_it_stays_in_the_cell() {
        assert_eq!(cells(r"| `a\|b` | c |"), vec!["`a|b`", "c"]);
    }

    #[test]
    fn when_blocks_are_fenced_then_only_the_language_asked_is_taken() {
        let text = "```sh\nmake demo\n```\n```text\nno\n```\n```sh\naws x \\\n  --y\n```\n";
        assert_eq!(fenced(text, "sh"), vec!["make demo", "aws x \\\n  --y"]);
    }

    #[test]
    fn when_a_target_climbs_then_it_resolves_from_the_root() {
        assert_eq!(
            resolve(Path::new("docs/cost.md"), "../BENCHMARKS.md#tuning"),
            Some(PathBuf::from("BENCHMARKS.md"))
        );
        assert_eq!(
            resolve(Path::new("README.md"), "docs/cost.md"),
            Some(PathBuf::from("docs/cost.md"))
        );
        assert_eq!(resolve(Path::new("README.md"), "https://example.com"), None);
    }
}
