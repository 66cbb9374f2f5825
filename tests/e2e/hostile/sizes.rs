//! Hostile input: sizes.
