//! Rebuilds the crate when a migration is added or changed: `embed_migrations!` reads the
//! folder at compile time, and Cargo does not know it does.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
