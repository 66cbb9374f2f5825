//! Hostile input: headers.
