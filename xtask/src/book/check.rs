//! Checks of the book's sources that mdBook does not make: a missing
//! include is only logged, a missing anchor silently includes nothing, and
//! links are not checked at all. Also the reading of `{{#...}}` directives,
//! which the hints preprocessor shares.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use mdbook_driver::book::{Book, BookItem};
use mdbook_markdown::pulldown_cmark::{Event, Tag};
use mdbook_markdown::{MarkdownOptions, new_cmark_parser};

/// The repository folders the book may link into, served under `/<name>/`.
pub const SERVED_REPOSITORY_DIRS: &[&str] = &["labs", "solutions"];

/// A `{{#name args}}` directive in a chapter's Markdown, as mdBook finds them.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Directive<'a> {
    /// Byte range of the whole `{{...}}`.
    pub start: usize,
    pub end: usize,
    pub name: &'a str,
    pub args: &'a str,
    /// Written `\{{#...}}`: shown literally, not expanded.
    pub escaped: bool,
}

impl Directive<'_> {
    pub fn text<'t>(&self, content: &'t str) -> &'t str {
        &content[self.start..self.end]
    }
}

/// Finds `{{#name args}}` directives (the same shape mdBook's `links`
/// preprocessor recognises: `{{`, spaces, `#name`, spaces, args, `}}`).
pub(super) fn directives(content: &str) -> Vec<Directive<'_>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = content[from..].find("{{") {
        let start = from + offset;
        from = start + 2;
        let Some(close) = content[start..].find("}}") else {
            break;
        };
        let end = start + close + 2;
        let inner = content[start + 2..end - 2].trim_start();
        let Some(rest) = inner.strip_prefix('#') else {
            continue;
        };
        let Some((name, args)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        let valid_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name || args.trim().is_empty() || args.contains('}') {
            continue;
        }
        found.push(Directive {
            start,
            end,
            name,
            args: args.trim(),
            escaped: start > 0 && content.as_bytes()[start - 1] == b'\\',
        });
        from = end;
    }
    found
}

/// Every chapter of `book` with a file: (path relative to `src`, content).
pub(super) fn chapters(book: &Book) -> Vec<(PathBuf, &str)> {
    book.iter()
        .filter_map(|item| match item {
            BookItem::Chapter(ch) => ch.source_path.clone().map(|path| (path, ch.content.as_str())),
            _ => None,
        })
        .collect()
}

/// Checks `{{#include file:anchor}}` (and `rustdoc_include`, `playground`)
/// in the unprocessed chapters: mdBook only logs a missing file, and a
/// missing anchor silently includes nothing.
pub(super) fn check_includes(root: &Path, src_dir: &Path, book: &Book) -> Vec<String> {
    let mut problems = Vec::new();
    for (chapter, content) in chapters(book) {
        let base = src_dir.join(&chapter);
        let base = base.parent().unwrap_or(src_dir);
        for directive in directives(content) {
            let includes = matches!(directive.name, "include" | "rustdoc_include" | "playground");
            if directive.escaped || !includes {
                continue;
            }
            let spec = directive.args.split_whitespace().next().unwrap_or("");
            let (file, selector) = match spec.split_once(':') {
                Some((file, selector)) => (file, Some(selector)),
                None => (spec, None),
            };
            let target = normalize(&base.join(file));
            let whole = directive.text(content);
            let at = format!("book/src/{}: {whole}", chapter.display());
            if is_indented(content, directive.start) {
                problems.push(format!(
                    "{at}: is indented (in a list item?); mdBook pastes the file without the \
                     indent, which ends the list and spills the code out of its block: \
                     move it to a line of its own outside the list"
                ));
            }
            let Ok(text) = fs::read_to_string(&target) else {
                problems.push(format!(
                    "{at}: there is no file {}",
                    target.strip_prefix(root).unwrap_or(&target).display()
                ));
                continue;
            };
            let anchor = selector
                .and_then(|s| s.split(':').next())
                .filter(|first| !first.is_empty() && first.parse::<usize>().is_err());
            if let Some(anchor) = anchor
                && let Some(missing) = missing_anchor(&text, anchor)
            {
                problems.push(format!(
                    "{at}: {} has no `{missing}` marker",
                    target.strip_prefix(root).unwrap_or(&target).display()
                ));
            }
        }
    }
    problems
}

/// Whether the line holding byte `at` starts with whitespace before it.
fn is_indented(content: &str, at: usize) -> bool {
    let line_start = content[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &content[line_start..at];
    !before.is_empty() && before.trim().is_empty()
}

/// Which of `ANCHOR: name` / `ANCHOR_END: name` is missing from `text`.
fn missing_anchor(text: &str, anchor: &str) -> Option<String> {
    let has = |marker: &str| {
        text.lines().any(|line| {
            line.split_once(marker).is_some_and(|(_, rest)| {
                rest.trim_start()
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                    .next()
                    == Some(anchor)
            })
        })
    };
    if !has("ANCHOR:") {
        Some(format!("ANCHOR: {anchor}"))
    } else if !has("ANCHOR_END:") {
        Some(format!("ANCHOR_END: {anchor}"))
    } else {
        None
    }
}

/// Checks the relative links of the rendered chapters.
pub(super) struct LinkChecker<'a> {
    pub root: &'a Path,
    pub src_dir: &'a Path,
    pub dest: &'a Path,
    /// The book's chapters, relative to `src_dir`.
    pub chapters: &'a BTreeSet<PathBuf>,
}

impl LinkChecker<'_> {
    pub fn check(&self, chapter: &Path, content: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for event in new_cmark_parser(content, &MarkdownOptions::default()) {
            let Event::Start(Tag::Link { dest_url: url, .. } | Tag::Image { dest_url: url, .. }) =
                event
            else {
                continue;
            };
            if let Err(problem) = self.check_link(chapter, &url) {
                problems.push(format!("book/src/{}: link ({url}): {problem}", chapter.display()));
            }
        }
        problems
    }

    fn check_link(&self, chapter: &Path, url: &str) -> Result<(), String> {
        let is_external = url.split_once(':').is_some_and(|(scheme, _)| !scheme.contains('/'));
        if url.is_empty() || is_external {
            return Ok(());
        }
        let (path, fragment) = match url.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (url, None),
        };
        if path.starts_with('/') {
            return Err("links must be relative (the book is also read from disk)".into());
        }
        if path.is_empty() {
            return match fragment {
                Some(fragment) => self.check_fragment(chapter, fragment),
                None => Ok(()),
            };
        }
        let chapter_dir = self.src_dir.join(chapter);
        let chapter_dir = chapter_dir.parent().unwrap_or(self.src_dir);
        let target = normalize(&chapter_dir.join(path.replace("%20", " ")));

        if let Ok(in_book) = target.strip_prefix(self.src_dir) {
            let is_page =
                matches!(in_book.extension().and_then(|e| e.to_str()), Some("md" | "html"));
            if is_page {
                let markdown = in_book.with_extension("md");
                if !self.chapters.contains(&markdown) {
                    return Err(format!(
                        "{} is not a chapter of the book (see SUMMARY.md)",
                        markdown.display()
                    ));
                }
                return match fragment {
                    Some(fragment) => self.check_fragment(&markdown, fragment),
                    None => Ok(()),
                };
            }
        }
        let Ok(in_repository) = target.strip_prefix(self.root) else {
            return Err("points outside the repository".into());
        };
        if !target.exists() {
            return Err(format!("there is no {}", in_repository.display()));
        }
        if !target.starts_with(self.src_dir) {
            let top = in_repository.components().next();
            let served = top.is_some_and(|top| {
                SERVED_REPOSITORY_DIRS.contains(&top.as_os_str().to_string_lossy().as_ref())
            });
            if !served {
                return Err(format!(
                    "only {} are served with the book; link there or to a chapter",
                    SERVED_REPOSITORY_DIRS
                        .iter()
                        .map(|d| format!("{d}/"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
        }
        Ok(())
    }

    /// Checks that the rendered page of `chapter` has an element `id=fragment`.
    fn check_fragment(&self, chapter: &Path, fragment: &str) -> Result<(), String> {
        let page = if chapter.file_name().is_some_and(|n| n == "README.md") {
            chapter.with_file_name("index.html")
        } else {
            chapter.with_extension("html")
        };
        let html = fs::read_to_string(self.dest.join(&page)).unwrap_or_default();
        if html.contains(&format!("id=\"{fragment}\"")) {
            Ok(())
        } else {
            Err(format!("{} has no heading with the id #{fragment}", chapter.display()))
        }
    }
}

/// Resolves `.` and `..` without touching the disk (the target may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_anchor_or_anchor_end_is_named() {
        let code = "// ANCHOR: handler\nfn f() {}\n// ANCHOR_END: handler\n// ANCHOR: open\n";
        assert_eq!(missing_anchor(code, "handler"), None);
        assert_eq!(missing_anchor(code, "hand"), Some("ANCHOR: hand".into()));
        assert_eq!(missing_anchor(code, "open"), Some("ANCHOR_END: open".into()));
    }

    #[test]
    fn an_indented_include_is_told_apart_from_one_at_the_line_start() {
        let text = "- item:\n\n  ```rust\n  {{#include a.rs:x}}\n  ```\n{{#include b.rs}}\nsee {{#include c.rs}}";
        let found = directives(text);
        let indented: Vec<bool> = found.iter().map(|d| is_indented(text, d.start)).collect();
        assert_eq!(indented, [true, false, false]);
    }

    #[test]
    fn paths_are_normalized_without_the_disk() {
        assert_eq!(
            normalize(Path::new("/w/book/src/../../labs/./01-x/src/lib.rs")),
            Path::new("/w/labs/01-x/src/lib.rs")
        );
    }

    #[test]
    fn directives_are_found_like_mdbook_finds_them() {
        let text = "a {{#include ../x.rs:anchor}} b {{ #hints  hello }} {{not}} {{#title}}";
        let found = directives(text);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].name, found[0].args), ("include", "../x.rs:anchor"));
        assert_eq!((found[1].name, found[1].args), ("hints", "hello"));
    }
}
