//! Serving the built book, the repository's lab files as plain text and
//! the labs' live states (see [`super::live`]), on 127.0.0.1 until Ctrl-C or
//! SIGTERM.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use tower_http::services::{ServeDir, ServeFile};

use super::check::SERVED_REPOSITORY_DIRS;
use super::live::{self, Live};
use crate::workbook::Workbook;

/// Removes a file when dropped (the book's address, once it is not served).
struct ForgetOnDrop(PathBuf);

impl Drop for ForgetOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves the built book, the repository's lab files and the labs' live
/// states until Ctrl-C/SIGTERM.
pub async fn serve(workbook: &Workbook, book: PathBuf, port: u16, open: bool) -> Result<()> {
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
    // The labs' failure messages link to the book where it is served: they
    // read this record (lab_support::Chapter). Removed when we stop.
    let record = workbook.served_book_record();
    if let Err(error) = std::fs::create_dir_all(&workbook.target_dir)
        .and_then(|()| std::fs::write(&record, url.trim_end_matches('/')))
    {
        eprintln!("warning: could not record the book's address in {}: {error}", record.display());
    }
    let _forget_record = ForgetOnDrop(record);

    let repository = Arc::new(workbook.root.clone());
    let mut app = Router::new();
    for dir in SERVED_REPOSITORY_DIRS {
        app = app
            .route(&format!("/{dir}"), axum::routing::get(repository_file))
            .route(&format!("/{dir}/"), axum::routing::get(repository_file))
            .route(&format!("/{dir}/{{*path}}"), axum::routing::get(repository_file));
    }
    let pages = ServeDir::new(&book).not_found_service(ServeFile::new(book.join("404.html")));
    let live = Live::start(workbook.clone());
    let events = Router::new()
        .route(live::EVENTS_PATH, axum::routing::get(live::events))
        .with_state(live.clone());
    let app = app.with_state(repository).merge(events).fallback_service(pages);

    let stop_signal = crate::process::stop_signal();
    println!("Serving the book at {url}  (Ctrl-C to stop)");
    io::stdout().flush().ok();
    if open {
        open_browser(&url);
    }

    let stopping = Arc::new(tokio::sync::Notify::new());
    let server = axum::serve(listener, app).with_graceful_shutdown({
        let stopping = stopping.clone();
        let live = live.clone();
        async move {
            stop_signal.await;
            println!("Stopping.");
            // Open event streams would keep their connections busy for ever.
            live.stop();
            stopping.notify_one();
        }
    });
    // Graceful shutdown waits for open connections; do not wait long for a
    // browser that keeps one open anyway.
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    tokio::select! {
        served = server => served.context("serving the book")?,
        () = deadline => {}
    }
    live.stop();
    live.join();
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
    let opened =
        command.arg(url).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    if opened.is_err() {
        eprintln!("Could not open a browser; open {url} yourself.");
    }
}
