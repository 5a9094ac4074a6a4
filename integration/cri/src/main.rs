//! A kubelet stand-in for berth's integration tests: drives containerd's CRI plugin (over its unix socket) through
//! the calls kubelet makes, and checks from the host what berth made. Run by integration/cri.sh, which starts the
//! private containerd and passes everything by environment:
//!
//!   CRI_SOCKET, HANDLER (berth, or runc for comparison), RUNTIME_BIN and RUNTIME_ROOT (the handler's binary, and
//!   its Root + "/k8s.io"), CG_PARENT (relative cgroup parent of the pods), SLICE_PARENT (a `*.slice` parent),
//!   LOG_DIR, IMAGE (busybox image, fully qualified); SYSTEMD_CGROUP=1 when the handler has `SystemdCgroup = true`
//!   (then CG_PARENT is a kubelet-style slice prefix such as `kubepods-besteffort` and SLICE_PARENT a slice, and
//!   each container's scope is checked with systemctl: it needs systemd as PID 1); TIME_SCALE=N multiplies the
//!   time bounds of stop and exit (an emulated VM is several times slower than the host)
//!
//!   berth-cri-test test          the scenarios (first failure: non-zero exit and what failed)
//!   berth-cri-test abandon       leaves a running pod behind, for the script's teardown to remove
//!   berth-cri-test bench [RUNS]  exec-probe cost: median ExecSync time, berth vs runc handler

mod bench;
mod cri;
mod host;
mod scenarios;

use anyhow::{Context, Result};

pub struct Env {
    pub socket: String,
    /// The runtime handler the scenarios use (berth; runc to show that they expect runc's behaviour).
    pub handler: String,
    pub runtime: host::Runtime,
    pub cg_parent: String,
    pub slice_parent: String,
    pub log_dir: String,
    pub image: String,
    /// containerd asks the runtime for systemd cgroups (`slice:cri-containerd:<id>`, a scope per container).
    pub systemd: bool,
    /// Multiplies the time bounds of stop and exit (1 on the host).
    pub time_scale: u64,
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set (run integration/cri.sh)"))
}

fn env() -> Result<Env> {
    Ok(Env {
        socket: var("CRI_SOCKET")?,
        handler: var("HANDLER")?,
        runtime: host::Runtime {
            bin: var("RUNTIME_BIN")?.into(),
            root: var("RUNTIME_ROOT")?.into(),
        },
        cg_parent: var("CG_PARENT")?,
        slice_parent: var("SLICE_PARENT")?,
        log_dir: var("LOG_DIR")?,
        image: var("IMAGE")?,
        systemd: std::env::var("SYSTEMD_CGROUP").is_ok_and(|v| v == "1"),
        time_scale: std::env::var("TIME_SCALE")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(1),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        let env = env()?;
        let mut c = cri::Cri::connect(&env.socket).await?;
        match args.first().map(String::as_str) {
            Some("test") => scenarios::run(&mut c, &env).await,
            Some("abandon") => scenarios::abandon(&mut c, &env).await,
            Some("bench") => {
                let runs = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(30);
                bench::run(&mut c, &env, runs).await
            }
            _ => anyhow::bail!("usage: berth-cri-test test | abandon | bench [RUNS]"),
        }
    });
    if let Err(e) = result {
        eprintln!("FAIL: {e:#}");
        std::process::exit(1);
    }
}
