//! `cargo xtask watch [lab]`: check the lab every time one of its files is
//! saved; once it passes, name the next lab and wait to be asked for it.
//!
//! This is the learner's main loop: an editor on one side, `watch` on the
//! other. Two ways of noticing a save work together:
//!
//! - file-system events ([`notify`]), so the check starts at once;
//! - a look at the lab's fingerprint every second, for file systems where
//!   events do not arrive (network drives, some containers and VMs).
//!
//! Either way a check runs only when the lab's files really changed, so an
//! editor that touches files without changing them does not re-run it. Only
//! writes, creations, removals and renames count as events: reading a file
//! (as the check itself does) is not a change, and waking on it would keep
//! `watch` busy for ever.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::Result;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};

use super::explain::{self, Next};
use crate::progress::{self, Progress};
use crate::ui::{self, command, paint};
use crate::workbook::{Lab, Workbook, is_noise};

/// Re-run a lab's check every time you save one of its files; once it
/// passes, name the next lab and wait for Enter.
///
/// Without a lab, starts with the first lab that does not pass yet. Changes
/// are noticed through file-system events, and by looking at the lab's
/// files every second where events do not arrive. Ctrl-C stops.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`hello`) or number (`0`). Default: the first
    /// lab that does not pass yet.
    pub lab: Option<String>,
}

/// How often the lab's files are looked at when no event arrives.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long to wait after a change for the editor to finish saving.
const SETTLE: Duration = Duration::from_millis(150);

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    crate::process::exit_on_signal();
    let mut lab = match &args.lab {
        Some(name) => workbook.lab(name)?,
        None => match progress::first_open(workbook, &Progress::load(&workbook.root))? {
            Some(lab) => lab,
            None => {
                anstream::println!(
                    "{} Every lab passes already. `cargo xtask watch <lab>` watches one anyway.",
                    paint(ui::PASS, "★")
                );
                return Ok(ExitCode::SUCCESS);
            }
        },
    };

    let (events_tx, events) = mpsc::channel();
    // `h` and Enter asks for the next hint, as in rustlings.
    let keys = events_tx.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if keys.send(Wake::Key(line)).is_err() {
                return;
            }
        }
        let _ = keys.send(Wake::NoMoreKeys);
    });
    let mut watcher = match notify::recommended_watcher(move |event| {
        if let Ok(notify::Event { kind, paths, .. }) = event
            && changes_content(kind)
        {
            let _ = events_tx.send(Wake::Files(paths));
        }
    }) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            ui::note(format!(
                "(no file-system events here: {error}; looking every second instead)"
            ));
            None
        }
    };

    loop {
        if let Some(watcher) = watcher.as_mut()
            && let Err(error) = watcher.watch(&lab.dir, RecursiveMode::Recursive)
        {
            let dir = workbook.relative(&lab.dir);
            ui::note(format!("(cannot watch {dir}: {error}; looking every second instead)"));
        }
        let mut checked_files = progress::folder_fingerprint(workbook, &lab);
        // One cycle: the progress file is read once, then passed down.
        let mut progress = Progress::load(&workbook.root);
        while !explain::check(workbook, &lab, &mut progress)?.passed() {
            anstream::println!(
                "\n{} {} for your changes (h and Enter: a hint; Ctrl-C to stop)...\n",
                paint(ui::STRONG, "Watching"),
                command(workbook.relative(&lab.dir))
            );
            checked_files = wait_for_change(workbook, &lab, &mut progress, &events, &checked_files);
            ui::note("─".repeat(72));
            progress = Progress::load(&workbook.root);
        }
        if let Some(watcher) = watcher.as_mut() {
            let _ = watcher.unwatch(&lab.dir);
        }
        let next = explain::announce_next(workbook, &lab, &progress, Next::MoveOn);
        match wait_for_go_ahead(workbook, next, &events) {
            Some(chosen) => lab = chosen,
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// After a pass: waits until the learner asks for the next lab (Enter) or
/// names another one. A workshop skips labs, so nothing starts on its own.
/// Returns `None` when there is nothing to go on with (or stdin closed).
fn wait_for_go_ahead(
    workbook: &Workbook,
    next: Option<Lab>,
    events: &Receiver<Wake>,
) -> Option<Lab> {
    let offer = match &next {
        Some(lab) => {
            format!("Enter: watch lab {}; or type another lab's name or number", lab.label())
        }
        None => "type a lab's name or number to watch it".to_owned(),
    };
    loop {
        ui::note(format!("({offer}; Ctrl-C to stop)"));
        let typed = loop {
            match events.recv() {
                Ok(Wake::Key(line)) => break line,
                Ok(Wake::Files(_)) => continue,
                Ok(Wake::NoMoreKeys) | Err(_) => return None,
            }
        };
        let typed = typed.trim();
        if typed.is_empty() {
            if next.is_some() {
                return next;
            }
            continue;
        }
        match workbook.lab(typed) {
            Ok(lab) => return Some(lab),
            Err(error) => anstream::println!("{error:#}"),
        }
    }
}

/// What wakes `watch` up: files that changed, or a line typed.
enum Wake {
    Files(Vec<PathBuf>),
    Key(String),
    /// Standard input ended (not a terminal, or closed): nobody can answer.
    NoMoreKeys,
}

/// Blocks until the lab's files differ from `last` (the fingerprint of what
/// was checked), showing a hint whenever asked; returns the new fingerprint.
fn wait_for_change(
    workbook: &Workbook,
    lab: &Lab,
    progress: &mut Progress,
    events: &Receiver<Wake>,
    last: &str,
) -> String {
    loop {
        match events.recv_timeout(POLL_EVERY) {
            Ok(Wake::Key(key)) => {
                answer_key(workbook, lab, progress, &key);
                continue;
            }
            Ok(Wake::NoMoreKeys) => continue,
            Ok(Wake::Files(paths)) if !paths.iter().any(|p| is_relevant(p)) => continue,
            Ok(Wake::Files(_)) => {
                // Let the editor finish (several events per save), then drain
                // the file events; a key pressed meanwhile is still answered.
                std::thread::sleep(SETTLE);
                while let Ok(wake) = events.try_recv() {
                    if let Wake::Key(key) = wake {
                        answer_key(workbook, lab, progress, &key);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // No watcher: polling only.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL_EVERY),
        }
        let now = progress::folder_fingerprint(workbook, lab);
        if now != last {
            return now;
        }
    }
}

/// Answers a line typed while waiting: `h` shows the next hint.
fn answer_key(workbook: &Workbook, lab: &Lab, progress: &mut Progress, key: &str) {
    if key.trim() == "h" {
        anstream::println!();
        if let Err(error) = explain::reveal(workbook, lab, progress, false, false) {
            anstream::println!("{error:#}");
        }
    }
}

/// Whether a file-system event may have changed what a file holds. Opening,
/// reading and closing a file unwritten (inotify's access events, which the
/// check's own reads cause) or a change of metadata alone do not.
fn changes_content(kind: EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        // A file closed after writing (inotify's IN_CLOSE_WRITE).
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
    }
}

/// Whether an event about `path` may matter (not an editor's swap file).
fn is_relevant(path: &Path) -> bool {
    path.file_name().and_then(|name| name.to_str()).is_some_and(|name| !is_noise(name))
}
