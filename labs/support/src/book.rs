//! Links from failure messages to the book, wherever the learner can open it.
//!
//! A failure message ends with "Read: <the chapter's section>". The book may
//! be served on any port (`cargo xtask book --port 8000`), or not at all, so
//! the link is worked out when a message is written: the address that
//! `cargo xtask book` records while it serves, else the built page on disk,
//! else the default address.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Where `cargo xtask book` serves the book unless told otherwise.
const DEFAULT_ADDRESS: &str = "http://127.0.0.1:3000";
/// The file, in the target directory, in which the book server records its
/// address while it runs.
const RECORD: &str = "book-url";

/// A chapter of the book, as a lab's tests name it:
///
/// ```ignore
/// const CHAPTER: Chapter = Chapter::page("01-blocking.html");
/// panic!("… Read: {CHAPTER}#see-the-bug");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Chapter {
    page: &'static str,
}

impl Chapter {
    /// The chapter whose built page is `page` (e.g. `"01-blocking.html"`).
    pub const fn page(page: &'static str) -> Chapter {
        Chapter { page }
    }
}

impl fmt::Display for Chapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match book() {
            Book::Served(address) => write!(f, "{address}/{}", self.page),
            Book::OnDisk(dir) => {
                let path = dir.join(self.page).to_string_lossy().replace('\\', "/");
                let slashes = if path.starts_with('/') {
                    "file://"
                } else {
                    "file:///"
                };
                write!(f, "{slashes}{path}")
            }
            Book::Nowhere => write!(f, "{DEFAULT_ADDRESS}/{}", self.page),
        }
    }
}

/// Where the book can be read, found once per test run.
enum Book {
    /// Served by `cargo xtask book` at this address.
    Served(String),
    /// Built, not served: the folder of its pages.
    OnDisk(PathBuf),
    /// Neither: the default address is the best guess.
    Nowhere,
}

fn book() -> &'static Book {
    static BOOK: OnceLock<Book> = OnceLock::new();
    BOOK.get_or_init(|| {
        let Some(target) = target_dir() else {
            return Book::Nowhere;
        };
        if let Some(address) = served_address(&target.join(RECORD)) {
            return Book::Served(address);
        }
        let built = target.join("book");
        if built.join("index.html").is_file() {
            return Book::OnDisk(built);
        }
        Book::Nowhere
    })
}

/// The address the book server recorded, if it still answers there. Only
/// a loopback address is ever tried.
fn served_address(record: &Path) -> Option<String> {
    let address = std::fs::read_to_string(record).ok()?;
    let address = address.trim().to_owned();
    let port: u16 = address.strip_prefix("http://127.0.0.1:")?.parse().ok()?;
    let socket = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&socket, Duration::from_millis(200)).ok()?;
    Some(address)
}

/// The workbook's target directory, as the xtask finds it: `CARGO_TARGET_DIR`
/// (relative to the workbook) or `target/` in the workbook, whose root is
/// the nearest folder above the running crate that holds `book/book.toml`.
fn target_dir() -> Option<PathBuf> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let root = manifest
        .ancestors()
        .find(|dir| dir.join("book").join("book.toml").is_file())?;
    Some(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    })
}
