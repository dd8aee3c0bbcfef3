//! Serving the built book, the repository's lab files as plain text and
//! the labs' live states, on 127.0.0.1 until Ctrl-C or SIGTERM.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use super::check::SERVED_REPOSITORY_DIRS;
use super::live::{self, Live};
use crate::workbook::Workbook;

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
    // read this record (lab_support::Chapter), removed when we stop.
    let record = workbook.served_book_record();
    if let Err(error) = std::fs::create_dir_all(&workbook.target_dir)
        .and_then(|()| std::fs::write(&record, url.trim_end_matches('/')))
    {
        eprintln!("warning: could not record the book's address in {}: {error}", record.display());
    }

    // The chapters link to lab files (`../../labs/...`, which browsers clamp
    // to `/labs/...` when served): shown as text, not downloaded. Routed, not
    // nested, so that ServeDir sees (and redirects to) the whole path.
    let files = SERVED_REPOSITORY_DIRS.iter().fold(Router::new(), |files, dir| {
        files.route_service(&format!("/{dir}/{{*path}}"), ServeDir::new(&workbook.root))
    });
    let text = HeaderValue::from_static("text/plain; charset=utf-8");
    let nosniff = HeaderValue::from_static("nosniff");
    let files = files
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_TYPE, text))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, nosniff));
    let (live, keeping_current) = Live::start(workbook.clone());
    let app = Router::new()
        .route(live::EVENTS_PATH, axum::routing::get(live::events))
        .with_state(live.clone())
        .merge(files)
        .fallback_service(
            ServeDir::new(&book).not_found_service(ServeFile::new(book.join("404.html"))),
        );

    crate::process::handle_stop_myself();
    println!("Serving the book at {url}  (Ctrl-C to stop)");
    io::stdout().flush().ok();
    if open {
        open_browser(&url);
    }
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stopped.await;
    });
    // Graceful shutdown waits for open connections: the event streams end
    // at once, but do not wait long for a browser that keeps another open.
    let stopping = async {
        crate::process::stop_requested().await;
        println!("Stopping.");
        live.stop();
        let _ = stop.send(());
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let served = tokio::select! {
        served = server => served.context("serving the book"),
        () = stopping => Ok(()),
    };
    live.stop();
    let _ = keeping_current.await;
    let _ = std::fs::remove_file(&record);
    served
}

/// Opens `url` with the platform's opener; a failure is only reported.
fn open_browser(url: &str) {
    let (opener, args): (&str, &[&str]) = if cfg!(windows) {
        ("cmd", &["/C", "start", ""])
    } else if cfg!(target_os = "macos") {
        ("open", &[])
    } else {
        ("xdg-open", &[])
    };
    let mut command = Command::new(opener);
    command.args(args).arg(url).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    if command.spawn().is_err() {
        eprintln!("Could not open a browser; open {url} yourself.");
    }
}
