//! Lab 04: logging, auth and a per-client rate limit, as layers in the right order. (Work in progress: being written.)
