//! `cargo xtask dev capture-console`: the real tokio-console screens of the book.
//!
//! The tokio-console chapter shows what the console looks like while a lab's
//! bug happens, and after the fix. Those screens are not drawn by hand: this
//! verb runs each lab (starter, then solution) with its own traffic, as
//! `cargo xtask console` does, opens a real tokio-console in a detached tmux
//! session of a fixed size, waits for the picture to develop, and saves
//! tmux's copy of the screen (`capture-pane`) as text in `book/src/console/`,
//! where the chapter includes it. Which screens, and the keys that lead to
//! them, are in the `[console]` table of each lab's `lab.toml`. Anyone with tmux and tokio-console can
//! rerun it; the numbers differ a little from run to run, the picture not.
//!
//! It uses a tmux server of its own (`tmux -S <socket>`), so it never
//! touches your tmux sessions, and free ports, so it never collides with a
//! running lab.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process;
use crate::server::{Echo, LabExecutables, Ports, Variant};
use crate::ui::{self, paint};
use crate::workbook::{Lab, Screen, Workbook};

/// Capture real tokio-console screens of labs (starter and solution) into
/// book/src/console, for the book's tokio-console chapter. Needs tmux and
/// tokio-console.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The labs to capture (slug or number); default: every lab whose
    /// lab.toml lists `[[console.screens]]`.
    pub labs: Vec<String>,
    /// Where to write the screens (default: book/src/console).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds of traffic before the screen is captured.
    #[arg(long, default_value_t = 10)]
    pub warm_up: u64,
    /// The console's width in columns.
    #[arg(long, default_value_t = 132)]
    pub width: u16,
    /// The console's height in lines.
    #[arg(long, default_value_t = 32)]
    pub height: u16,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    process::exit_on_signal();
    if !process::on_path("tokio-console") {
        bail!("tokio-console is not installed: `cargo install --locked tokio-console`");
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        bail!("tmux is not installed (the screens are captured from a tmux pane)");
    }
    let out =
        args.out.clone().unwrap_or_else(|| workbook.root.join("book").join("src").join("console"));
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let labs = workbook.labs_named(&args.labs, |lab| !lab.console.screens.is_empty())?;
    for lab in &labs {
        for variant in [Variant::Lab, Variant::Solution] {
            for (what, text) in capture(workbook, lab, variant, &args)? {
                let file = out.join(format!("{}-{}-{what}.txt", lab.folder_name(), variant.name()));
                fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
                anstream::println!("{} {}", paint(ui::PASS, "captured"), workbook.relative(&file));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The screens of a lab worth showing (its `lab.toml`), else the task list.
/// The task list comes up sorted by total time; `Right` moves the sort to
/// the next column (Busy, Sched, Idle, Polls), `j` selects the first row,
/// `Enter` opens it.
fn screens(lab: &Lab) -> Vec<Screen> {
    match lab.console.screens.as_slice() {
        [] => vec![Screen { name: "tasks".into(), keys: Vec::new() }],
        screens => screens.to_vec(),
    }
}

/// How many of the traffic's last report lines are saved with the screens.
const TRAFFIC_LINES: usize = 3;

/// The lab's `variant` under traffic, seen by tokio-console: each of its
/// [`screens`] by name with its text, and the traffic's last report lines
/// (`traffic`).
fn capture(
    workbook: &Workbook,
    lab: &Lab,
    variant: Variant,
    args: &Args,
) -> Result<Vec<(String, String)>> {
    let built = LabExecutables::build(workbook, lab, variant)?;
    let server = built.start_server(lab, Ports::any_free()?, Echo::Shown)?;
    let traffic = built.start_traffic(server.addr, Echo::Shown)?;

    let tmux =
        Tmux::start(&format!("tokio-console http://{}", server.console), args.width, args.height)?;
    let (label, name, seconds) = (lab.label(), variant.name(), args.warm_up);
    let waiting = format!("letting {label} ({name}) run under traffic for {seconds} s...");
    ui::note(waiting);
    thread::sleep(Duration::from_secs(args.warm_up));
    let mut captured = Vec::new();
    for screen in screens(lab) {
        for key in &screen.keys {
            tmux.send_key(key)?;
            thread::sleep(Duration::from_millis(300));
        }
        // Let the console redraw (it does once a second at most).
        thread::sleep(Duration::from_millis(1500));
        captured.push((screen.name, tidy(&tmux.capture()?)));
    }
    drop(tmux);

    let last = traffic.map(|traffic| traffic.last_reported(TRAFFIC_LINES)).unwrap_or_default();
    if !last.is_empty() {
        captured
            .push(("traffic".into(), last.iter().map(|l| format!("traffic | {l}\n")).collect()));
    }
    ui::note(server.stop());
    Ok(captured)
}

/// Drops trailing spaces and trailing blank lines.
fn tidy(screen: &str) -> String {
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let end = lines.iter().rposition(|line| !line.is_empty()).map_or(0, |last| last + 1);
    let mut text = lines[..end].join("\n");
    text.push('\n');
    text
}

/// A detached tmux session on a private tmux server, running one command.
struct Tmux {
    /// The private server's socket (removed when done).
    socket: PathBuf,
}

impl Tmux {
    const SESSION: &'static str = "capture";

    fn start(command: &str, width: u16, height: u16) -> Result<Tmux> {
        let tmux = Tmux {
            socket: std::env::temp_dir().join(format!("xtask-capture-{}.tmux", std::process::id())),
        };
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            Self::SESSION,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ])?;
        Ok(tmux)
    }

    fn send_key(&self, key: &str) -> Result<()> {
        self.run(&["send-keys", "-t", Self::SESSION, key])?;
        Ok(())
    }

    fn capture(&self) -> Result<String> {
        self.run(&["capture-pane", "-p", "-t", Self::SESSION])
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .context("running tmux")?;
        if !output.status.success() {
            bail!(
                "tmux {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        let _ = fs::remove_file(&self.socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_screen_loses_trailing_blanks_only() {
        assert_eq!(tidy("  a  \nb\n\n   \n"), "  a\nb\n");
        assert_eq!(tidy(""), "\n");
    }
}
