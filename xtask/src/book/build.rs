//! Building the book with mdBook's library, with the labs' hints expanded
//! and the includes and links checked (see [`super::check`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result};
use mdbook_driver::MDBook;
use mdbook_driver::book::Book;
use mdbook_driver::builtin_preprocessors::{IndexPreprocessor, LinkPreprocessor};
use mdbook_driver::config::Config;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use super::check::{LinkChecker, chapters, check_includes, directives};
use crate::workbook::Lab;

/// A built book and what is wrong with its sources.
#[derive(Debug)]
pub struct BuiltBook {
    /// How many chapters it has.
    pub chapters: usize,
    /// Each problem names the chapter, the offending text and what is wrong.
    pub problems: Vec<String>,
}

/// Builds the book at `<root>/book` into `dest`, expanding hints from `labs`,
/// and checks its includes, hints and links. Fails only if mdBook fails
/// (e.g. SUMMARY.md lists a chapter file that does not exist).
pub fn build(root: &Path, labs: &[Lab], dest: &Path) -> Result<BuiltBook> {
    let book_dir = root.join("book");
    let mut config = Config::from_disk(book_dir.join("book.toml"))
        .with_context(|| format!("reading {}", book_dir.join("book.toml").display()))?;
    // Never invent chapters: a chapter listed in SUMMARY.md but missing is an error.
    config.build.create_missing = false;
    config.build.build_dir = dest.to_path_buf();
    // We register mdBook's own preprocessors ourselves, to run hints first
    // (so that `\{{#hints x}}` can be escaped like any mdBook directive).
    config.build.use_default_preprocessors = false;

    let mut book = MDBook::load_with_config(&book_dir, config).with_context(|| {
        format!(
            "mdBook could not load the book at {} (does every chapter listed in \
             SUMMARY.md exist?)",
            book_dir.display()
        )
    })?;
    let src_dir = book.source_dir();

    let mut problems = check_includes(root, &src_dir, &book.book);
    let hint_problems = Rc::new(RefCell::new(Vec::new()));
    let rendered = Rc::new(RefCell::new(Vec::new()));
    book.with_preprocessor(HintsPreprocessor {
        hints: labs.iter().map(|lab| (lab.slug.clone(), lab.hints.clone())).collect(),
        problems: hint_problems.clone(),
    })
    .with_preprocessor(LinkPreprocessor::new())
    .with_preprocessor(IndexPreprocessor::new())
    .with_preprocessor(Recorder { chapters: rendered.clone() });
    book.build().context("mdBook could not build the book")?;

    problems.extend(hint_problems.take());
    let chapters: BTreeSet<PathBuf> = rendered.borrow().iter().map(|(p, _)| p.clone()).collect();
    let links = LinkChecker { root, src_dir: &src_dir, dest, chapters: &chapters };
    for (chapter, content) in rendered.borrow().iter() {
        problems.extend(links.check(chapter, content));
    }
    Ok(BuiltBook { chapters: chapters.len(), problems })
}

/// Expands `{{#hints <slug>}}` into that lab's hints, each behind a
/// `<details>` so a reader opens them one at a time.
struct HintsPreprocessor {
    hints: BTreeMap<String, Vec<String>>,
    problems: Rc<RefCell<Vec<String>>>,
}

impl Preprocessor for HintsPreprocessor {
    fn name(&self) -> &str {
        "workbook-hints"
    }

    fn run(&self, _ctx: &PreprocessorContext, mut book: Book) -> Result<Book> {
        book.for_each_chapter_mut(|chapter| {
            let name = chapter
                .source_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| chapter.name.clone());
            let (content, problems) = expand_hints(&chapter.content, &self.hints);
            chapter.content = content;
            for problem in problems {
                self.problems.borrow_mut().push(format!("book/src/{name}: {problem}"));
            }
        });
        Ok(book)
    }
}

/// Replaces each `{{#hints slug}}` of `content`; returns the new content and
/// a problem for each unknown slug (shown in the page as a warning, too).
fn expand_hints(content: &str, hints: &BTreeMap<String, Vec<String>>) -> (String, Vec<String>) {
    let mut expanded = String::with_capacity(content.len());
    let mut problems = Vec::new();
    let mut copied_to = 0;
    for directive in directives(content) {
        if directive.name != "hints" || directive.escaped {
            continue;
        }
        expanded.push_str(&content[copied_to..directive.start]);
        copied_to = directive.end;
        match hints.get(directive.args) {
            Some(lab_hints) => expanded.push_str(&render_hints(lab_hints)),
            None => {
                let known: Vec<&str> = hints.keys().map(String::as_str).collect();
                problems.push(format!(
                    "{} names no lab (the slugs are: {})",
                    directive.text(content),
                    known.join(", ")
                ));
                write!(
                    expanded,
                    "> **The hints are missing:** there is no lab `{}`.",
                    directive.args
                )
                .unwrap();
            }
        }
    }
    expanded.push_str(&content[copied_to..]);
    (expanded, problems)
}

/// `<details>` blocks, one per hint. The blank lines let the hint's own
/// Markdown (code spans, links) render inside the HTML block.
fn render_hints(hints: &[String]) -> String {
    let mut html = String::new();
    for (number, hint) in hints.iter().enumerate() {
        write!(
            html,
            "<details>\n<summary>Hint {}</summary>\n\n{}\n\n</details>\n\n",
            number + 1,
            hint.trim()
        )
        .unwrap();
    }
    html.trim_end().to_owned()
}

/// Keeps each chapter's final Markdown for the link check.
struct Recorder {
    chapters: Rc<RefCell<Vec<(PathBuf, String)>>>,
}

impl Preprocessor for Recorder {
    fn name(&self) -> &str {
        "workbook-record"
    }

    fn run(&self, _ctx: &PreprocessorContext, book: Book) -> Result<Book> {
        let mut chapters = self.chapters.borrow_mut();
        chapters.clear();
        for (path, content) in self::chapters(&book) {
            chapters.push((path, content.to_owned()));
        }
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints() -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([(
            "overload".to_owned(),
            vec!["Look at `main`.".to_owned(), "Use a semaphore.".to_owned()],
        )])
    }

    #[test]
    fn hints_expand_into_one_details_block_each() {
        let (page, problems) = expand_hints("## Hints\n\n{{#hints overload}}\n\nAfter.", &hints());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            page,
            "## Hints\n\n\
             <details>\n<summary>Hint 1</summary>\n\nLook at `main`.\n\n</details>\n\n\
             <details>\n<summary>Hint 2</summary>\n\nUse a semaphore.\n\n</details>\
             \n\nAfter."
        );
    }

    #[test]
    fn hints_for_an_unknown_lab_are_a_problem() {
        let (page, problems) = expand_hints("{{#hints overlaod}}", &hints());
        assert!(page.contains("there is no lab `overlaod`"), "{page}");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("the slugs are: overload"), "{problems:?}");
    }

    #[test]
    fn escaped_hints_are_left_for_mdbook_to_unescape() {
        let text = r"write \{{#hints overload}} in a chapter";
        let (page, problems) = expand_hints(text, &hints());
        assert_eq!(page, text);
        assert!(problems.is_empty());
    }
}
