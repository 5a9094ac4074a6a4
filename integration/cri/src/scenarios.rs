//! The pod lifecycle as kubelet drives it, through the `berth` handler, each step checked through CRI and from the
//! host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use k8s_cri::v1::{ContainerState, PodSandboxState};

use crate::cri::{sh, Cri, CtrSpec, PodSpec};
use crate::host::{
    cpu_quota, cpu_shares, eventually, memory_limit, mounts_mentioning, ns_file, ns_of,
    unit_property,
};
use crate::Env;

const MIB: i64 = 1024 * 1024;

fn say(s: &str) {
    println!("== {s}");
}

fn pod(env: &Env, name: &str) -> PodSpec {
    // kubelet's systemd driver names a pod's slice `kubepods-<qos>-pod<uid>.slice` (a dash nests a slice)
    let cgroup_parent = if env.systemd {
        format!("{}-pod{}.slice", env.cg_parent, name.replace('-', "_"))
    } else {
        format!("{}/{name}", env.cg_parent)
    };
    PodSpec {
        name: name.into(),
        handler: env.handler.clone(),
        cgroup_parent,
        log_dir: format!("{}/{name}", env.log_dir),
        host_network: false,
        shared_pid: false,
    }
}

fn ctr(env: &Env, name: &str, command: Vec<String>) -> CtrSpec {
    CtrSpec {
        name: name.into(),
        image: env.image.clone(),
        command,
        ..Default::default()
    }
}

/// Everything the host knows of a container, to check that it is all gone after removal.
struct Trace {
    id: String,
    cgroups: Vec<PathBuf>,
}

/// containerd's unit for a container with systemd cgroups.
fn scope_of(id: &str) -> String {
    format!("cri-containerd-{id}.scope")
}

fn trace(env: &Env, id: &str) -> Result<Trace> {
    let cgroups = env.runtime.cgroup_dirs(id)?;
    if env.systemd {
        // systemd has the container's scope, active, in a slice of the pod, at the cgroup berth recorded
        let unit = scope_of(id);
        let (state, slice, cg) = (
            unit_property(&unit, "ActiveState")?,
            unit_property(&unit, "Slice")?,
            unit_property(&unit, "ControlGroup")?,
        );
        ensure!(state == "active", "{unit}: ActiveState {state}");
        ensure!(
            slice.starts_with(&format!("{}-pod", env.cg_parent)) || slice == env.slice_parent,
            "{unit}: in slice {slice}, not a pod slice of {}",
            env.cg_parent
        );
        ensure!(
            !cg.is_empty()
                && cgroups
                    .iter()
                    .all(|d| d.ends_with(cg.trim_start_matches('/'))),
            "{unit}: ControlGroup {cg}, but {} recorded {cgroups:?}",
            env.handler
        );
        println!("   {unit}: {state} in {slice}, {cg}");
    }
    Ok(Trace {
        id: id.into(),
        cgroups,
    })
}

async fn assert_gone(env: &Env, t: &Trace) -> Result<()> {
    let gone = eventually(10, || {
        !env.runtime.knows(&t.id) && t.cgroups.iter().all(|d| !d.exists())
    })
    .await;
    ensure!(
        !env.runtime.knows(&t.id),
        "{} still knows {}",
        env.handler,
        t.id
    );
    ensure!(gone, "cgroups of {} left: {:?}", t.id, t.cgroups);
    let m = mounts_mentioning(&t.id);
    ensure!(m.is_empty(), "mounts of {} left: {m:?}", t.id);
    if env.systemd {
        let unit = scope_of(&t.id);
        let gone = eventually(10, || {
            unit_property(&unit, "LoadState").is_ok_and(|s| s == "not-found")
        })
        .await;
        ensure!(
            gone,
            "{unit} is left: {:?}",
            unit_property(&unit, "ActiveState")
        );
    }
    Ok(())
}

/// The pid containerd reports for a running container, checked against berth's own state.
async fn running_pid(c: &mut Cri, env: &Env, id: &str) -> Result<i64> {
    let (st, info) = c.status(id).await?;
    ensure!(
        st.state == ContainerState::ContainerRunning as i32,
        "{id}: CRI state {} (reason {}, message {})",
        st.state,
        st.reason,
        st.message
    );
    let pid = info["pid"]
        .as_i64()
        .context("no pid in containerd's verbose info")?;
    let b = env.runtime.state(id)?;
    ensure!(
        b["status"] == "running" && b["pid"].as_i64() == Some(pid),
        "{} state of {id} is {b}, CRI reports pid {pid}",
        env.handler
    );
    Ok(pid)
}

async fn wait_exited(c: &mut Cri, id: &str, secs: u64) -> Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (st, _) = c.status(id).await?;
        if st.state == ContainerState::ContainerExited as i32 {
            return Ok(st.exit_code);
        }
        if Instant::now() > deadline {
            bail!("{id} did not exit within {secs}s (state {})", st.state);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pod's network namespace file, from the sandbox's runtime spec as containerd made it.
fn netns_path(info: &serde_json::Value) -> Option<PathBuf> {
    info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()?
        .iter()
        .find(|n| n["type"] == "network")?["path"]
        .as_str()
        .map(PathBuf::from)
}

pub async fn run(c: &mut Cri, env: &Env) -> Result<()> {
    say("Version");
    let v = c.version().await?;
    ensure!(
        v.runtime_name == "containerd" && !v.runtime_version.is_empty(),
        "Version: {v:?}"
    );
    println!(
        "   {} {} (CRI {})",
        v.runtime_name, v.runtime_version, v.runtime_api_version
    );

    say("ImageStatus");
    ensure!(
        c.image_present(&env.image).await?,
        "image {} not known to CRI",
        env.image
    );
    ensure!(
        !c.image_present("localhost/berth-no-such-image:1").await?,
        "ImageStatus reports an image that was never imported"
    );

    main_pod(c, env).await?;
    host_network_pod(c, env).await?;
    shared_pid_pod(c, env).await?;
    say("no pod left");
    let left = c.pods().await?;
    ensure!(
        left.is_empty(),
        "pods left: {:?}",
        left.iter().map(|p| &p.id).collect::<Vec<_>>()
    );
    println!("PASS cri (handler {})", env.handler);
    Ok(())
}

/// A pod of its own network and pid namespaces, the container lifecycle through it, then the pod's removal.
async fn main_pod(c: &mut Cri, env: &Env) -> Result<()> {
    let p = pod(env, "main");
    std::fs::create_dir_all(&p.log_dir)?;
    say(&format!(
        "RunPodSandbox (handler {}, relative cgroup parent)",
        env.handler
    ));
    let pod_id = c.run_pod(&p).await?;
    let (ps, pinfo) = c.pod_status(&pod_id).await?;
    ensure!(
        ps.state == PodSandboxState::SandboxReady as i32,
        "pod state {}",
        ps.state
    );
    ensure!(
        ps.runtime_handler == env.handler || ps.runtime_handler.is_empty(),
        "handler {}",
        ps.runtime_handler
    );
    let ip = ps
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    ensure!(
        ip.starts_with("192.0.2."),
        "pod ip [{ip}]: not the test CNI plugin's"
    );
    let netns = netns_path(&pinfo).context("no network namespace path in the sandbox spec")?;
    let pause = trace(env, &pod_id)?;
    let sandbox_pid = pinfo["pid"].as_i64().context("no sandbox pid")?;
    ensure!(
        env.runtime.state(&pod_id)?["pid"].as_i64() == Some(sandbox_pid),
        "{}'s pid of the sandbox is not CRI's {sandbox_pid}",
        env.handler
    );
    ensure!(
        pause
            .cgroups
            .iter()
            .all(|d| d.to_string_lossy().contains(&p.cgroup_parent)),
        "sandbox cgroups {:?} not under the relative parent {}",
        pause.cgroups,
        p.cgroup_parent
    );

    say("CreateContainer with memory and CPU limits, StartContainer, ContainerStatus");
    let mut spec = ctr(
        env,
        "web",
        sh("trap 'echo got-term; exit 0' TERM; echo hello-log; while :; do sleep 0.1; done"),
    );
    spec.memory = 64 * MIB;
    spec.cpu_quota = 50_000;
    spec.cpu_shares = 512;
    let id = c.create(&pod_id, &p, &spec).await?;
    c.start(&id).await?;
    let pid = running_pid(c, env, &id).await?;
    let web = trace(env, &id)?;

    say("host: cgroup files carry the limits; the pod's network namespace is CRI's");
    let mem = memory_limit(&web.cgroups)?;
    ensure!(mem == (64 * MIB).to_string(), "memory limit {mem}");
    let quota = cpu_quota(&web.cgroups)?;
    ensure!(quota == "50000", "cpu quota {quota}");
    ensure!(
        cpu_shares(&web.cgroups, 512)?,
        "cpu shares are not 512 (cpu.shares, or cpu.weight 59)"
    );
    let pod_ns = ns_file(&netns)?;
    ensure!(
        ns_of(pid, "net")? == pod_ns,
        "container not in the pod's netns {}",
        netns.display()
    );
    ensure!(
        ns_of(sandbox_pid, "net")? == pod_ns,
        "sandbox not in its netns"
    );
    ensure!(
        ns_of(pid, "net")? != ns_of(std::process::id() as i64, "net")?,
        "pod shares the host's netns"
    );
    ensure!(
        ns_of(pid, "pid")? != ns_of(sandbox_pid, "pid")?,
        "container shares the sandbox's pid ns"
    );

    say("ExecSync: stdout, stderr, exit code");
    let r = c
        .exec(
            &id,
            &["sh", "-c", "echo out-$(hostname); echo err >&2; exit 3"],
        )
        .await?;
    ensure!(
        r.stdout == b"out-main\n" && r.stderr == b"err\n" && r.exit_code == 3,
        "exec: {:?} {:?} {}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr),
        r.exit_code
    );
    let r = c.exec(&id, &["cat", "/sys/class/net/eth0/address"]).await?;
    ensure!(
        r.exit_code != 0,
        "the pod netns should hold only lo (the test CNI plugin adds nothing)"
    );

    say("UpdateContainerResources");
    c.update(&id, 128 * MIB, 20_000).await?;
    let mem = memory_limit(&web.cgroups)?;
    ensure!(
        mem == (128 * MIB).to_string(),
        "memory limit after update {mem}"
    );
    let quota = cpu_quota(&web.cgroups)?;
    ensure!(quota == "20000", "cpu quota after update {quota}");

    say("log file read back");
    let log = Path::new(&p.log_dir).join("web.log");
    ensure!(
        eventually(5, || std::fs::read_to_string(&log)
            .is_ok_and(|s| s.contains(" stdout F hello-log")))
        .await,
        "{}: {:?}",
        log.display(),
        std::fs::read_to_string(&log)
    );

    say("StopContainer (SIGTERM honoured), RemoveContainer");
    let t0 = Instant::now();
    c.stop(&id, 30).await?;
    println!("   StopContainer took {:?}", t0.elapsed());
    ensure!(
        t0.elapsed() < Duration::from_secs(10 * env.time_scale),
        "stop took {:?}",
        t0.elapsed()
    );
    let code = wait_exited(c, &id, 10 * env.time_scale).await?;
    ensure!(code == 0, "exit code after SIGTERM {code}");
    ensure!(
        eventually(5, || std::fs::read_to_string(&log)
            .is_ok_and(|s| s.contains("got-term")))
        .await,
        "the container did not see SIGTERM"
    );
    c.remove(&id).await?;
    assert_gone(env, &web).await?;

    say("a container that exits on its own: its exit code, then removed");
    let id = c
        .create(&pod_id, &p, &ctr(env, "quits", sh("exit 7")))
        .await?;
    c.start(&id).await?;
    let t = Trace {
        id: id.clone(),
        cgroups: Vec::new(),
    };
    ensure!(
        wait_exited(c, &id, 10 * env.time_scale).await? == 7,
        "exit code not 7"
    );
    c.remove(&id).await?;
    assert_gone(env, &t).await?;

    say("StopContainer of a container that ignores SIGTERM: SIGKILL after the grace period");
    let id = c
        .create(
            &pod_id,
            &p,
            &ctr(
                env,
                "stubborn",
                sh("trap '' TERM; while :; do sleep 0.1; done"),
            ),
        )
        .await?;
    c.start(&id).await?;
    running_pid(c, env, &id).await?;
    let stubborn = trace(env, &id)?;
    let t0 = Instant::now();
    c.stop(&id, 2).await?;
    let took = t0.elapsed();
    ensure!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15 * env.time_scale),
        "stop took {took:?}"
    );
    let code = wait_exited(c, &id, 10 * env.time_scale).await?;
    ensure!(code == 137, "exit code after SIGKILL {code}");
    c.remove(&id).await?;
    assert_gone(env, &stubborn).await?;

    say("RuntimeDefault seccomp");
    let mut spec = ctr(env, "confined", sh("exec sleep 1000"));
    spec.seccomp_default = true;
    let id = c.create(&pod_id, &p, &spec).await?;
    c.start(&id).await?;
    running_pid(c, env, &id).await?;
    let r = c
        .exec(&id, &["grep", "^Seccomp:", "/proc/self/status"])
        .await?;
    let out = String::from_utf8_lossy(&r.stdout);
    ensure!(
        out.split_whitespace().nth(1) == Some("2"),
        "exec not under a seccomp filter: {out}"
    );
    let confined = trace(env, &id)?;

    say("a failing entrypoint: the CRI error names the cause");
    let id = c
        .create(
            &pod_id,
            &p,
            &ctr(env, "broken", vec!["/no/such/entrypoint".into()]),
        )
        .await;
    let err = match id {
        Ok(id) => {
            let e = c
                .start(&id)
                .await
                .err()
                .context("StartContainer of a missing entrypoint succeeded")?;
            c.remove(&id).await?;
            ensure!(
                !env.runtime.knows(&id),
                "{} still knows the broken container",
                env.handler
            );
            e
        }
        Err(e) => e,
    };
    let msg = format!("{err:#}");
    ensure!(
        msg.contains("/no/such/entrypoint"),
        "the error does not name the entrypoint: {msg}"
    );
    println!("   {msg}");

    say("RemovePodSandbox of a pod whose container still runs (stopped first, as kubelet expects)");
    c.remove_pod(&pod_id).await?;
    assert_gone(env, &confined).await?;
    assert_gone(env, &pause).await?;
    ensure!(
        !netns.exists(),
        "the pod's netns {} is left",
        netns.display()
    );
    ensure!(
        mounts_mentioning(&pod_id).is_empty(),
        "mounts of the pod left"
    );
    Ok(())
}

/// A host-network pod under a `*.slice` cgroup parent (containerd sends `slice:prefix:name`).
async fn host_network_pod(c: &mut Cri, env: &Env) -> Result<()> {
    say("host-network pod under a *.slice cgroup parent");
    let mut p = pod(env, "hostnet");
    p.host_network = true;
    p.cgroup_parent = env.slice_parent.clone();
    std::fs::create_dir_all(&p.log_dir)?;
    let pod_id = c.run_pod(&p).await?;
    let pause = trace(env, &pod_id)?;
    // cgroupfs: the literal directory `slice:cri-containerd:id` (runc's reading); systemd: the pod's scope
    let want = if env.systemd {
        scope_of(&pod_id)
    } else {
        format!(
            "{}:cri-containerd:{pod_id}",
            Path::new(&p.cgroup_parent)
                .file_name()
                .unwrap()
                .to_string_lossy()
        )
    };
    ensure!(
        pause
            .cgroups
            .iter()
            .all(|d| d.file_name().is_some_and(|n| n.to_string_lossy() == want)),
        "sandbox cgroups {:?}: not the directory {want}",
        pause.cgroups
    );
    let id = c
        .create(&pod_id, &p, &ctr(env, "app", sh("exec sleep 1000")))
        .await?;
    c.start(&id).await?;
    let pid = running_pid(c, env, &id).await?;
    ensure!(
        ns_of(pid, "net")? == ns_of(std::process::id() as i64, "net")?,
        "a host-network container is not in the host's netns"
    );
    let app = trace(env, &id)?;
    say("StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox");
    c.stop(&id, 2).await?;
    let code = wait_exited(c, &id, 10 * env.time_scale).await?;
    ensure!(
        code == 137,
        "sleep as pid 1 ignores SIGTERM: SIGKILL expected, got exit {code}"
    );
    c.remove(&id).await?;
    assert_gone(env, &app).await?;
    c.stop_pod(&pod_id).await?;
    c.remove_pod(&pod_id).await?;
    assert_gone(env, &pause).await?;
    Ok(())
}

/// A pod whose containers share the sandbox's pid namespace (so none has its own: `kill --all` sweeps).
async fn shared_pid_pod(c: &mut Cri, env: &Env) -> Result<()> {
    say("pod with a shared pid namespace");
    let mut p = pod(env, "sharedpid");
    p.shared_pid = true;
    std::fs::create_dir_all(&p.log_dir)?;
    let pod_id = c.run_pod(&p).await?;
    let (_, pinfo) = c.pod_status(&pod_id).await?;
    let sandbox_pid = pinfo["pid"].as_i64().context("no sandbox pid")?;
    let pause = trace(env, &pod_id)?;
    let a = c
        .create(&pod_id, &p, &ctr(env, "a", sh("exec sleep 1001")))
        .await?;
    c.start(&a).await?;
    let b = c
        .create(&pod_id, &p, &ctr(env, "b", sh("sleep 1002 & wait")))
        .await?;
    c.start(&b).await?;
    let pa = running_pid(c, env, &a).await?;
    let pb = running_pid(c, env, &b).await?;
    ensure!(
        ns_of(pa, "pid")? == ns_of(sandbox_pid, "pid")?
            && ns_of(pb, "pid")? == ns_of(sandbox_pid, "pid")?,
        "containers not in the sandbox's pid namespace"
    );
    let r = c.exec(&a, &["ps"]).await?;
    let ps = String::from_utf8_lossy(&r.stdout);
    ensure!(
        ps.contains("sleep 1002"),
        "a cannot see b's processes: {ps}"
    );
    let (ta, tb) = (trace(env, &a)?, trace(env, &b)?);

    say("StopContainer of a container without its own pid namespace (its child outlives the init)");
    c.stop(&b, 2).await?;
    wait_exited(c, &b, 10 * env.time_scale).await?;
    ensure!(
        eventually(10, || !ps_has("sleep 1002")).await,
        "b's background sleep outlived the stop"
    );
    c.remove(&b).await?;
    assert_gone(env, &tb).await?;

    say("RemovePodSandbox with a container still running");
    c.remove_pod(&pod_id).await?;
    assert_gone(env, &ta).await?;
    assert_gone(env, &pause).await?;
    ensure!(!ps_has("sleep 1001"), "a's process outlived the pod");
    Ok(())
}

/// Is a process with exactly this command line running on the host?
fn ps_has(cmdline: &str) -> bool {
    let want: Vec<u8> = cmdline.replace(' ', "\0").into_bytes();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten().any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.strip_suffix(b"\0").unwrap_or(&c) == want.as_slice())
            })
        })
        .unwrap_or(false)
}

/// A kubelet killed halfway: a pod (own network namespace, a running container, its shim) left to the teardown,
/// which must leave nothing behind (integration/cri.sh checks after it).
pub async fn abandon(c: &mut Cri, env: &Env) -> Result<()> {
    say("leave a running pod to the teardown (a kubelet killed halfway)");
    let p = pod(env, "abandoned");
    std::fs::create_dir_all(&p.log_dir)?;
    let pod_id = c.run_pod(&p).await?;
    let id = c
        .create(&pod_id, &p, &ctr(env, "left", sh("exec sleep 86401")))
        .await?;
    c.start(&id).await?;
    running_pid(c, env, &id).await?;
    Ok(())
}
