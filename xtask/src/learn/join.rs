//! `cargo xtask join <url> --code … --name …` and `cargo xtask leave`: join
//! the instructor's workshop room, so that the dashboard shows where your
//! labs stand, and leave it. What is sent, and when, is in
//! [`crate::room`].

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::room::{self, Membership, Sent};
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

/// Leave the workshop room: your tool stops sending your labs' states.
#[derive(Debug, clap::Args)]
pub struct LeaveArgs {}

/// How long `join` and `leave` wait for the room.
const WAIT: Duration = Duration::from_secs(5);

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let url = args.url.trim().trim_end_matches('/').to_owned();
    if !url.starts_with("http://") {
        bail!("the room's address starts with http:// (as `cargo xtask classroom` prints it)");
    }
    let http = room::client(WAIT);
    let joined = match room::blocking(room::join(&http, &url, &args.code, &args.name)) {
        Ok(joined) => joined,
        Err(error) if error.is::<reqwest::Error>() => bail!(
            "could not reach the room at {url} ({error:#}): is the instructor's room open, \
             and is this the address its screen shows?"
        ),
        Err(refused) => bail!("the room at {url} did not let you in: {refused:#}"),
    };
    // Joined: now leave the room joined before, if any (a typo in the
    // code must not cost the learner their place).
    if let Some(old) = Membership::load(&workbook.root) {
        leave_room(&old);
    }
    let membership = Membership {
        url: url.clone(),
        code: args.code,
        name: args.name.trim().to_owned(),
        learner: joined.learner,
        token: joined.token,
        labs: Default::default(),
    };
    membership.save(&workbook.root)?;
    anstream::println!(
        "{} the room at {url} as {}.\n",
        paint(ui::PASS, "Joined"),
        paint(ui::STRONG, &membership.name)
    );
    let what = "Whenever a lab's state changes (after `check`, in `watch`, and while \
                `cargo xtask book` serves the book), your tool sends the room your name \
                and, per lab: its state (not started, failing k of n, passing, passing with \
                edited tests), the names of the failing tests, how many hints you saw and \
                the minutes you spent on it. Never your code, file contents or paths.";
    anstream::print!("{}", ui::wrap(what, "", 78));
    match room::blocking(room::send(workbook, &room::client(WAIT), &mut None)) {
        Ok(Sent::Sent(labs)) => anstream::println!("\nThe room shows your {labs} labs now."),
        Ok(_) => {}
        Err(error) => anstream::println!(
            "\n{} could not send your labs yet ({error:#}); your tool tries again at the next check.",
            paint(ui::WARN, "!")
        ),
    }
    anstream::println!("{} stops sending.", command("cargo xtask leave"));
    Ok(ExitCode::SUCCESS)
}

pub fn leave(workbook: &Workbook, _args: LeaveArgs) -> Result<ExitCode> {
    let Some(membership) = Membership::load(&workbook.root) else {
        anstream::println!("You are not in a room: nothing is sent.");
        return Ok(ExitCode::SUCCESS);
    };
    let told = leave_room(&membership);
    Membership::remove(&workbook.root);
    let how = if told { "" } else { " (the room could not be reached; it keeps your last states)" };
    anstream::println!("Left the room at {}: nothing more is sent{how}.", membership.url);
    Ok(ExitCode::SUCCESS)
}

/// Asks the room to remove this learner; whether it did.
fn leave_room(membership: &Membership) -> bool {
    let http = room::client(WAIT);
    let url = format!("{}/api/learners/{}", membership.url, membership.learner);
    room::blocking(async {
        let answer = http.delete(url).bearer_auth(&membership.token).send().await;
        answer.is_ok_and(|answer| answer.status().is_success())
    })
}
