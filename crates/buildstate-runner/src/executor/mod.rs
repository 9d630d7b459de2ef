//! Runs one step as a child process group.
