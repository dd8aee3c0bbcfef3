//! Lab 11: a load generator with real concurrency, one client and latency percentiles. (Work in progress: being written.)
