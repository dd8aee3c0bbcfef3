//! `cargo xtask` (an alias of `.cargo/config.toml`): parses the command
//! line and runs a verb of the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xtask::cargo::{PassedOn, run_binary};
use xtask::workbook::Workbook;
use xtask::{bench, book, dev, learn};

/// The workbook's tool: read the book, check your labs, see their tasks.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about,
    after_help = "Two commands: `cargo xtask book` to read the book, `cargo xtask verify` \
                  to test everything (every lab fails as intended, every solution passes). \
                  A learner checks a lab with `cargo test -p <lab>`; `cargo xtask` alone \
                  shows your progress and what to do next; `cargo xtask watch` checks your \
                  lab every time you save."
)]
struct Cli {
    /// What to do; without one, `status`.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    Status(learn::status::Args),
    Check(learn::check::Args),
    Watch(learn::watch::Args),
    Hint(learn::hint::Args),
    Reset(learn::reset::Args),
    Restore(learn::restore::Args),
    Solution(learn::solution::Args),
    Book(book::Args),
    Console(learn::console::Args),
    Fetch(learn::fetch::Args),
    Bench(bench::Args),
    /// Open the workshop room: a live dashboard of every learner's labs.
    ///
    /// The room is the crate `xtask/classroom`, built when first asked;
    /// `--help` lists its options (`--bind`, `--port`, `--new-room`...).
    Classroom(PassedOn),
    Join(learn::join::Args),
    /// Leave the workshop room: your tool stops sending your labs' states.
    Leave,
    /// The maintainer's verbs: verify the course, capture console screens.
    #[command(subcommand)]
    Dev(DevCommand),
    /// The same as `cargo xtask dev verify` (the README's test command).
    #[command(hide = true)]
    Verify(dev::verify::Args),
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    Verify(dev::verify::Args),
    CaptureConsole(dev::capture::Args),
    /// Check each lab's `[console.check]` claims with a real console client.
    ///
    /// Starter and solution, while the lab's traffic runs; the check is the
    /// crate `xtask/console-check`, and `--help` lists its options.
    ConsoleCheck(PassedOn),
    LoopBench(dev::loop_bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    xtask::process::exit_on_signal();
    let result = Workbook::locate().and_then(|workbook| {
        if let Some(warning) = workbook.shared_target_warning() {
            eprintln!("warning: {warning}");
        }
        let command = cli.command.unwrap_or(Command::Status(learn::status::Args::default()));
        match command {
            Command::Status(args) => learn::status::run(&workbook, args),
            Command::Check(args) => learn::check::run(&workbook, args),
            Command::Watch(args) => learn::watch::run(&workbook, args),
            Command::Hint(args) => learn::hint::run(&workbook, args),
            Command::Reset(args) => learn::reset::run(&workbook, args),
            Command::Restore(args) => learn::restore::run(&workbook, args),
            Command::Solution(args) => learn::solution::run(&workbook, args),
            Command::Book(args) => book::run(&workbook, args),
            Command::Console(args) => learn::console::run(&workbook, args),
            Command::Fetch(args) => learn::fetch::run(&workbook, args),
            Command::Bench(args) => bench::run(&workbook, args),
            Command::Classroom(args) => run_binary(&workbook, "classroom", args.args),
            Command::Join(args) => learn::join::run(&workbook, args),
            Command::Leave => learn::join::leave(&workbook),
            Command::Dev(DevCommand::Verify(args)) | Command::Verify(args) => {
                dev::verify::run(&workbook, args)
            }
            Command::Dev(DevCommand::CaptureConsole(args)) => dev::capture::run(&workbook, args),
            Command::Dev(DevCommand::ConsoleCheck(args)) => {
                run_binary(&workbook, "console-check", args.args)
            }
            Command::Dev(DevCommand::LoopBench(args)) => dev::loop_bench::run(&workbook, args),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
