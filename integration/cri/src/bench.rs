//! The cost of exec probes: the median wall time of ExecSync through the `berth` and the `runc` handler of the same
//! containerd, interleaved, with and without the RuntimeDefault seccomp profile; then again with more pods running.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};

use crate::cri::{sh, Cri, CtrSpec, PodSpec};
use crate::Env;

struct Target {
    label: String,
    id: String,
    samples: Vec<Duration>,
}

fn pod(env: &Env, name: &str, handler: &str) -> PodSpec {
    PodSpec {
        name: name.into(),
        handler: handler.into(),
        cgroup_parent: format!("{}/{name}", env.cg_parent),
        log_dir: format!("{}/{name}", env.log_dir),
        host_network: false,
        shared_pid: false,
    }
}

async fn start_pod(
    c: &mut Cri,
    env: &Env,
    name: &str,
    handler: &str,
    ctrs: &[(&str, bool)],
) -> Result<(String, Vec<String>)> {
    let p = pod(env, name, handler);
    std::fs::create_dir_all(&p.log_dir)?;
    let pod_id = c.run_pod(&p).await?;
    let mut ids = Vec::new();
    for (name, seccomp) in ctrs {
        let spec = CtrSpec {
            name: name.to_string(),
            image: env.image.clone(),
            command: sh("exec sleep 100000"),
            seccomp_default: *seccomp,
            ..Default::default()
        };
        let id = c.create(&pod_id, &p, &spec).await?;
        c.start(&id).await?;
        ids.push(id);
    }
    Ok((pod_id, ids))
}

fn median(v: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = ms.len();
    if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    }
}

/// `runs` rounds; each round execs once into every target, the order rotating so that no handler always goes first.
async fn measure(c: &mut Cri, targets: &mut [Target], runs: usize) -> Result<()> {
    for t in targets.iter_mut() {
        t.samples.clear();
        for _ in 0..3 {
            c.exec(&t.id, &["true"]).await?; // warm-up: page cache, shim
        }
    }
    let n = targets.len();
    for round in 0..runs {
        for k in 0..n {
            let t = &mut targets[(round + k) % n];
            let t0 = Instant::now();
            let r = c.exec(&t.id, &["true"]).await?;
            let took = t0.elapsed();
            ensure!(
                r.exit_code == 0,
                "exec true in {} exited {}",
                t.label,
                r.exit_code
            );
            t.samples.push(took);
        }
    }
    Ok(())
}

fn report(out: &mut String, title: &str, targets: &[Target]) -> Vec<f64> {
    use std::fmt::Write;
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "  {:<26} {:>10} {:>10} {:>10}",
        "handler", "median ms", "min ms", "max ms"
    );
    let mut medians = Vec::new();
    for t in targets {
        let m = median(&t.samples);
        let min = t.samples.iter().min().unwrap().as_secs_f64() * 1000.0;
        let max = t.samples.iter().max().unwrap().as_secs_f64() * 1000.0;
        let _ = writeln!(out, "  {:<26} {m:>10.2} {min:>10.2} {max:>10.2}", t.label);
        medians.push(m);
    }
    // targets: berth plain, runc plain, berth seccomp, runc seccomp
    let _ = writeln!(
        out,
        "  ratio berth/runc: {:.2} without seccomp (target <= 0.5), {:.2} with RuntimeDefault (target <= 0.4)",
        medians[0] / medians[1],
        medians[2] / medians[3]
    );
    medians
}

pub async fn run(c: &mut Cri, env: &Env, runs: usize) -> Result<()> {
    let extra: usize = std::env::var("EXTRA_PODS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut pods = Vec::new();
    let (bp, b) = start_pod(
        c,
        env,
        "bench-berth",
        "berth",
        &[("plain", false), ("seccomp", true)],
    )
    .await?;
    let (rp, r) = start_pod(
        c,
        env,
        "bench-runc",
        "runc",
        &[("plain", false), ("seccomp", true)],
    )
    .await?;
    pods.extend([bp, rp]);
    let mut targets = vec![
        Target {
            label: "berth".into(),
            id: b[0].clone(),
            samples: Vec::new(),
        },
        Target {
            label: "runc".into(),
            id: r[0].clone(),
            samples: Vec::new(),
        },
        Target {
            label: "berth + RuntimeDefault".into(),
            id: b[1].clone(),
            samples: Vec::new(),
        },
        Target {
            label: "runc + RuntimeDefault".into(),
            id: r[1].clone(),
            samples: Vec::new(),
        },
    ];
    let mut out = header(runs);
    let result = async {
        measure(c, &mut targets, runs).await?;
        let first = report(
            &mut out,
            &format!("ExecSync `true`, median of {runs} interleaved calls, 2 pods running:"),
            &targets,
        );
        if extra > 0 {
            for i in 0..extra {
                for handler in ["berth", "runc"] {
                    let (p, _) = start_pod(
                        c,
                        env,
                        &format!("bench-extra-{handler}-{i}"),
                        handler,
                        &[("idle", false)],
                    )
                    .await?;
                    pods.push(p);
                }
            }
            measure(c, &mut targets, runs).await?;
            let more = report(
                &mut out,
                &format!(
                    "the same with {} more pods running ({extra} per handler):",
                    2 * extra
                ),
                &targets,
            );
            use std::fmt::Write;
            let _ = writeln!(
                out,
                "  berth median with {} pods / with 2: {:.2} without seccomp, {:.2} with",
                2 + 2 * extra,
                more[0] / first[0],
                more[2] / first[2]
            );
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    for p in pods {
        if let Err(e) = c.remove_pod(&p).await {
            eprintln!("cleanup: {e:#}");
        }
    }
    result?;
    print!("{out}");
    if let Ok(path) = std::env::var("BENCH_REPORT") {
        std::fs::write(&path, &out)?;
    }
    Ok(())
}

fn header(runs: usize) -> String {
    let cmd = |c: &str, a: &[&str]| {
        std::process::Command::new(c)
            .args(a)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    };
    format!(
        "berth exec-probe benchmark: ExecSync through containerd's CRI (io.containerd.runc.v2 shim), {runs} interleaved \
         calls per handler, {}, kernel {}, {} cores\nversions: {} | {} | {}\n\n",
        cmd("date", &["-u", "+%Y-%m-%dT%H:%MZ"]),
        cmd("uname", &["-r"]),
        cmd("nproc", &[]),
        cmd("containerd", &["--version"]),
        cmd(&std::env::var("BERTH").unwrap_or_default(), &["--version"]),
        cmd("runc", &["--version"]),
    )
}
