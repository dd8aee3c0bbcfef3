//! `cargo xtask dev capture-console`: the book's real tokio-console screens.
//! Each lab (starter, then solution) runs with its traffic, as in `cargo
//! xtask console`; a real tokio-console runs in a detached tmux session of a
//! fixed size (on a tmux server of its own, never yours), and tmux's copy
//! of the screen is saved as text in `book/src/console/`. The screens and
//! the keys that lead to them are in each lab's `[console]` table.

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
    if !process::on_path("tokio-console") {
        bail!("tokio-console is not installed: `cargo install --locked tokio-console`");
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        bail!("tmux is not installed (the screens are captured from a tmux pane)");
    }
    let out = args.out.clone().unwrap_or_else(|| workbook.root.join("book/src/console"));
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    for lab in &workbook.labs_named(&args.labs, |lab| !lab.console.screens.is_empty())? {
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

/// How many of the traffic's last report lines are saved with the screens.
const TRAFFIC_LINES: usize = 3;

/// Texts by name: each screen's, then the traffic's.
type Captured = Vec<(String, String)>;

/// The lab's `variant` under traffic, seen by tokio-console: each screen of
/// its `lab.toml` (else the task list) by name with its text, and the
/// traffic's last report lines (`traffic`).
fn capture(workbook: &Workbook, lab: &Lab, variant: Variant, args: &Args) -> Result<Captured> {
    let built = LabExecutables::build(workbook, lab, variant)?;
    let server = built.start_server(lab, Ports::any_free()?, Echo::Shown)?;
    let traffic = built.start_traffic(server.addr, Echo::Shown)?;

    let tmux = Tmux::start(&format!("tokio-console http://{}", server.console), args)?;
    let (label, name, seconds) = (lab.label(), variant.name(), args.warm_up);
    ui::note(format!("letting {label} ({name}) run under traffic for {seconds} s..."));
    thread::sleep(Duration::from_secs(args.warm_up));
    let mut captured = Vec::new();
    let tasks = [Screen { name: "tasks".into(), keys: Vec::new() }];
    let screens = if lab.console.screens.is_empty() { &tasks[..] } else { &lab.console.screens };
    for screen in screens {
        for key in &screen.keys {
            tmux.run(&["send-keys", "-t", "capture", key])?;
            thread::sleep(Duration::from_millis(300));
        }
        // Let the console redraw (it does once a second at most).
        thread::sleep(Duration::from_millis(1500));
        captured.push((
            screen.name.clone(),
            tidy(&tmux.run(&["capture-pane", "-p", "-t", "capture"])?),
        ));
    }
    drop(tmux);

    let last = traffic.map(|traffic| traffic.last_reported(TRAFFIC_LINES)).unwrap_or_default();
    let last: String = last.iter().map(|line| format!("traffic | {line}\n")).collect();
    captured.extend((!last.is_empty()).then(|| ("traffic".into(), last)));
    ui::note(server.stop());
    Ok(captured)
}

/// Drops trailing spaces and trailing blank lines.
pub fn tidy(screen: &str) -> String {
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    format!("{}\n", lines.join("\n").trim_end())
}

/// A detached tmux session on a private tmux server (its socket), running
/// one command.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(command: &str, args: &Args) -> Result<Tmux> {
        let socket = format!("xtask-capture-{}.tmux", std::process::id());
        let tmux = Tmux { socket: std::env::temp_dir().join(socket) };
        let (width, height) = (args.width.to_string(), args.height.to_string());
        let new = ["-f", "/dev/null", "new-session", "-d", "-s", "capture", "-x", &width];
        tmux.run(&[&new[..], &["-y", &height, command]].concat())?;
        Ok(tmux)
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let mut tmux = Command::new("tmux");
        tmux.arg("-S").arg(&self.socket).args(args).env_remove("TMUX").stdin(Stdio::null());
        let output = tmux.output().context("running tmux")?;
        if !output.status.success() {
            let why = String::from_utf8_lossy(&output.stderr);
            bail!("tmux {} failed: {}", args.join(" "), why.trim());
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
