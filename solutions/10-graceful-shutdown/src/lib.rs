//! Lab 10: on SIGTERM or Ctrl-C, finish what is in flight, then exit within a deadline. (Work in progress: being written.)
