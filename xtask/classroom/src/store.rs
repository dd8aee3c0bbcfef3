//! The room on disk: one SQLite file (the library is compiled in, so nothing
//! is installed), written through on every change, read back on start.
//!
//! The journal is a write-ahead log with `synchronous = NORMAL`: every
//! committed change survives the process being killed (`kill -9`, a laptop
//! that sleeps and never wakes the server); only a power cut may lose the
//! last moments. The room's join code and dashboard key are stored too, so a
//! restarted server is the same room: the learners' tokens still work and
//! the join line on the board is still right.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::room::{Lab, Learner};
use crate::wire::{LabReport, LabState};

/// An open room file.
pub struct Store {
    db: Connection,
}

/// What identifies a room: the code learners type, the instructor's key.
#[derive(Debug, Clone)]
pub struct Keys {
    pub code: String,
    pub key: String,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS room (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS learners (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        joined INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        updates INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS labs (
        learner INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
        slug TEXT NOT NULL,
        number INTEGER NOT NULL,
        state TEXT NOT NULL,
        failed INTEGER NOT NULL,
        tests INTEGER NOT NULL,
        failing_tests TEXT NOT NULL,
        hints INTEGER NOT NULL,
        minutes INTEGER NOT NULL,
        stuck_on TEXT,
        stuck_since INTEGER NOT NULL,
        PRIMARY KEY (learner, slug)
    );
";

impl Store {
    /// Opens (or creates) the room file at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let db = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.execute_batch(SCHEMA).context("creating the room's tables")?;
        Ok(Store { db })
    }

    /// The room's code and key, made with `new` the first time (or when
    /// `fresh`, which also empties the room).
    pub fn keys(&mut self, fresh: bool, new: impl FnOnce() -> Keys) -> Result<Keys> {
        let get = |db: &Connection, name: &str| {
            db.query_row("SELECT value FROM room WHERE name = ?1", [name], |row| row.get(0))
                .optional()
        };
        if !fresh && let (Some(code), Some(key)) = (get(&self.db, "code")?, get(&self.db, "key")?) {
            return Ok(Keys { code, key });
        }
        let keys = new();
        let tx = self.db.transaction()?;
        tx.execute("DELETE FROM labs", [])?;
        tx.execute("DELETE FROM learners", [])?;
        for (name, value) in [("code", &keys.code), ("key", &keys.key)] {
            tx.execute("INSERT OR REPLACE INTO room (name, value) VALUES (?1, ?2)", [name, value])?;
        }
        tx.commit()?;
        Ok(keys)
    }

    /// Every learner, with their labs.
    pub fn learners(&self) -> Result<Vec<Learner>> {
        let mut learners: BTreeMap<i64, Learner> = BTreeMap::new();
        let mut query =
            self.db.prepare("SELECT id, name, token, joined, updated, updates FROM learners")?;
        let rows = query.query_map([], |row| {
            Ok(Learner {
                id: row.get(0)?,
                name: row.get(1)?,
                token: row.get(2)?,
                joined: row.get(3)?,
                updated: row.get(4)?,
                updates: row.get::<_, i64>(5)? as u64,
                labs: BTreeMap::new(),
            })
        })?;
        for learner in rows {
            let learner = learner?;
            learners.insert(learner.id, learner);
        }
        let mut query = self.db.prepare(
            "SELECT learner, slug, number, state, failed, tests, failing_tests, hints, minutes, \
             stuck_on, stuck_since FROM labs",
        )?;
        let rows = query.query_map([], |row| {
            let state: String = row.get(3)?;
            let failing: String = row.get(6)?;
            let report = LabReport {
                slug: row.get(1)?,
                number: row.get(2)?,
                // Written by [`Store::save_labs`] from a checked state.
                state: serde_json::from_value(serde_json::Value::String(state))
                    .unwrap_or(LabState::Started),
                failed: row.get(4)?,
                tests: row.get(5)?,
                failing_tests: failing.lines().map(str::to_owned).collect(),
                hints: row.get(7)?,
                minutes: row.get(8)?,
            };
            let lab = Lab { report, stuck_on: row.get(9)?, stuck_since: row.get(10)? };
            Ok((row.get::<_, i64>(0)?, lab))
        })?;
        for row in rows {
            let (id, lab) = row?;
            if let Some(learner) = learners.get_mut(&id) {
                learner.labs.insert(lab.report.slug.clone(), lab);
            }
        }
        Ok(learners.into_values().collect())
    }

    /// Adds a learner; returns their id.
    pub fn add_learner(&mut self, name: &str, token: &str, now: i64) -> Result<i64> {
        self.db.execute(
            "INSERT INTO learners (name, token, joined, updated) VALUES (?1, ?2, ?3, ?3)",
            params![name, token, now],
        )?;
        Ok(self.db.last_insert_rowid())
    }

    /// Replaces a learner's labs, in one transaction.
    pub fn save_labs(&mut self, id: i64, labs: &BTreeMap<String, Lab>, now: i64) -> Result<()> {
        let tx = self.db.transaction()?;
        tx.execute("DELETE FROM labs WHERE learner = ?1", [id])?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO labs (learner, slug, number, state, failed, tests, failing_tests, \
                 hints, minutes, stuck_on, stuck_since) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for lab in labs.values() {
                let r = &lab.report;
                let state = serde_json::to_value(r.state)?;
                insert.execute(params![
                    id,
                    r.slug,
                    r.number,
                    state.as_str(),
                    r.failed,
                    r.tests,
                    r.failing_tests.join("\n"),
                    r.hints,
                    r.minutes,
                    lab.stuck_on,
                    lab.stuck_since
                ])?;
            }
        }
        tx.execute(
            "UPDATE learners SET updated = ?2, updates = updates + 1 WHERE id = ?1",
            params![id, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a learner and their labs.
    pub fn remove_learner(&mut self, id: i64) -> Result<()> {
        self.db.execute("DELETE FROM learners WHERE id = ?1", [id])?;
        Ok(())
    }
}
