//! Hostile input: cursors.
