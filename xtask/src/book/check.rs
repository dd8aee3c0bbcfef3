//! Checks of the book's sources that mdBook does not make: a missing
//! include is only logged, a missing anchor silently includes nothing, and
//! links are not checked at all.

use std::fs;
use std::path::{Component, Path, PathBuf};

use mdbook_driver::book::{Book, BookItem};
use mdbook_markdown::pulldown_cmark::{Event, Tag};
use mdbook_markdown::{MarkdownOptions, new_cmark_parser};

/// The repository folders the book may link into, served under `/<name>/`.
pub const SERVED_REPOSITORY_DIRS: &[&str] = &["labs", "solutions"];

/// A `{{#name args}}` directive in a chapter's Markdown.
#[derive(Debug, PartialEq, Eq)]
pub struct Directive<'a> {
    /// The byte range of the whole `{{...}}`.
    pub start: usize,
    pub end: usize,
    pub name: &'a str,
    pub args: &'a str,
    /// Written `\{{#...}}`: shown literally, not expanded.
    pub escaped: bool,
}

/// Finds the directives the way mdBook's `links` preprocessor does: `{{`,
/// spaces, `#name`, spaces, args, `}}`.
pub fn directives(content: &str) -> Vec<Directive<'_>> {
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
        let Some((name, args)) =
            inner.strip_prefix('#').and_then(|rest| rest.split_once(char::is_whitespace))
        else {
            continue;
        };
        let valid_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name || args.trim().is_empty() || args.contains('}') {
            continue;
        }
        let escaped = start > 0 && content.as_bytes()[start - 1] == b'\\';
        found.push(Directive { start, end, name, args: args.trim(), escaped });
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
/// in the unprocessed chapters.
pub(super) fn check_includes(root: &Path, src_dir: &Path, book: &Book) -> Vec<String> {
    let mut problems = Vec::new();
    for (chapter, content) in chapters(book) {
        let chapter_name = format!("book/src/{}", chapter.display());
        for directive in directives(content) {
            let includes = matches!(directive.name, "include" | "rustdoc_include" | "playground");
            if directive.escaped || !includes {
                continue;
            }
            let spec = directive.args.split_whitespace().next().unwrap_or("");
            let (file, selector) = spec.split_once(':').unwrap_or((spec, ""));
            let target = normalize(&src_dir.join(&chapter).with_file_name(file));
            let shown = target.strip_prefix(root).unwrap_or(&target).display();
            let at = format!("{chapter_name}: {}", &content[directive.start..directive.end]);
            if is_indented(content, directive.start) {
                problems.push(format!(
                    "{at}: is indented (in a list item?); mdBook pastes the file without the \
                     indent, which ends the list and spills the code out of its block: \
                     move it to a line of its own outside the list"
                ));
            }
            let Ok(text) = fs::read_to_string(&target) else {
                problems.push(format!("{at}: there is no file {shown}"));
                continue;
            };
            // `file:anchor`, but `file:10` or `file:10:20` are line numbers.
            let anchor = selector.split(':').next().unwrap_or("");
            if !anchor.is_empty()
                && anchor.parse::<usize>().is_err()
                && let Some(missing) = missing_anchor(&text, anchor)
            {
                problems.push(format!("{at}: {shown} has no `{missing}` marker"));
            }
        }
    }
    problems
}

/// Whether the line holding byte `at` starts with whitespace before it.
pub fn is_indented(content: &str, at: usize) -> bool {
    let line_start = content[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &content[line_start..at];
    !before.is_empty() && before.trim().is_empty()
}

/// Which of `ANCHOR: name` / `ANCHOR_END: name` is missing from `text`.
pub fn missing_anchor(text: &str, anchor: &str) -> Option<String> {
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
    ["ANCHOR:", "ANCHOR_END:"]
        .into_iter()
        .find(|marker| !has(marker))
        .map(|marker| format!("{marker} {anchor}"))
}

/// Checks the relative links of the rendered chapters.
pub(super) struct LinkChecker<'a> {
    pub root: &'a Path,
    pub src_dir: &'a Path,
    pub dest: &'a Path,
    /// The book's chapters as rendered, relative to `src_dir`.
    pub chapters: &'a [(PathBuf, &'a str)],
}

impl LinkChecker<'_> {
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (chapter, content) in self.chapters {
            for event in new_cmark_parser(content, &MarkdownOptions::default()) {
                if let Event::Start(
                    Tag::Link { dest_url: url, .. } | Tag::Image { dest_url: url, .. },
                ) = event
                    && let Err(problem) = self.check_link(chapter, &url)
                {
                    problems
                        .push(format!("book/src/{}: link ({url}): {problem}", chapter.display()));
                }
            }
        }
        problems
    }

    fn check_link(&self, chapter: &Path, url: &str) -> Result<(), String> {
        let is_external = url.split_once(':').is_some_and(|(scheme, _)| !scheme.contains('/'));
        if url.is_empty() || is_external {
            return Ok(());
        }
        let (path, fragment) = url.split_once('#').map_or((url, None), |(p, f)| (p, Some(f)));
        if path.starts_with('/') {
            return Err("links must be relative (the book is also read from disk)".into());
        }
        let chapter_file = self.src_dir.join(chapter);
        let target = match path {
            "" => chapter_file,
            path => normalize(&chapter_file.with_file_name(path.replace("%20", " "))),
        };
        let in_book = target.strip_prefix(self.src_dir).ok();
        if let Some(page) =
            in_book.filter(|p| p.extension().is_some_and(|e| e == "md" || e == "html"))
        {
            let markdown = page.with_extension("md");
            let chapter = markdown.display();
            if !self.chapters.iter().any(|(path, _)| *path == markdown) {
                return Err(format!("{chapter} is not a chapter of the book (see SUMMARY.md)"));
            }
            let Some(fragment) = fragment else {
                return Ok(());
            };
            let html = match markdown.file_name().is_some_and(|name| name == "README.md") {
                true => markdown.with_file_name("index.html"),
                false => markdown.with_extension("html"),
            };
            let html = fs::read_to_string(self.dest.join(html)).unwrap_or_default();
            if !html.contains(&format!("id=\"{fragment}\"")) {
                return Err(format!("{chapter} has no heading with the id #{fragment}"));
            }
            return Ok(());
        }
        let Ok(in_repository) = target.strip_prefix(self.root) else {
            return Err("points outside the repository".into());
        };
        if !target.exists() {
            return Err(format!("there is no {}", in_repository.display()));
        }
        let top = in_repository.components().next().map(|c| c.as_os_str().to_string_lossy());
        if in_book.is_none() && !top.is_some_and(|top| SERVED_REPOSITORY_DIRS.contains(&&*top)) {
            let served = SERVED_REPOSITORY_DIRS.join("/ and ");
            return Err(format!(
                "only {served}/ are served with the book; link there or to a chapter"
            ));
        }
        Ok(())
    }
}

/// Resolves `.` and `..` without the disk (the target may not exist).
pub fn normalize(path: &Path) -> PathBuf {
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
