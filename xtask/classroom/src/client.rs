//! The learner's side of the room's API: join, send every lab's state,
//! leave. The xtask (`join`, `leave`, its background sends) and the room's
//! own tests speak it through this one client.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::wire::{JoinRequest, Joined, Update};

/// A learner in a room: where, as whom, and the token that writes their row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// `http://<address>:<port>`, without a trailing slash.
    pub url: String,
    pub code: String,
    pub name: String,
    pub learner: i64,
    pub token: String,
}

/// Why a call failed.
#[derive(Debug)]
pub enum Error {
    Unreachable(reqwest::Error),
    /// The room's status, and why (its `{"error": "..."}`).
    Refused(StatusCode, String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unreachable(_) => write!(f, "the room could not be reached"),
            Error::Refused(status, why) => write!(f, "{why} ({status})"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Unreachable(error) => Some(error),
            Error::Refused(..) => None,
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(error: reqwest::Error) -> Error {
        Error::Unreachable(error)
    }
}

/// An HTTP client for the room.
#[derive(Debug, Clone)]
pub struct Client(reqwest::Client);

impl Client {
    /// Every request, connecting included, within `timeout`; no proxy (the
    /// room is on the local network).
    pub fn new(timeout: Duration) -> Client {
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout);
        Client(http.no_proxy().build().expect("an HTTP client without TLS builds"))
    }

    /// `POST /api/join`.
    pub async fn join(&self, url: &str, code: &str, name: &str) -> Result<Seat, Error> {
        let (code, name) = (code.to_owned(), name.trim().to_owned());
        let request = JoinRequest { code: code.clone(), name: name.clone() };
        let answer = self.0.post(format!("{url}/api/join")).json(&request).send().await?;
        let Joined { learner, token } = checked(answer).await?.json().await?;
        Ok(Seat { url: url.to_owned(), code, name, learner, token })
    }

    /// `PUT /api/learners/<id>`: every lab's state. A room that forgot this
    /// learner (started afresh) is joined again with the same code and
    /// name, which changes `seat`.
    pub async fn send(&self, seat: &mut Seat, update: &Update) -> Result<(), Error> {
        let put = |seat: &Seat| {
            let url = format!("{}/api/learners/{}", seat.url, seat.learner);
            self.0.put(url).bearer_auth(&seat.token).json(update).send()
        };
        let mut answer = put(seat).await?;
        if answer.status() == StatusCode::NOT_FOUND {
            *seat = self.join(&seat.url, &seat.code, &seat.name).await?;
            answer = put(seat).await?;
        }
        checked(answer).await.map(drop)
    }

    /// `DELETE /api/learners/<id>`.
    pub async fn leave(&self, seat: &Seat) -> Result<(), Error> {
        let url = format!("{}/api/learners/{}", seat.url, seat.learner);
        checked(self.0.delete(url).bearer_auth(&seat.token).send().await?).await.map(drop)
    }
}

/// The answer, if a success; else the room's refusal.
async fn checked(answer: reqwest::Response) -> Result<reqwest::Response, Error> {
    #[derive(Deserialize)]
    struct Refusal {
        error: String,
    }
    let status = answer.status();
    if status.is_success() {
        return Ok(answer);
    }
    let why = answer.json().await.map_or_else(|_| "the room refused".into(), |r: Refusal| r.error);
    Err(Error::Refused(status, why))
}
