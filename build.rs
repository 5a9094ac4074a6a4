//! Records the git commit for `berth --version` (runc prints its commit too).
fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
    // `rustc 1.85.0 (4d91de4e4 2025-02-17)` -> 1.85.0, for --version's line where runc names its Go.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rust = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(1)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BERTH_RUSTC={rust}");
    // Watch only what exists: in a git worktree `.git` is a file, and a missing path makes cargo rerun this
    // script (and rebuild berth) every time.
    for watched in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
