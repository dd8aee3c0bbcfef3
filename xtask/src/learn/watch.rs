//! `cargo xtask watch [lab]`: the learner's main loop (see [`Args`]). Only
//! events that may change a file count (never reads, which the check itself
//! causes), and a check runs only if the lab's fingerprint changed.

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
/// passes, name the next lab and wait for Enter. Ctrl-C stops.
///
/// Saves are noticed by file-system events, and by a look every second
/// where events do not arrive.
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
    let lab = match &args.lab {
        Some(name) => Some(workbook.lab(name)?),
        None => progress::first_open(workbook, &Progress::load(&workbook.root))?,
    };
    let Some(mut lab) = lab else {
        anstream::println!(
            "{} Every lab passes already. `cargo xtask watch <lab>` watches one anyway.",
            paint(ui::PASS, "★")
        );
        return Ok(ExitCode::SUCCESS);
    };

    let (events_tx, events) = mpsc::channel();
    // `h` and Enter asks for the next hint, as in rustlings.
    let keys = events_tx.clone();
    std::thread::spawn(move || {
        let lines = std::io::stdin().lines().map_while(Result::ok);
        let _ = lines.map(Wake::Key).try_for_each(|key| keys.send(key));
        let _ = keys.send(Wake::NoMoreKeys);
    });
    let mut watcher = notify::recommended_watcher(move |event| {
        if let Ok(notify::Event { kind, paths, .. }) = event
            && changes_content(kind)
            && paths.iter().filter_map(|p| p.file_name()?.to_str()).any(|name| !is_noise(name))
        {
            let _ = events_tx.send(Wake::Files);
        }
    })
    .inspect_err(|error| {
        ui::note(format!("(no file-system events here: {error}; looking every second instead)"))
    })
    .ok();

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
        match go_ahead(workbook, next, &events) {
            Some(chosen) => lab = chosen,
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// After a pass: the next lab once the learner presses Enter, or the lab
/// they name (a workshop skips labs); `None` once stdin closes.
fn go_ahead(workbook: &Workbook, next: Option<Lab>, events: &Receiver<Wake>) -> Option<Lab> {
    let offer = next.as_ref().map_or("type a lab's name or number to watch it".to_owned(), |lab| {
        format!("Enter: watch lab {}; or type another lab's name or number", lab.label())
    });
    loop {
        ui::note(format!("({offer}; Ctrl-C to stop)"));
        let Some(Wake::Key(typed)) = events.iter().find(|wake| !matches!(wake, Wake::Files)) else {
            return None;
        };
        match typed.trim() {
            "" if next.is_some() => return next,
            "" => {}
            typed => match workbook.lab(typed) {
                Ok(lab) => return Some(lab),
                Err(error) => anstream::println!("{error:#}"),
            },
        }
    }
}

/// What wakes `watch` up: a lab's file that changed (not an editor's or the
/// build's noise), a line typed, or the end of stdin.
enum Wake {
    Files,
    Key(String),
    NoMoreKeys,
}

/// Blocks until the lab's fingerprint differs from `last`, showing a hint
/// whenever asked; returns the new one.
fn wait_for_change(
    workbook: &Workbook,
    lab: &Lab,
    progress: &mut Progress,
    events: &Receiver<Wake>,
    last: &str,
) -> String {
    loop {
        match events.recv_timeout(POLL_EVERY) {
            Ok(Wake::Files) => {
                // Let the editor finish (several events per save), then drain
                // the file events; a key pressed meanwhile is still answered.
                std::thread::sleep(SETTLE);
                events.try_iter().for_each(|wake| answer_key(workbook, lab, progress, wake));
            }
            Ok(wake) => answer_key(workbook, lab, progress, wake),
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

fn answer_key(workbook: &Workbook, lab: &Lab, progress: &mut Progress, wake: Wake) {
    if matches!(wake, Wake::Key(key) if key.trim() == "h") {
        anstream::println!();
        explain::reveal(workbook, lab, progress, false, false)
            .unwrap_or_else(|error| anstream::println!("{error:#}"));
    }
}

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
