//! Hostile input: encodings.
