//! Tests of the engine through each dialect.

mod patch_paths;
mod search;
mod select;
