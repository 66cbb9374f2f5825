//! Hostile input: nesting.
