//! Lab 09: call five upstreams at once, under one deadline, and cancel the rest on failure. (Work in progress: being written.)
