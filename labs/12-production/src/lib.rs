//! Lab 12: a server that survives hostile clients: the guards of every lab, stacked. (Work in progress: being written.)
