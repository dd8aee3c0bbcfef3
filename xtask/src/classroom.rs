//! `cargo xtask classroom`: the instructor opens the workshop room.
//!
//! The room's server is a crate of its own (`xtask/classroom`, with SQLite
//! compiled in): this verb builds and runs its binary, so a learner's
//! `cargo xtask` never compiles any of it. The room is kept in
//! `target/classroom/room.sqlite3`, and opens again as it was.

use std::process::ExitCode;

use anyhow::Result;

use crate::cargo;
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
    let db = workbook.target_dir.join("classroom").join("room.sqlite3");
    let mut argv = vec!["--bind".to_owned(), args.bind, "--port".into(), args.port.to_string()];
    argv.extend(["--max-learners".into(), args.max_learners.to_string()]);
    argv.extend(["--stuck-minutes".into(), args.stuck_minutes.to_string()]);
    argv.extend(["--db".into(), workbook.relative(&db)]);
    if args.new_room {
        argv.push("--new-room".into());
    }
    cargo::run_binary(workbook, "classroom", argv)
}
