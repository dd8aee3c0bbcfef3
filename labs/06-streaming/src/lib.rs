//! Lab 06: stream server-sent events as they are produced, and stop when the client leaves. (Work in progress: being written.)
