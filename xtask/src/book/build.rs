//! Building the book with mdBook's library, with the labs' hints expanded
//! and the includes and links checked (see [`super::check`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use mdbook_driver::MDBook;
use mdbook_driver::book::Book;
use mdbook_driver::builtin_preprocessors::{IndexPreprocessor, LinkPreprocessor};
use mdbook_driver::builtin_renderers::MarkdownRenderer;
use mdbook_driver::config::Config;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use super::check::{LinkChecker, chapters, check_includes, directives};
use crate::workbook::Lab;

/// A built book and what is wrong with its sources.
#[derive(Debug)]
pub struct BuiltBook {
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
    // mdBook's own preprocessors are registered below, after the hints (so
    // that `\{{#hints x}}` can be escaped like any mdBook directive).
    config.build.use_default_preprocessors = false;
    let mut book = MDBook::load_with_config(&book_dir, config).with_context(|| {
        let book = book_dir.display();
        format!("mdBook could not load the book at {book} (is every chapter of SUMMARY.md there?)")
    })?;
    let src_dir = book.source_dir();

    let hints: BTreeMap<_, _> =
        labs.iter().map(|lab| (lab.slug.clone(), lab.hints.clone())).collect();
    let mut problems = check_includes(root, &src_dir, &book.book);
    for (chapter, content) in chapters(&book.book) {
        let unknown = expand_hints(content, &hints).1;
        problems.extend(unknown.iter().map(|p| format!("book/src/{}: {p}", chapter.display())));
    }
    book.with_preprocessor(Hints(hints))
        .with_preprocessor(LinkPreprocessor::new())
        .with_preprocessor(IndexPreprocessor::new());
    book.build().context("mdBook could not build the book")?;

    // The links are checked in the chapters as rendered (includes and hints expanded).
    let (rendered, _) = book.preprocess_book(&MarkdownRenderer::new())?;
    let rendered = chapters(&rendered);
    problems.extend(LinkChecker { root, src_dir: &src_dir, dest, chapters: &rendered }.check());
    Ok(BuiltBook { chapters: rendered.len(), problems })
}

/// The preprocessor of `{{#hints <slug>}}`, from each lab's hints by slug.
struct Hints(BTreeMap<String, Vec<String>>);

impl Preprocessor for Hints {
    fn name(&self) -> &str {
        "workbook-hints"
    }

    fn run(&self, _: &PreprocessorContext, mut book: Book) -> Result<Book> {
        book.for_each_chapter_mut(|chapter| {
            chapter.content = expand_hints(&chapter.content, &self.0).0
        });
        Ok(book)
    }
}

/// Replaces each `{{#hints slug}}` of `content` with that lab's hints, each
/// behind a `<details>` so that a reader opens them one at a time; returns
/// the new content and a problem for each unknown slug (which the page
/// shows, too).
pub fn expand_hints(content: &str, hints: &BTreeMap<String, Vec<String>>) -> (String, Vec<String>) {
    let mut expanded = String::with_capacity(content.len());
    let mut problems = Vec::new();
    let mut copied_to = 0;
    for directive in directives(content) {
        if directive.name != "hints" || directive.escaped {
            continue;
        }
        expanded.push_str(&content[copied_to..directive.start]);
        copied_to = directive.end;
        let Some(lab_hints) = hints.get(directive.args) else {
            let known: Vec<&str> = hints.keys().map(String::as_str).collect();
            let text = &content[directive.start..directive.end];
            problems.push(format!("{text} names no lab (the slugs are: {})", known.join(", ")));
            let missing = directive.args;
            write!(expanded, "> **The hints are missing:** there is no lab `{missing}`.").unwrap();
            continue;
        };
        // The blank lines let the hint's own Markdown render inside the HTML.
        let details: Vec<String> = (1..)
            .zip(lab_hints)
            .map(|(n, hint)| {
                format!("<details>\n<summary>Hint {n}</summary>\n\n{}\n\n</details>", hint.trim())
            })
            .collect();
        expanded.push_str(&details.join("\n\n"));
    }
    expanded.push_str(&content[copied_to..]);
    (expanded, problems)
}
