//! Hostile input: strings.
