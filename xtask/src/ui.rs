//! Terminal output: [`anstream`]'s `println!` drops the colours off a
//! terminal (and honours `NO_COLOR`); the styles say what a piece of text
//! *is*, not how it looks.

use std::fmt::Display;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use anstyle::{AnsiColor, Style};

/// A passing check, a done lab.
pub const PASS: Style = AnsiColor::Green.on_default().effects(anstyle::Effects::BOLD);
/// A failing check.
pub const FAIL: Style = AnsiColor::Red.on_default().effects(anstyle::Effects::BOLD);
/// Something to be careful about: a spoiler, a missing tool.
pub const WARN: Style = AnsiColor::Yellow.on_default().effects(anstyle::Effects::BOLD);
/// A command the learner can type.
pub const COMMAND: Style = AnsiColor::Cyan.on_default();
/// Titles and the important word of a sentence.
pub const STRONG: Style = Style::new().effects(anstyle::Effects::BOLD);
/// Less important text: things already seen, not started yet.
pub const DIM: Style = Style::new().effects(anstyle::Effects::DIMMED);

/// `text` wrapped in `style`'s codes (dropped later if not on a terminal).
pub fn paint(style: Style, text: impl Display) -> String {
    format!("{style}{text}{style:#}")
}

/// A command to type, e.g. `cargo xtask watch hello`.
pub fn command(text: impl Display) -> String {
    paint(COMMAND, text)
}

/// `text` wrapped at `width` columns, each line starting with `indent`.
pub fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in unbreakable_words(paragraph) {
            if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            line = if line.is_empty() { word } else { format!("{line} {word}") };
        }
        lines.push(line);
    }
    lines.iter().map(|line| format!("{indent}{line}").trim_end().to_owned() + "\n").collect()
}

/// The words of `text`, a `code span` counting as one word: a command in a
/// hint must stay on one line to be copied and pasted.
fn unbreakable_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut in_code = false;
    for word in text.split_whitespace() {
        match words.last_mut() {
            Some(last) if in_code => last.extend([" ", word]),
            _ => words.push(word.to_owned()),
        }
        in_code ^= word.matches('`').count() % 2 == 1;
    }
    words
}

pub fn note(text: impl Display) {
    anstream::println!("{}", paint(DIM, text));
}

/// `[#####.....]`: `done` of `total`, `width` characters wide.
pub fn progress_bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0);
    format!("[{}{}]", paint(PASS, "#".repeat(filled)), paint(DIM, ".".repeat(width - filled)))
}

pub fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|line| format!("{prefix}{line}")).collect::<Vec<_>>().join("\n")
}

/// Asks a yes/no question on the terminal; anything but "y"/"yes" is no.
/// Without a terminal the answer is read from stdin all the same (so a
/// script can pipe `y`), and an empty stdin means no.
pub fn confirm(question: &str) -> bool {
    anstream::eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer);
    if !std::io::stdin().is_terminal() {
        // Echo the piped answer, so the transcript reads naturally.
        anstream::eprintln!("{}", answer.trim());
    }
    read.is_ok_and(|n| n > 0) && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// The last lines of a run of many checks (`verify`, `console-check`): the
/// failed ones, the time taken, and `<name>: N passed, M failed`.
pub fn summary(name: &str, passed: usize, failed: &[String], started: Instant) -> ExitCode {
    if !failed.is_empty() {
        println!("\nFailed:\n  {}", failed.join("\n  "));
    }
    println!("(took {:.0} s)", started.elapsed().as_secs_f64());
    println!("{name}: {passed} passed, {} failed", failed.len());
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
