//! `cargo xtask classroom`: the instructor opens the workshop room.
//!
//! The room's server is a crate of its own (`xtask/classroom`, with SQLite
//! compiled in): this verb builds and runs its binary, so a learner's
//! `cargo xtask` never compiles any of it. The room is kept in
//! `target/classroom/room.sqlite3`, and opens again as it was.

use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};

use crate::cargo;
use crate::process::Supervised;
use crate::workbook::Workbook;

/// Open the workshop room: a live dashboard of every learner's labs.
///
/// Prints the dashboard's link (with your key) and the line learners type
/// (`cargo xtask join … --code … --name …`). Listens on 127.0.0.1 unless
/// `--bind` names one of this machine's addresses, which it lists. Ctrl-C
/// closes the room; it is kept, and opens again as it was.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on: 127.0.0.1 (this machine only), one of this
    /// machine's addresses for the room to join, or 0.0.0.0 for all.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// The port.
    #[arg(long, default_value_t = 4000)]
    pub port: u16,
    /// Start an empty room with a new code.
    #[arg(long)]
    pub new_room: bool,
    /// Past this many learners, joins are refused.
    #[arg(long, default_value_t = 200)]
    pub max_learners: usize,
    /// Minutes on the same failing test before a learner is highlighted.
    #[arg(long, default_value_t = 10.0)]
    pub stuck_minutes: f64,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    crate::process::exit_on_signal();
    let built = cargo::build(workbook, &["--package", "classroom", "--bin", "classroom"])?;
    let server = built
        .into_iter()
        .find(|executable| executable.name == "classroom")
        .context("cargo built no `classroom` binary")?;
    let db = workbook.target_dir.join("classroom").join("room.sqlite3");
    let mut command = Command::new(&server.path);
    command
        .current_dir(&workbook.root)
        .args(["--bind", &args.bind, "--port", &args.port.to_string()])
        .args(["--max-learners", &args.max_learners.to_string()])
        .args(["--stuck-minutes", &args.stuck_minutes.to_string()])
        .arg("--db")
        .arg(workbook.relative(&db))
        .stdin(Stdio::null());
    if args.new_room {
        command.arg("--new-room");
    }
    let mut child = Supervised::spawn(&mut command).context("starting the room's server")?;
    let status = child.wait()?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
