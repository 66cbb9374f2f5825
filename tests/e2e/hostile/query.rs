//! Hostile input: query.
