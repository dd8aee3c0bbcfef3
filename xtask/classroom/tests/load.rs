//! A full room: many learners sending at once lose no update.
//!
//! The room a workshop needs is 100 learners whose tools send every 2 s for
//! 5 minutes: 15,000 updates. That takes 5 minutes, too long for every test
//! run, so by default 100 learners send every 50 ms for 8 s (40 times the
//! rate): 16,000 updates, more than the full run's, in about 10 s on a busy
//! 2-core machine. The full-length run is:
//!
//! ```console
//! CLASSROOM_LOAD_PERIOD_MS=2000 CLASSROOM_LOAD_SECONDS=300 cargo test -p classroom --test load
//! ```
//!
//! (`CLASSROOM_LOAD_LEARNERS` changes the number of learners.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// Every learner sends `rounds` updates, each with a different `minutes`;
/// every one must be answered 204, counted, and the last one must be what
/// the room holds. A dashboard follows the whole run and must show the
/// final state within a second of the last answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_learners_sending_at_once_lose_no_update() {
    let learners = setting("CLASSROOM_LOAD_LEARNERS", 100);
    let period = Duration::from_millis(setting("CLASSROOM_LOAD_PERIOD_MS", 50));
    let seconds = setting("CLASSROOM_LOAD_SECONDS", 8);
    let rounds = (Duration::from_secs(seconds).as_millis() / period.as_millis()) as u32;
    // The per-learner limit stays in force, above what the test sends.
    let per_second = ((4000 / period.as_millis()) as u32).max(2);
    let limit = Duration::from_secs(seconds * 3 + 60);
    within(limit, "every learner's updates", async {
        let (room, _dir) = open_room(|config| {
            config.max_learners = learners as usize;
            // All join at once here; a real room joins over a minute.
            config.joins_per_second = (learners as u32).max(1).try_into().unwrap();
            config.updates_per_second = per_second.try_into().unwrap();
            config.update_burst = 20.try_into().unwrap();
        })
        .await;
        let room = Arc::new(room);
        let client = client();
        let mut events = Events::open(&room.dashboard_url()).await;
        events.next().await.unwrap();

        let mut seated = Vec::new();
        for n in 0..learners {
            seated.push(joined(&client, &room, &format!("Learner {n}")).await);
        }
        let answered = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let senders: Vec<_> = seated
            .iter()
            .cloned()
            .map(|mut learner| {
                let (client, answered) = (client.clone(), answered.clone());
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut refused = Vec::new();
                    for round in 1..=rounds {
                        ticks.tick().await;
                        let update = failing("blocking", "stays_fast", round);
                        match client.send(&mut learner, &update).await {
                            Ok(()) => _ = answered.fetch_add(1, Ordering::Relaxed),
                            Err(error) => refused.push((round, error.to_string())),
                        }
                    }
                    refused
                })
            })
            .collect();
        let mut refused = Vec::new();
        for sender in senders {
            refused.extend(sender.await.unwrap());
        }
        let sent_in = started.elapsed();
        let last_answer = Instant::now();
        let expected = learners * u64::from(rounds);
        assert!(
            refused.is_empty(),
            "refused updates (round, why): {:?}",
            &refused[..refused.len().min(10)]
        );
        assert_eq!(answered.load(Ordering::Relaxed), expected);

        let complete = |view: &Value| {
            view["learners"].as_array().unwrap().iter().all(|row| {
                row["updates"] == u64::from(rounds)
                    && row["labs"]["blocking"]["minutes"] == u64::from(rounds)
            })
        };
        let shown = events.until(complete).await;
        let shown_after = last_answer.elapsed();
        assert_eq!(shown["learners"].as_array().unwrap().len() as u64, learners);
        assert!(
            shown_after < Duration::from_secs(1),
            "the dashboard showed the last updates {shown_after:?} after they were answered"
        );
        let stored = view(&room.dashboard_url()).await;
        assert!(complete(&stored), "the room's data lacks updates");
        eprintln!(
            "{learners} learners × {rounds} updates = {expected} updates in {:.1} s \
             (every {period:?}), none lost; the dashboard was current {shown_after:?} later",
            sent_in.as_secs_f64()
        );
    })
    .await;
}
