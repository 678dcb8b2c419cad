//! The git revision of a checkout, with `-dirty` when tracked files differ from it
//! ("unknown" outside a checkout). Included by `bench/build.rs` (the revision a build
//! is made from) and by the harness's output (the checkout's at run time).

use std::path::Path;
use std::process::Command;

/// Runs `git -C dir ARGS`; its trimmed output when it succeeds.
pub fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// HEAD's revision in `dir`, `-dirty` when tracked files differ from it.
pub fn revision(dir: &Path) -> String {
    match git(dir, &["rev-parse", "HEAD"]) {
        Some(rev) if !rev.is_empty() => {
            let dirty = git(dir, &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        _ => "unknown".into(),
    }
}
