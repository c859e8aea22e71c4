//! The migrations are embedded at compile time (`embed_migrations!`), which cannot
//! tell cargo about the files it reads: without this, a new migration directory
//! leaves the crate unbuilt and the binaries migrating to the old schema.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
