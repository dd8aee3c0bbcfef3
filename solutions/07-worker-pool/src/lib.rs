//! Lab 07: a fixed pool of workers behind a bounded queue that sheds the excess. (Work in progress: being written.)
