//! `cargo xtask join <url> --code … --name …` and `cargo xtask leave`: join
//! the instructor's workshop room, so that the dashboard shows where your
//! labs stand, and leave it. What is sent, and when, is in [`crate::room`].

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use classroom::client::{Client, Error};

use crate::room::{self, Membership};
use crate::ui::{self, command, paint};
use crate::workbook::Workbook;

/// Join the instructor's workshop room: from now on your tool tells the
/// room's dashboard where your labs stand (states only, never your code).
///
/// The instructor's `cargo xtask classroom` prints the line to type.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The room's address, as the instructor's screen shows it
    /// (`http://<address>:<port>`).
    pub url: String,
    /// The room's join code, as the instructor's screen shows it.
    #[arg(long)]
    pub code: String,
    /// Your name, as the instructor will see it.
    #[arg(long)]
    pub name: String,
}

const WAIT: Duration = Duration::from_secs(5);

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let url = args.url.trim().trim_end_matches('/');
    if !url.starts_with("http://") {
        bail!("the room's address starts with http:// (as `cargo xtask classroom` prints it)");
    }
    let seat = match room::blocking(Client::new(WAIT).join(url, &args.code, &args.name)) {
        Ok(seat) => seat,
        Err(Error::Unreachable(error)) => bail!(
            "could not reach the room at {url} ({:#}): is the instructor's room open, \
             and is this the address its screen shows?",
            anyhow::Error::from(error)
        ),
        Err(refused) => bail!("the room at {url} did not let you in: {refused}"),
    };
    // Joined: now leave the room joined before, if any (a typo in the
    // code must not cost the learner their place).
    if let Some(old) = Membership::load(&workbook.root) {
        let _ = room::blocking(Client::new(WAIT).leave(&old.seat));
    }
    let name = seat.name.clone();
    Membership { seat, labs: Default::default() }.save(&workbook.root)?;
    let (joined, name) = (paint(ui::PASS, "Joined"), paint(ui::STRONG, &name));
    anstream::println!("{joined} the room at {url} as {name}.\n");
    let what = "Whenever a lab's state changes (after `check`, in `watch`, and while \
                `cargo xtask book` serves the book), your tool sends the room your name \
                and, per lab: its state (not started, failing k of n, passing, passing with \
                edited tests), the names of the failing tests, how many hints you saw and \
                the minutes you spent on it. Never your code, file contents or paths.";
    anstream::print!("{}", ui::wrap(what, "", 78));
    match room::blocking(room::send(workbook, &Client::new(WAIT), &mut None)) {
        Ok(Some(labs)) => anstream::println!("\nThe room shows your {labs} labs now."),
        Ok(None) => {}
        Err(error) => anstream::println!(
            "\n{} could not send your labs yet ({error:#}); your tool tries again at the next check.",
            paint(ui::WARN, "!")
        ),
    }
    anstream::println!("{} stops sending.", command("cargo xtask leave"));
    Ok(ExitCode::SUCCESS)
}

pub fn leave(workbook: &Workbook) -> Result<ExitCode> {
    let Some(membership) = Membership::load(&workbook.root) else {
        anstream::println!("You are not in a room: nothing is sent.");
        return Ok(ExitCode::SUCCESS);
    };
    let told = room::blocking(Client::new(WAIT).leave(&membership.seat)).is_ok();
    let _ = std::fs::remove_file(workbook.root.join(room::FILE));
    let how = if told { "" } else { " (the room could not be reached; it keeps your last states)" };
    anstream::println!("Left the room at {}: nothing more is sent{how}.", membership.seat.url);
    Ok(ExitCode::SUCCESS)
}
