//! Records the git revision the harness is built from (`SEGEXPAND_BUILD_REV`, with
//! `-dirty` when tracked files differ from it), so that a figure names the code that
//! made it even if the checkout moves on after the build. Reruns when HEAD, the index
//! or any workspace source changes.

#[path = "shared/git_rev.rs"]
mod git_rev;

use git_rev::{git, revision};
use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let root = Path::new(&manifest).parent().unwrap_or(Path::new("."));
    let rev = revision(root);
    println!("cargo:rustc-env=SEGEXPAND_BUILD_REV={rev}");
    if let Some(dir) = git(root, &["rev-parse", "--absolute-git-dir"]) {
        let dir = Path::new(&dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        println!("cargo:rerun-if-changed={}", dir.join("index").display());
        if let Some(r) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", dir.join(r).display());
        }
    }
    // A source edit makes the build dirty: watch every crate's sources.
    for d in [
        "bench/src",
        "bench/scenarios",
        "bench/shared",
        "engine/src",
        "redistributor/src",
        "server/src",
        "sql/src",
        "src",
        "ops/src",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(d).display());
    }
}
