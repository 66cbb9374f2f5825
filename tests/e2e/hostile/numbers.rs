//! Hostile input: numbers.
