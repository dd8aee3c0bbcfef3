//! `cargo xtask book`: build the workbook with mdBook and serve it locally.
//!
//! The book is built through mdBook's library (`mdbook-driver`), so a learner
//! installs nothing. Two things are added to a plain mdBook build:
//!
//! - a preprocessor that expands `{{#hints <slug>}}` into the lab's hints
//!   from its `lab.toml`, behind `<details>`, so the hints have one source of
//!   truth shared with the xtask's other verbs;
//! - checks that `verify` turns into failures: every `{{#include}}` names an
//!   existing file and anchor, every `{{#hints}}` an existing lab, and every
//!   relative link an existing chapter, heading or repository file.
//!
//! The book is then served by a small axum server on 127.0.0.1. Chapters
//! link to lab files as `../../labs/NN-slug/src/lib.rs`, which works when the
//! built book is opened from disk (`target/book` is two levels deep, like
//! `book/src`) and, because browsers clamp `..` at the site root, also when
//! served: the server answers `/labs/...` and `/solutions/...` with the
//! repository's files as plain text.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mdbook_driver::MDBook;
use mdbook_driver::book::{Book, BookItem};
use mdbook_driver::builtin_preprocessors::{IndexPreprocessor, LinkPreprocessor};
use mdbook_driver::config::Config;
use mdbook_markdown::pulldown_cmark::{Event, Tag};
use mdbook_markdown::{MarkdownOptions, new_cmark_parser};
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};
use tower_http::services::{ServeDir, ServeFile};

use crate::Workspace;
use crate::labs::{self, Lab};

/// Build the book and serve it at http://127.0.0.1:3000.
///
/// The book is built into target/book. Chapters link to the labs' files;
/// the server shows those as plain text under /labs/ and /solutions/.
/// Restart it to see edits to the chapters.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The port to serve on (127.0.0.1 only).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Open the book in your browser once it is served.
    #[arg(long)]
    pub open: bool,
    /// Only build the book, do not serve it.
    #[arg(long)]
    pub build_only: bool,
    /// Build into this directory instead of target/book.
    #[arg(long, value_name = "DIR")]
    pub dest_dir: Option<PathBuf>,
}

/// The repository folders the book may link into, served under `/<name>/`.
pub const SERVED_REPOSITORY_DIRS: &[&str] = &["labs", "solutions"];

pub fn run(workspace: &Workspace, args: Args) -> Result<ExitCode> {
    let (labs, broken) = labs::discover(&workspace.root)?;
    for lab in &broken {
        eprintln!(
            "warning: {} is skipped: {:#}",
            workspace.relative(&lab.dir),
            lab.error
        );
    }
    let dest = args
        .dest_dir
        .clone()
        .unwrap_or_else(|| workspace.target_dir.join("book"));
    let started = Instant::now();
    let built = build(&workspace.root, &labs, &dest)?;
    for problem in &built.problems {
        eprintln!("warning: {problem}");
    }
    println!(
        "Built the book in {:.1} s into {}",
        started.elapsed().as_secs_f64(),
        workspace.relative(&dest)
    );
    if args.build_only {
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(serve(workspace.root.clone(), dest, args.port, args.open))?;
    Ok(ExitCode::SUCCESS)
}

/// A built book and what is wrong with its sources.
#[derive(Debug)]
pub struct Built {
    /// Each problem names the chapter, the offending text and what is wrong.
    pub problems: Vec<String>,
}

/// Builds the book at `<root>/book` into `dest`, expanding hints from `labs`,
/// and checks its includes, hints and links. Fails only if mdBook fails
/// (e.g. SUMMARY.md lists a chapter file that does not exist).
pub fn build(root: &Path, labs: &[Lab], dest: &Path) -> Result<Built> {
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
        hints: labs
            .iter()
            .map(|lab| (lab.slug.clone(), lab.hints.clone()))
            .collect(),
        problems: hint_problems.clone(),
    })
    .with_preprocessor(LinkPreprocessor::new())
    .with_preprocessor(IndexPreprocessor::new())
    .with_preprocessor(Recorder {
        chapters: rendered.clone(),
    });
    book.build().context("mdBook could not build the book")?;

    problems.extend(hint_problems.take());
    let chapters: BTreeSet<PathBuf> = rendered.borrow().iter().map(|(p, _)| p.clone()).collect();
    let links = LinkChecker {
        root,
        src_dir: &src_dir,
        dest,
        chapters: &chapters,
    };
    for (chapter, content) in rendered.borrow().iter() {
        problems.extend(links.check(chapter, content));
    }
    Ok(Built { problems })
}

/// A `{{#name args}}` directive in a chapter's Markdown, as mdBook finds them.
#[derive(Debug, PartialEq, Eq)]
struct Directive<'a> {
    /// Byte range of the whole `{{...}}`.
    start: usize,
    end: usize,
    name: &'a str,
    args: &'a str,
    /// Written `\{{#...}}`: shown literally, not expanded.
    escaped: bool,
}

impl Directive<'_> {
    fn text<'t>(&self, content: &'t str) -> &'t str {
        &content[self.start..self.end]
    }
}

/// Finds `{{#name args}}` directives (the same shape mdBook's `links`
/// preprocessor recognises: `{{`, spaces, `#name`, spaces, args, `}}`).
fn directives(content: &str) -> Vec<Directive<'_>> {
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
fn chapters(book: &Book) -> Vec<(PathBuf, &str)> {
    book.iter()
        .filter_map(|item| match item {
            BookItem::Chapter(ch) => ch
                .source_path
                .clone()
                .map(|path| (path, ch.content.as_str())),
            _ => None,
        })
        .collect()
}

/// Checks `{{#include file:anchor}}` (and `rustdoc_include`, `playground`)
/// in the unprocessed chapters: mdBook only logs a missing file, and a
/// missing anchor silently includes nothing.
fn check_includes(root: &Path, src_dir: &Path, book: &Book) -> Vec<String> {
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
            let Ok(text) = fs::read_to_string(&target) else {
                problems.push(format!(
                    "{at}: there is no file {}",
                    labs::relative(root, &target)
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
                    labs::relative(root, &target)
                ));
            }
        }
    }
    problems
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
                self.problems
                    .borrow_mut()
                    .push(format!("book/src/{name}: {problem}"));
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

/// Checks the relative links of the rendered chapters.
struct LinkChecker<'a> {
    root: &'a Path,
    src_dir: &'a Path,
    dest: &'a Path,
    /// The book's chapters, relative to `src_dir`.
    chapters: &'a BTreeSet<PathBuf>,
}

impl LinkChecker<'_> {
    fn check(&self, chapter: &Path, content: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for event in new_cmark_parser(content, &MarkdownOptions::default()) {
            let url = match event {
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => dest_url,
                _ => continue,
            };
            if let Err(problem) = self.check_link(chapter, &url) {
                problems.push(format!(
                    "book/src/{}: link ({url}): {problem}",
                    chapter.display()
                ));
            }
        }
        problems
    }

    fn check_link(&self, chapter: &Path, url: &str) -> Result<(), String> {
        let is_external = url
            .split_once(':')
            .is_some_and(|(scheme, _)| !scheme.contains('/'));
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
            let is_page = matches!(
                in_book.extension().and_then(|e| e.to_str()),
                Some("md" | "html")
            );
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
            Err(format!(
                "{} has no heading with the id #{fragment}",
                chapter.display()
            ))
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

/// Serves the built book and the repository's lab files until Ctrl-C/SIGTERM.
async fn serve(root: PathBuf, book: PathBuf, port: u16, open: bool) -> Result<()> {
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => bail!(
            "port {port} is already in use (is the book already being served?); \
             pick another with `cargo xtask book --port {}`",
            port.wrapping_add(1)
        ),
        Err(error) => return Err(error).context(format!("listening on 127.0.0.1:{port}")),
    };
    let url = format!("http://{}/", listener.local_addr()?);

    let repository = Arc::new(root);
    let mut app = Router::new();
    for dir in SERVED_REPOSITORY_DIRS {
        app = app
            .route(&format!("/{dir}"), axum::routing::get(repository_file))
            .route(&format!("/{dir}/"), axum::routing::get(repository_file))
            .route(
                &format!("/{dir}/{{*path}}"),
                axum::routing::get(repository_file),
            );
    }
    let pages = ServeDir::new(&book).not_found_service(ServeFile::new(book.join("404.html")));
    let app = app.with_state(repository).fallback_service(pages);

    let stop_signal = shutdown_signal().context("listening for Ctrl-C")?;
    println!("Serving the book at {url}  (Ctrl-C to stop)");
    io::stdout().flush().ok();
    if open {
        open_browser(&url);
    }

    let stopping = Arc::new(tokio::sync::Notify::new());
    let server = axum::serve(listener, app).with_graceful_shutdown({
        let stopping = stopping.clone();
        async move {
            stop_signal.await;
            println!("Stopping.");
            stopping.notify_one();
        }
    });
    // Graceful shutdown waits for open connections; do not wait long for a
    // browser that keeps one open.
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    tokio::select! {
        served = server => served.context("serving the book")?,
        () = deadline => {}
    }
    Ok(())
}

/// Answers `/labs/...` and `/solutions/...` with the repository's files as
/// plain text and its folders as a list of links. Read-only, and only below
/// the served folders.
async fn repository_file(State(root): State<Arc<PathBuf>>, uri: Uri) -> Response {
    let requested = uri.path().trim_start_matches('/');
    let mut path = root.as_ref().clone();
    for component in Path::new(requested).components() {
        match component {
            Component::Normal(part) => path.push(part),
            _ => return (StatusCode::BAD_REQUEST, "bad path").into_response(),
        }
    }
    match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.is_dir() => {
            if !uri.path().ends_with('/') {
                return Redirect::permanent(&format!("{}/", uri.path())).into_response();
            }
            directory_listing(&path, uri.path()).await
        }
        Ok(_) => match tokio::fs::read(&path).await {
            Ok(bytes) => (
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                bytes,
            )
                .into_response(),
            Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
        },
        Err(_) => (StatusCode::NOT_FOUND, format!("{requested} does not exist")).into_response(),
    }
}

async fn directory_listing(dir: &Path, url_path: &str) -> Response {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut names = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
        let name = entry.file_name().to_string_lossy().into_owned();
        names.push(if is_dir { format!("{name}/") } else { name });
    }
    names.sort();
    let mut html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{url_path}</title>\
         <h1>{url_path}</h1><ul><li><a href=\"../\">../</a></li>"
    );
    for name in names {
        write!(html, "<li><a href=\"{name}\">{name}</a></li>").unwrap();
    }
    html.push_str("</ul>");
    Html(html).into_response()
}

/// Opens `url` with the platform's opener; a failure is only reported.
fn open_browser(url: &str) {
    let mut command = if cfg!(target_os = "windows") {
        let mut c = Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else if cfg!(target_os = "macos") {
        Command::new("open")
    } else {
        Command::new("xdg-open")
    };
    let opened = command
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if opened.is_err() {
        eprintln!("Could not open a browser; open {url} yourself.");
    }
}

/// Starts listening for Ctrl-C, and SIGTERM on Unix (a background job
/// ignores Ctrl-C), at once: the future resolves on either. Listening before
/// the URL is printed means a signal sent right after it stops the server
/// cleanly instead of killing the process.
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            tokio::signal::ctrl_c().await.ok();
        })
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
        assert!(
            problems[0].contains("the slugs are: overload"),
            "{problems:?}"
        );
    }

    #[test]
    fn escaped_hints_are_left_for_mdbook_to_unescape() {
        let text = r"write \{{#hints overload}} in a chapter";
        let (page, problems) = expand_hints(text, &hints());
        assert_eq!(page, text);
        assert!(problems.is_empty());
    }

    #[test]
    fn directives_are_found_like_mdbook_finds_them() {
        let text = "a {{#include ../x.rs:anchor}} b {{ #hints  hello }} {{not}} {{#title}}";
        let found = directives(text);
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].name, found[0].args),
            ("include", "../x.rs:anchor")
        );
        assert_eq!((found[1].name, found[1].args), ("hints", "hello"));
    }

    #[test]
    fn a_missing_anchor_or_anchor_end_is_named() {
        let code = "// ANCHOR: handler\nfn f() {}\n// ANCHOR_END: handler\n// ANCHOR: open\n";
        assert_eq!(missing_anchor(code, "handler"), None);
        assert_eq!(missing_anchor(code, "hand"), Some("ANCHOR: hand".into()));
        assert_eq!(
            missing_anchor(code, "open"),
            Some("ANCHOR_END: open".into())
        );
    }

    #[test]
    fn paths_are_normalized_without_the_disk() {
        assert_eq!(
            normalize(Path::new("/w/book/src/../../labs/./01-x/src/lib.rs")),
            Path::new("/w/labs/01-x/src/lib.rs")
        );
    }
}
