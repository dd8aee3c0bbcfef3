//! `cargo xtask dev console-check`: prove what each lab's `[console]` words say.
//!
//! A crate of its own, so that the console's gRPC client (console-api,
//! tonic) is compiled for maintainers and CI only: the xtask builds and runs
//! this binary, as it runs the classroom's.
//!
//! A lab's `lab.toml` tells the learner what tokio-console shows on the
//! starter and on the solution. `[console.check]` states the same as claims
//! about tasks: where they are spawned, how many are alive at once, how long
//! they live, how long their polls are. This verb runs each lab as
//! `cargo xtask console` does (its server with the console on, its own
//! traffic), connects to the server's console port as a console client (the
//! `console-api` crate's gRPC client: the wire protocol tokio-console
//! itself speaks), watches for a few seconds, and checks the claims: the
//! starter's, then the solution's.
//!
//! Every check also asserts what makes the console worth looking at at all:
//! it dropped no events, and it heard of every task within a couple of
//! seconds of its spawn. A server that floods the console's aggregator fails
//! exactly there (see lab-support's `console.rs`).
//!
//! Adding a lab needs no code here: the claims live in its `lab.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use console_api::field::{Name, Value};
use console_api::instrument::InstrumentRequest;
use console_api::instrument::instrument_client::InstrumentClient;
use serde::Deserialize;
use xtask::process;
use xtask::server::{Echo, LabExecutables, Ports, Variant};
use xtask::ui::{self, paint};
use xtask::workbook::{Lab, Workbook};

/// Check each lab's `[console.check]` claims with a real console client:
/// the starter's, then the solution's, while the lab's traffic runs.
///
/// Ends with the line `console-check: N passed, M failed`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask dev console-check", bin_name = "cargo xtask dev console-check")]
struct Args {
    /// The labs to check (slug or number); default: every lab with a
    /// `[console.check]`.
    pub labs: Vec<String>,
    /// Watch each lab this many seconds instead of its lab.toml's `seconds`.
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<u64>,
    /// Check only the starter, or only the solution.
    #[arg(long)]
    pub only: Option<Variant>,
    /// Also list what the console saw, per spawn location (to write claims).
    #[arg(long)]
    pub survey: bool,
}

/// `[console.check]`: what a console client must see while the lab's traffic
/// runs, on the starter and on the solution. Besides the claims, every check
/// asserts that the console dropped no events and heard of every task soon
/// after its spawn.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleCheck {
    /// How long to watch, in seconds (default 10).
    pub seconds: Option<u64>,
    /// The longest a task's spawn may take to reach the console (default 2000).
    pub reported_within_ms: Option<u64>,
    #[serde(default)]
    pub starter: Vec<TaskClaim>,
    #[serde(default)]
    pub solution: Vec<TaskClaim>,
}

/// A claim about the tasks spawned at one place (`[[console.check.starter]]`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskClaim {
    /// Where the tasks are spawned: `src/lib.rs` is a file of the lab (or of
    /// its solution); `axum/src/serve/mod.rs`, a file of a dependency.
    pub spawned_at: String,
    /// Their kind as the console shows it: `task` (`tokio::spawn`),
    /// `blocking` (`spawn_blocking`), `block_on`; default: any.
    pub kind: Option<String>,
    /// At some moment, at least this many of them alive at once.
    pub alive_at_least: Option<u64>,
    /// Never more than this many alive at once.
    pub alive_at_most: Option<u64>,
    /// At least this many spawned while watching.
    pub spawned_at_least: Option<u64>,
    /// At most this many spawned while watching.
    pub spawned_at_most: Option<u64>,
    /// None ends sooner than this after its spawn.
    pub lives_at_least_ms: Option<u64>,
    /// Each ends within this long of its spawn.
    pub lives_at_most_ms: Option<u64>,
    /// One of them at least lives this long (the opposite of the above).
    pub one_lives_at_least_ms: Option<u64>,
    /// The longest mean poll among them (busy time / polls) is at least this.
    pub poll_ms_at_least: Option<u64>,
    /// Every one's mean poll is at most this.
    pub poll_ms_at_most: Option<u64>,
}

/// How long a task's spawn may take to reach the console, unless the lab
/// says otherwise. The console publishes once a second.
const REPORTED_WITHIN: Duration = Duration::from_millis(2000);

/// How long to watch, unless the lab says otherwise.
const SECONDS: u64 = 10;

/// How long the server has to open its console port.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args = Args::parse();
    match Workbook::locate().and_then(|workbook| run(&workbook, args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    process::exit_on_signal();
    let started = Instant::now();
    let labs = workbook.labs_named(&args.labs, |lab| lab.console.check.is_some())?;
    let variants = match args.only {
        Some(variant) => vec![variant],
        None => vec![Variant::Lab, Variant::Solution],
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut passed, mut failed) = (0, Vec::new());
    for lab in &labs {
        let check: ConsoleCheck = match &lab.console.check {
            Some(check) => check.clone().try_into().with_context(|| {
                format!("{}'s lab.toml has a [console.check] that is not valid", lab.label())
            })?,
            None if args.survey => ConsoleCheck::default(),
            None => bail!("{} has no [console.check] in its lab.toml", lab.label()),
        };
        let check = &check;
        // Built first, one after the other (cargo holds a lock anyway); then
        // the starter and the solution are watched side by side, each on
        // ports of its own, which halves the time the check takes.
        let built: Vec<(Variant, Result<LabExecutables>)> = variants
            .iter()
            .map(|&variant| (variant, LabExecutables::build(workbook, lab, variant)))
            .collect();
        let checks = built.into_iter().map(|(variant, built)| async move {
            let seen = match built {
                Ok(built) => check_one(workbook, lab, variant, &built, check, args.seconds).await,
                Err(error) => Err(error),
            };
            (variant, seen)
        });
        let mut checks = checks.into_iter();
        let (first, second) = (checks.next(), checks.next());
        let both = runtime.block_on(async { tokio::join!(maybe(first), maybe(second)) });
        for (variant, seen) in [both.0, both.1].into_iter().flatten() {
            let name = format!("{} ({})", lab.label(), variant.name());
            match seen {
                Ok(seen) => {
                    if args.survey {
                        println!("{name}, every spawn location:\n{}", seen.survey);
                    }
                    anstream::println!("{} {name}: {}", paint(ui::PASS, "ok"), seen.summary);
                    passed += 1;
                }
                Err(error) => {
                    anstream::println!("{} {name}: {error:#}", paint(ui::FAIL, "FAILED"));
                    failed.push(name);
                }
            }
        }
    }
    Ok(ui::summary("console-check", passed, &failed, started))
}

/// Awaits `future`, if there is one.
async fn maybe<F: Future>(future: Option<F>) -> Option<F::Output> {
    match future {
        Some(future) => Some(future.await),
        None => None,
    }
}

/// What a passing check saw, in one line.
struct Seen {
    summary: String,
    /// What the console saw, per spawn location.
    survey: String,
}

/// Runs one lab's `variant` under its traffic, watches it as a console
/// client, and checks its claims.
async fn check_one(
    workbook: &Workbook,
    lab: &Lab,
    variant: Variant,
    built: &LabExecutables,
    check: &ConsoleCheck,
    seconds: Option<u64>,
) -> Result<Seen> {
    let server = built.start_server(lab, Ports::any_free()?, Echo::Hidden)?;
    // Connect first, so that every task of the traffic is seen from its spawn.
    let mut updates = connect(server.console).await?;
    let traffic = built.start_traffic(server.addr, Echo::Hidden)?;
    let watch = Duration::from_secs(seconds.or(check.seconds).unwrap_or(SECONDS));
    let watched = watch_tasks(&mut updates, watch).await;
    let last = traffic.map(|traffic| traffic.last_reported(3)).unwrap_or_default();
    server.stop();
    let watched = watched?;

    let (crate_dir, claims) = match variant {
        Variant::Lab => (workbook.relative(&lab.dir), &check.starter),
        Variant::Solution => (workbook.relative(&lab.solution_dir()), &check.solution),
    };
    let reported_within =
        check.reported_within_ms.map(Duration::from_millis).unwrap_or(REPORTED_WITHIN);
    let survey = survey(&watched);
    let mut broken = watched.health(reported_within);
    let mut summaries = vec![watched.health_summary()];
    for claim in claims {
        let place = Place::new(&claim.spawned_at, &crate_dir);
        let tasks: Vec<&Task> =
            watched.tasks.values().filter(|task| task.matches(&place, claim)).collect();
        let (summary, wrong) = judge(claim, &tasks, &watched);
        summaries.push(format!("{}: {summary}", claim.spawned_at));
        broken.extend(wrong.into_iter().map(|w| format!("tasks spawned at {place}: {w}")));
    }
    if broken.is_empty() {
        return Ok(Seen { summary: summaries.join("; "), survey });
    }
    let mut message = format!(
        "tokio-console did not show what lab.toml's [console.check] claims:\n  {}\n  seen: {}",
        broken.join("\n  "),
        summaries.join("; ")
    );
    for line in &last {
        message.push_str(&format!("\n  traffic | {line}"));
    }
    bail!(message)
}

/// The stream of updates from a lab's console port, as tokio-console opens it.
type Updates = tonic::codec::Streaming<console_api::instrument::Update>;

async fn connect(console: SocketAddr) -> Result<Updates> {
    let started = Instant::now();
    loop {
        match InstrumentClient::connect(format!("http://{console}")).await {
            Ok(mut client) => {
                let stream = client
                    .watch_updates(InstrumentRequest {})
                    .await
                    .context("asking the console port for updates")?;
                return Ok(stream.into_inner());
            }
            Err(_) if started.elapsed() < CONNECT_LIMIT => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("connecting to the console at {console}"));
            }
        }
    }
}

/// One task as the console reported it.
#[derive(Debug, Default)]
struct Task {
    /// The file of its spawn location, with `/` separators.
    file: String,
    /// Its `kind` field: `task`, `blocking`, `block_on` or `local`.
    kind: String,
    created: Option<Duration>,
    dropped: Option<Duration>,
    /// When the console first reported it (the update's own clock).
    first_reported: Duration,
    busy: Duration,
    polls: u64,
}

impl Task {
    fn matches(&self, place: &Place, claim: &TaskClaim) -> bool {
        claim.kind.as_ref().is_none_or(|kind| *kind == self.kind) && place.contains(&self.file)
    }

    /// How long it lived, or has lived until `now`.
    fn life(&self, now: Duration) -> Option<Duration> {
        Some(self.dropped.unwrap_or(now).saturating_sub(self.created?))
    }

    /// Busy time per poll.
    fn mean_poll(&self) -> Duration {
        self.busy / u32::try_from(self.polls.max(1)).unwrap_or(u32::MAX)
    }
}

/// Everything a watch saw.
#[derive(Debug, Default)]
struct Watched {
    tasks: BTreeMap<u64, Task>,
    /// When the watch began and ended (the console's clock).
    began: Duration,
    ended: Duration,
    /// Events the console dropped: tasks, resources.
    dropped: (u64, u64),
    updates: u32,
    /// The ids of the tasks the console showed alive, at each update.
    alive_samples: Vec<Vec<u64>>,
}

impl Watched {
    /// The checks every lab must pass: nothing dropped, every spawn reported
    /// in time.
    fn health(&self, reported_within: Duration) -> Vec<String> {
        let mut broken = Vec::new();
        if self.updates < 2 {
            broken
                .push(format!("the console sent {} updates; expected one a second", self.updates));
        }
        if self.dropped != (0, 0) {
            broken.push(format!(
                "the console dropped events ({} tasks, {} resources, as its header's \
                 `dropped:` shows); expected none",
                self.dropped.0, self.dropped.1
            ));
        }
        let late = self.late(reported_within);
        if !late.is_empty() {
            let worst = late.iter().map(|(_, delay)| *delay).max().unwrap_or_default();
            let (file, _) = late[0];
            broken.push(format!(
                "{} tasks reached the console later than {} ms after their spawn (the worst \
                 after {} ms, e.g. one spawned at {file}); expected every one within it",
                late.len(),
                reported_within.as_millis(),
                worst.as_millis()
            ));
        }
        broken
    }

    /// Tasks spawned while watching that were reported late, with the delay.
    fn late(&self, limit: Duration) -> Vec<(&str, Duration)> {
        self.spawned_while_watching()
            .filter_map(|task| {
                let delay = task.first_reported.saturating_sub(task.created?);
                (delay > limit).then_some((task.file.as_str(), delay))
            })
            .collect()
    }

    fn spawned_while_watching(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values().filter(|task| task.created.is_some_and(|c| c >= self.began))
    }

    fn health_summary(&self) -> String {
        let delays: Vec<Duration> = self
            .spawned_while_watching()
            .filter_map(|task| Some(task.first_reported.saturating_sub(task.created?)))
            .collect();
        let worst = delays.iter().max().copied().unwrap_or_default();
        format!(
            "{} updates, {} tasks spawned, each reported within {} ms, dropped {}+{}",
            self.updates,
            delays.len(),
            worst.as_millis(),
            self.dropped.0,
            self.dropped.1
        )
    }
}

/// Watches the updates for `window`, keeping every task's story.
async fn watch_tasks(updates: &mut Updates, window: Duration) -> Result<Watched> {
    let mut watched = Watched::default();
    // Metadata id -> the names of its fields (a task's fields may name
    // theirs by index).
    let mut field_names: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + window;
    loop {
        let next = tokio::time::timeout_at(deadline, updates.message()).await;
        let update = match next {
            Err(_elapsed) => break,
            Ok(Ok(Some(update))) => update,
            Ok(Ok(None)) => bail!("the console closed its stream of updates"),
            Ok(Err(status)) => bail!("the console's stream of updates failed: {status}"),
        };
        let now = update.now.map(|t| since_epoch(t.seconds, t.nanos.into())).unwrap_or_default();
        if watched.updates == 0 {
            watched.began = now;
        }
        watched.updates += 1;
        watched.ended = now;
        for new in update.new_metadata.map(|m| m.metadata).unwrap_or_default() {
            if let (Some(id), Some(meta)) = (new.id, new.metadata) {
                field_names.insert(id.id, meta.field_names);
            }
        }
        if let Some(tasks) = update.task_update {
            watched.dropped.0 += tasks.dropped_events;
            for new in tasks.new_tasks {
                let Some(id) = new.id.as_ref().map(|id| id.id) else { continue };
                let file = new.location.as_ref().and_then(|l| l.file.clone()).unwrap_or_default();
                let task = watched.tasks.entry(id).or_default();
                task.file = file.replace('\\', "/");
                task.kind = new
                    .fields
                    .iter()
                    .find(|field| {
                        let name = match &field.name {
                            Some(Name::StrName(name)) => Some(name.as_str()),
                            Some(Name::NameIdx(index)) => field
                                .metadata_id
                                .and_then(|meta| field_names.get(&meta.id))
                                .and_then(|names| names.get(usize::try_from(*index).ok()?))
                                .map(String::as_str),
                            None => None,
                        };
                        name == Some("kind")
                    })
                    .and_then(|field| match &field.value {
                        Some(Value::StrVal(kind) | Value::DebugVal(kind)) => Some(kind.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                task.first_reported = now;
            }
            for (id, stats) in tasks.stats_update {
                let task = watched.tasks.entry(id).or_default();
                let created = stats.created_at.map(|t| since_epoch(t.seconds, t.nanos.into()));
                let dropped = stats.dropped_at.map(|t| since_epoch(t.seconds, t.nanos.into()));
                task.created = created.or(task.created);
                task.dropped = dropped.or(task.dropped);
                if let Some(poll) = stats.poll_stats {
                    task.polls = poll.polls;
                    if let Some(busy) = poll.busy_time {
                        task.busy = since_epoch(busy.seconds, busy.nanos.into());
                    }
                }
            }
        }
        if let Some(resources) = update.resource_update {
            watched.dropped.1 += resources.dropped_events;
        }
        // Which tasks the console showed alive at this moment.
        let alive = watched
            .tasks
            .iter()
            .filter(|(_, task)| task.created.is_some() && task.dropped.is_none())
            .map(|(id, _)| *id)
            .collect();
        watched.alive_samples.push(alive);
    }
    Ok(watched)
}

/// A time since the epoch (or a duration) from protobuf's seconds and nanos.
fn since_epoch(seconds: i64, nanos: i64) -> Duration {
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
        + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// Where a claim's tasks are spawned.
struct Place {
    /// A file of the lab (or solution) crate, relative to the workbook.
    own: Option<String>,
    /// A file of a dependency: its crate name and its path in the crate.
    dependency: Option<(String, String)>,
}

impl Place {
    fn new(spawned_at: &str, crate_dir: &str) -> Place {
        if spawned_at.starts_with("src/") {
            let dir = crate_dir.replace('\\', "/");
            Place { own: Some(format!("{dir}/{spawned_at}")), dependency: None }
        } else {
            let (name, path) = spawned_at.split_once('/').unwrap_or((spawned_at, ""));
            Place { own: None, dependency: Some((name.to_owned(), path.to_owned())) }
        }
    }

    /// Whether `file` (a spawn location as the console reports it) is here.
    fn contains(&self, file: &str) -> bool {
        if let Some(own) = &self.own {
            return file == own || file.ends_with(&format!("/{own}"));
        }
        let Some((name, path)) = &self.dependency else { return false };
        // `.../registry/src/<index>/axum-0.8.9/src/serve/mod.rs`
        let Some(before) = file.strip_suffix(path.as_str()).and_then(|f| f.strip_suffix('/'))
        else {
            return false;
        };
        let folder = before.rsplit('/').next().unwrap_or(before);
        folder
            .strip_prefix(name.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.own, &self.dependency) {
            (Some(own), _) => write!(f, "{own}"),
            (None, Some((name, path))) => write!(f, "{name}'s {path}"),
            (None, None) => write!(f, "?"),
        }
    }
}

/// Checks one claim against the tasks it is about: a summary of what was
/// seen, and each broken part of the claim.
fn judge(claim: &TaskClaim, tasks: &[&Task], watched: &Watched) -> (String, Vec<String>) {
    let ms = |d: Duration| d.as_millis();
    let ids: Vec<u64> = watched
        .tasks
        .iter()
        .filter(|(_, task)| tasks.iter().any(|t| std::ptr::eq(*t, *task)))
        .map(|(id, _)| *id)
        .collect();
    // As the console showed them: alive at one of its updates.
    let shown_alive = watched
        .alive_samples
        .iter()
        .map(|alive| alive.iter().filter(|id| ids.contains(id)).count() as u64)
        .max()
        .unwrap_or(0);
    // From their spawn and end times: the most alive at any instant.
    let most_alive = most_at_once(tasks, watched.ended);
    let spawned = tasks.iter().filter(|t| t.created.is_some_and(|c| c >= watched.began)).count();
    let ended: Vec<Duration> = tasks
        .iter()
        .filter(|t| t.dropped.is_some())
        .filter_map(|t| t.life(watched.ended))
        .collect();
    let longest_poll = tasks.iter().map(|t| t.mean_poll()).max().unwrap_or_default();
    let summary = format!(
        "{shown_alive} alive at once ({most_alive} counted from spawn and end), {spawned} \
         spawned, {} ended (lived {}..{} ms), longest mean poll {} ms",
        ended.len(),
        ended.iter().min().map_or(0, |d| ms(*d)),
        ended.iter().max().map_or(0, |d| ms(*d)),
        ms(longest_poll)
    );

    let mut broken = Vec::new();
    if let Some(least) = claim.alive_at_least
        && shown_alive < least
    {
        broken.push(format!("at most {shown_alive} alive at once; claimed at least {least}"));
    }
    if let Some(most) = claim.alive_at_most
        && most_alive > most
    {
        broken.push(format!("{most_alive} alive at once; claimed at most {most}"));
    }
    if let Some(least) = claim.spawned_at_least
        && (spawned as u64) < least
    {
        broken.push(format!("{spawned} spawned while watching; claimed at least {least}"));
    }
    if let Some(most) = claim.spawned_at_most
        && (spawned as u64) > most
    {
        broken.push(format!("{spawned} spawned while watching; claimed at most {most}"));
    }
    if let Some(least) = claim.lives_at_least_ms {
        let early = ended.iter().filter(|life| ms(**life) < u128::from(least)).count();
        if early > 0 {
            broken.push(format!("{early} ended sooner than {least} ms after their spawn"));
        }
    }
    if let Some(most) = claim.lives_at_most_ms {
        let limit = Duration::from_millis(most);
        // Tasks old enough to have ended by the last update, with a second
        // for the console to say so.
        let overdue = tasks
            .iter()
            .filter(|t| {
                t.created.is_some_and(|c| c + limit + Duration::from_secs(1) <= watched.ended)
                    && t.life(watched.ended).is_some_and(|life| life > limit)
            })
            .count();
        if overdue > 0 {
            broken.push(format!("{overdue} lived longer than {most} ms; claimed none does"));
        }
    }
    if let Some(least) = claim.one_lives_at_least_ms {
        let longest = tasks.iter().filter_map(|t| t.life(watched.ended)).max().unwrap_or_default();
        if ms(longest) < u128::from(least) {
            broken.push(format!(
                "the longest-lived lived {} ms; claimed one lives at least {least} ms",
                ms(longest)
            ));
        }
    }
    if let Some(least) = claim.poll_ms_at_least
        && ms(longest_poll) < u128::from(least)
    {
        broken.push(format!(
            "their longest mean poll was {} ms; claimed at least {least} ms",
            ms(longest_poll)
        ));
    }
    if let Some(most) = claim.poll_ms_at_most
        && ms(longest_poll) > u128::from(most)
    {
        broken.push(format!(
            "one's mean poll was {} ms; claimed at most {most} ms",
            ms(longest_poll)
        ));
    }
    (summary, broken)
}

/// What the console saw, one line per spawn location and kind.
fn survey(watched: &Watched) -> String {
    let mut places: BTreeMap<(String, String), Vec<&Task>> = BTreeMap::new();
    for task in watched.tasks.values() {
        places.entry((task.file.clone(), task.kind.clone())).or_default().push(task);
    }
    let mut lines = String::new();
    for ((file, kind), tasks) in places {
        let (summary, _) = judge(&TaskClaim::default(), &tasks, watched);
        lines.push_str(&format!("  {file} ({kind}): {summary}\n"));
    }
    lines
}

/// The most of `tasks` alive at one instant, from their spawn and end times.
fn most_at_once(tasks: &[&Task], now: Duration) -> u64 {
    let mut edges: Vec<(Duration, i64)> = Vec::new();
    for task in tasks {
        if let Some(created) = task.created {
            edges.push((created, 1));
            edges.push((task.dropped.unwrap_or(now), -1));
        }
    }
    // Ends before starts at the same instant.
    edges.sort();
    let (mut alive, mut most) = (0i64, 0i64);
    for (_, change) in edges {
        alive += change;
        most = most.max(alive);
    }
    u64::try_from(most).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_match_own_files_and_dependency_files() {
        let own = Place::new("src/lib.rs", "labs/05-cancellation");
        assert!(own.contains("labs/05-cancellation/src/lib.rs"));
        assert!(!own.contains("solutions/05-cancellation/src/lib.rs"));
        let axum = Place::new("axum/src/serve/mod.rs", "labs/01-blocking");
        assert!(axum.contains("/home/me/.cargo/registry/src/index/axum-0.8.9/src/serve/mod.rs"));
        assert!(!axum.contains("/registry/src/index/axum-core-0.5.0/src/serve/mod.rs"));
        assert!(!axum.contains("labs/01-blocking/src/lib.rs"));
    }

    #[test]
    fn the_most_alive_at_once_counts_overlaps() {
        let task = |from: u64, to: Option<u64>| Task {
            created: Some(Duration::from_secs(from)),
            dropped: to.map(Duration::from_secs),
            ..Task::default()
        };
        let tasks = [task(0, Some(2)), task(1, Some(3)), task(2, None), task(5, Some(6))];
        let refs: Vec<&Task> = tasks.iter().collect();
        assert_eq!(most_at_once(&refs, Duration::from_secs(10)), 2);
    }
}
