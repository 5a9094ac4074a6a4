//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope unit that systemd
//! makes, in the slice `linux.cgroupsPath` names (`slice:prefix:name`, see [`path`]), with `Delegate=yes`.
//!
//! systemd is asked over D-Bus ([`dbus`]) to start the scope with the init's pid and the limits it has
//! properties for ([`props`]); then the cgroupfs manager of the scope's directories does the rest, exactly as
//! without systemd (files, device filter, freezer, stats). A scope needs a pid to exist, so the unit starts in
//! [`Manager::add_task`], once the init is forked (and waiting); `create` only connects, so that an unreachable
//! systemd fails before anything is made.

pub mod annotations;
pub mod dbus;
pub mod path;
pub mod props;

use std::cell::{Cell, RefCell, RefMut};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Resources;
use nix::unistd::Pid;

use self::dbus::{Connection, Message, Value};
use self::path::UnitPath;
use super::{Error, Freezer, Result};

/// How long systemd may take to run a start or stop job (runc waits as long).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
const METHOD_TIMEOUT: Duration = Duration::from_secs(30);

const DEST: &str = "org.freedesktop.systemd1";
const OBJ: &str = "/org/freedesktop/systemd1";
const IFACE: &str = "org.freedesktop.systemd1.Manager";

pub struct Manager {
    unit: UnitPath,
    /// cgroup v2 only (else v1 or hybrid: the v1 property names).
    unified: bool,
    /// The cgroupfs manager of the unit's directories.
    inner: Box<dyn super::Manager>,
    conn: RefCell<Option<Connection>>,
    /// Whether the unit has been started (by this manager, or before: a recorded container).
    started: Cell<bool>,
    /// The resources given to `apply` before the unit existed, for the start.
    pending: RefCell<Option<Resources>>,
    /// The config's `org.systemd.property.*` annotations, given last at the start (so they win, as in runc).
    extra: Vec<props::Property>,
    /// Rootless: the user's own manager is asked, as `uid` (the host uid of this caller).
    rootless: bool,
    uid: u32,
}

/// The sockets tried, in order ([`dbus::sockets_for`]): root's system manager, or a rootless user's own (the
/// user of host uid `uid`).
fn sockets(rootless: bool, uid: u32) -> Vec<(PathBuf, bool)> {
    let user = if rootless { uid } else { 0 };
    dbus::sockets_for(user, |k| std::env::var(k).ok())
}

/// This process's uid as the host sees it (the kernel passes that one as the D-Bus peer's credentials): `euid`
/// mapped through `/proc/self/uid_map` (uid 0 of a rootless podman's user namespace is the user's own uid).
fn host_uid() -> u32 {
    let euid = nix::unistd::geteuid().as_raw();
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map_to_host(euid, &map).unwrap_or(euid)
}

/// `uid` of this namespace in the parent's terms, from a uid_map's `inside outside count` lines.
fn map_to_host(uid: u32, uid_map: &str) -> Option<u32> {
    uid_map.lines().find_map(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        let [inside, outside, count] = f[..] else {
            return None;
        };
        let uid = u64::from(uid);
        (inside <= uid && uid < inside + count)
            .then(|| u32::try_from(outside + (uid - inside)).ok())
            .flatten()
    })
}

fn sd_err(what: impl std::fmt::Display) -> Error {
    Error::Systemd(what.to_string())
}

impl Manager {
    /// The manager of a new container: `cgroups_path` in systemd form and the unit properties the annotations
    /// ask for (both checked here, before anything exists).
    ///
    /// `rootless` (runc's rules, v2 only): the empty slice is `user.slice` and the unit's cgroup lies below the
    /// user manager's own (its `ControlGroup`, read here, so this connects already).
    pub fn new(
        cgroups_path: Option<&str>,
        annotations: Option<&std::collections::HashMap<String, String>>,
        id: &str,
        mounts: &[super::mountinfo::CgroupMount],
        own: &[(Vec<String>, PathBuf)],
        rootless: bool,
    ) -> Result<Manager> {
        let default_slice = if rootless {
            "user.slice"
        } else {
            "system.slice"
        };
        let unit = UnitPath::parse_in(cgroups_path, id, default_slice)?;
        let extra = annotations::properties(annotations.into_iter().flatten()).map_err(sd_err)?;
        let layout = super::layout_of(mounts)?;
        if rootless && !matches!(layout, super::Layout::Unified) {
            // runc's words: a user manager delegates only on the unified hierarchy
            return Err(sd_err(
                "cannot use rootless systemd cgroups manager on cgroup v1",
            ));
        }
        let uid = host_uid();
        let conn = RefCell::new(None);
        let cg = if rootless {
            let mut c = Connection::connect_any(&sockets(true, uid), uid).map_err(sd_err)?;
            let manager_cg = manager_control_group(&mut c)?;
            *conn.borrow_mut() = Some(c);
            path::under_manager(&manager_cg, &unit.cgroup()).map_err(|_| {
                sd_err(format!(
                    "the user manager's ControlGroup {manager_cg:?} is not an absolute cgroup path"
                ))
            })?
        } else {
            unit.cgroup()
        };
        let cg = PathBuf::from(cg);
        let (unified, inner): (bool, Box<dyn super::Manager>) = match layout {
            super::Layout::Unified => (
                true,
                Box::new(super::v2::Manager::new(super::v2::resolve(
                    mounts, own, &cg,
                )?)),
            ),
            _ => (
                false,
                Box::new(super::v1::Manager::new(super::v1::resolve(
                    mounts, own, &cg,
                )?)),
            ),
        };
        Ok(Manager {
            unit,
            unified,
            inner,
            conn,
            started: Cell::new(false),
            pending: RefCell::new(None),
            extra,
            rootless,
            uid,
        })
    }

    /// The manager of a recorded container whose scope `unit` exists (or existed) at `paths`. A caller that is
    /// not the host's root asks its own user manager (the one that made the unit).
    pub fn existing(unit: &str, slice: &str, paths: &BTreeMap<String, PathBuf>) -> Manager {
        let uid = host_uid();
        let inner = super::from_paths(paths);
        let unified = paths.len() == 1
            && paths
                .keys()
                .all(|mnt| crate::sys::is_cgroup2(Path::new(mnt)).unwrap_or(false));
        Manager {
            unit: UnitPath {
                slice: slice.to_string(),
                unit: unit.to_string(),
            },
            unified,
            inner,
            conn: RefCell::new(None),
            started: Cell::new(true),
            pending: RefCell::new(None),
            extra: Vec::new(),
            rootless: uid != 0,
            uid,
        }
    }

    fn conn(&self) -> Result<RefMut<'_, Connection>> {
        let mut c = self.conn.borrow_mut();
        if c.is_none() {
            *c = Some(
                Connection::connect_any(&sockets(self.rootless, self.uid), self.uid)
                    .map_err(sd_err)?,
            );
        }
        Ok(RefMut::map(c, |c| c.as_mut().expect("just connected")))
    }

    fn call(&self, member: &str, body: Vec<Value>) -> std::result::Result<Vec<Value>, dbus::Error> {
        let mut c = self.conn().map_err(|e| dbus::Error::Reply {
            name: "connect".into(),
            message: e.to_string(),
        })?;
        c.call(
            Message::call(DEST, OBJ, IFACE, member, body),
            METHOD_TIMEOUT,
        )
    }

    /// Runs a job-returning method and waits for its JobRemoved; returns the job's result ("done", "failed",
    /// "timeout", "canceled", "dependency", ...).
    fn run_job(&self, member: &str, body: Vec<Value>) -> std::result::Result<String, dbus::Error> {
        self.conn()
            .map_err(|e| dbus::Error::Reply {
                name: "connect".into(),
                message: e.to_string(),
            })?
            .add_match(
                "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',\
                 member='JobRemoved',path='/org/freedesktop/systemd1'",
            )?;
        let reply = self.call(member, body)?;
        let job = reply
            .first()
            .and_then(Value::as_str)
            .ok_or(dbus::Error::Malformed("job reply without a job path"))?
            .to_string();
        let mut c = self.conn.borrow_mut();
        let c = c.as_mut().expect("connected above");
        c.wait_signal(JOB_TIMEOUT, |m| {
            if m.member.as_deref() != Some("JobRemoved") {
                return None;
            }
            match &m.body[..] {
                [_, Value::ObjPath(p), _, Value::Str(result)] if *p == job => Some(result.clone()),
                _ => None,
            }
        })
    }

    fn properties(&self, r: &Resources) -> Result<Vec<props::Property>> {
        let proc_devices = if r.devices().is_some() {
            std::fs::read_to_string("/proc/devices").unwrap_or_default()
        } else {
            String::new()
        };
        props::resources(r, self.unified, &proc_devices)
    }

    fn prop_array(list: Vec<props::Property>) -> Value {
        Value::Array(
            "(sv)".into(),
            list.into_iter()
                .map(|(n, v)| Value::Struct(vec![Value::Str(n), Value::Variant(Box::new(v))]))
                .collect(),
        )
    }

    /// StartTransientUnit of the scope (or slice) with `pid`, waiting for its job.
    fn start(&self, pid: Pid) -> Result<()> {
        let name = self.unit.unit.clone();
        let is_slice = name.ends_with(".slice");
        let mut list: Vec<props::Property> = vec![(
            "Description".into(),
            Value::Str(format!("berth container {name}")),
        )];
        if is_slice {
            // a slice's parent is implied by its name; Wants= makes sure it is started with it
            list.push((
                "Wants".into(),
                Value::Array("s".into(), vec![Value::Str(self.unit.slice.clone())]),
            ));
        } else {
            list.push(("Slice".into(), Value::Str(self.unit.slice.clone())));
            list.push(("Delegate".into(), Value::Bool(true)));
            list.push((
                "PIDs".into(),
                Value::Array("u".into(), vec![Value::U32(pid.as_raw() as u32)]),
            ));
        }
        list.push(("DefaultDependencies".into(), Value::Bool(false)));
        let io = if self.unified {
            "IOAccounting"
        } else {
            "BlockIOAccounting"
        };
        for acct in ["MemoryAccounting", "CPUAccounting", io, "TasksAccounting"] {
            list.push((acct.into(), Value::Bool(true)));
        }
        if let Some(r) = self.pending.borrow().as_ref() {
            list.extend(self.properties(r)?);
        }
        list.extend(self.extra.iter().cloned());
        let body = |list: Vec<props::Property>| {
            vec![
                Value::Str(name.clone()),
                Value::Str("replace".into()),
                Self::prop_array(list),
                Value::Array("(sa(sv))".into(), vec![]),
            ]
        };
        let mut result = self.run_job("StartTransientUnit", body(list.clone()));
        if let Err(dbus::Error::Reply { name: err, .. }) = &result {
            if err == "org.freedesktop.systemd1.UnitExists" {
                if is_slice {
                    // a slice that exists already is what we wanted (kubelet makes pod slices itself)
                    return Ok(());
                }
                // A failed leftover of the same name: reset it (systemd then drops it) and try once more.
                let _ = self.call("ResetFailedUnit", vec![Value::Str(name.clone())]);
                result = self.run_job("StartTransientUnit", body(list));
            }
        }
        match result {
            Ok(r) if r == "done" => Ok(()),
            Ok(r) => {
                let why = self
                    .unit_result()
                    .map(|u| format!(", unit result {u}"))
                    .unwrap_or_default();
                let _ = self.call("ResetFailedUnit", vec![Value::Str(name.clone())]);
                Err(sd_err(format!(
                    "start unit {name}: the job ended with {r}{why}"
                )))
            }
            Err(dbus::Error::Reply { name: err, message })
                if err == "org.freedesktop.systemd1.UnitExists" =>
            {
                Err(sd_err(format!(
                    "start unit {name}: it already exists ({message})"
                )))
            }
            Err(dbus::Error::Timeout(t)) => {
                let _ = self.stop();
                Err(sd_err(format!(
                    "start unit {name}: systemd did not finish the start within {t:?}; the unit was stopped"
                )))
            }
            Err(e) => Err(sd_err(format!("start unit {name}: {e}"))),
        }
    }

    /// The scope's Result property (e.g. "resources"), for the error of a failed start.
    fn unit_result(&self) -> Option<String> {
        let unit = self
            .call("GetUnit", vec![Value::Str(self.unit.unit.clone())])
            .ok()?;
        let path = unit.first()?.as_str()?.to_string();
        let mut c = self.conn.borrow_mut();
        let m = Message::call(
            DEST,
            &path,
            "org.freedesktop.DBus.Properties",
            "Get",
            vec![
                Value::Str("org.freedesktop.systemd1.Scope".into()),
                Value::Str("Result".into()),
            ],
        );
        let v = c.as_mut()?.call(m, METHOD_TIMEOUT).ok()?;
        match v.first()? {
            Value::Variant(inner) => inner.as_str().map(str::to_string),
            _ => None,
        }
    }

    /// systemd no longer has the unit loaded.
    fn gone(&self) -> bool {
        matches!(
            self.call("GetUnit", vec![Value::Str(self.unit.unit.clone())]),
            Err(dbus::Error::Reply { name, .. }) if name == "org.freedesktop.systemd1.NoSuchUnit"
        )
    }

    /// StopUnit, waiting for the job; a unit that is gone already is fine. Then a failed unit is reset, so
    /// that nothing of it stays loaded.
    fn stop(&self) -> Result<()> {
        let name = self.unit.unit.clone();
        let r = self.run_job(
            "StopUnit",
            vec![Value::Str(name.clone()), Value::Str("replace".into())],
        );
        let _ = self.call("ResetFailedUnit", vec![Value::Str(name.clone())]);
        match r {
            Ok(_) => Ok(()),
            // systemd drops an empty scope by itself: the unit may be gone before, or while, it is stopped
            Err(_) if self.gone() => Ok(()),
            Err(e) => Err(sd_err(format!("stop unit {name}: {e}"))),
        }
    }
}

/// The manager's own cgroup (its `ControlGroup` property): `/` for the system manager, e.g.
/// `/user.slice/user-1000.slice/user@1000.service` for a user's.
fn manager_control_group(c: &mut Connection) -> Result<String> {
    let m = Message::call(
        DEST,
        OBJ,
        "org.freedesktop.DBus.Properties",
        "Get",
        vec![Value::Str(IFACE.into()), Value::Str("ControlGroup".into())],
    );
    let v = c
        .call(m, METHOD_TIMEOUT)
        .map_err(|e| sd_err(format!("get the manager's ControlGroup: {e}")))?;
    match v.first() {
        Some(Value::Variant(inner)) => inner.as_str().map(str::to_string),
        _ => None,
    }
    .ok_or_else(|| sd_err("get the manager's ControlGroup: the reply is not a string"))
}

impl super::Manager for Manager {
    fn paths(&self) -> &BTreeMap<String, PathBuf> {
        self.inner.paths()
    }

    fn systemd_unit(&self) -> Option<(&str, &str)> {
        Some((&self.unit.unit, &self.unit.slice))
    }

    /// Connects only: the scope is made when the init's pid is known ([`Manager::add_task`]).
    fn create(&self) -> Result<()> {
        self.conn().map(|_| ())
    }

    fn apply(&self, r: &Resources) -> Result<()> {
        // Rootless: no device filter can be set up (a BPF program needs the host's root); rootless::apply tries
        // the rules alone and ignores a failure, so they are dropped here, and a devices-only call is a no-op.
        let stripped;
        let r = if self.rootless {
            stripped = r.without_devices();
            if stripped.is_empty() {
                return Ok(());
            }
            &stripped
        } else {
            r
        };
        if !self.started.get() {
            *self.pending.borrow_mut() = Some(r.clone());
            return Ok(());
        }
        let list = self.properties(r)?;
        if !list.is_empty() && !self.unit.unit.ends_with(".slice") {
            self.call(
                "SetUnitProperties",
                vec![
                    Value::Str(self.unit.unit.clone()),
                    Value::Bool(true),
                    Self::prop_array(list),
                ],
            )
            .map_err(|e| sd_err(format!("set properties of unit {}: {e}", self.unit.unit)))?;
        }
        self.inner.apply(r)
    }

    fn add_task(&self, pid: Pid) -> Result<()> {
        if self.started.get() {
            return self.inner.add_task(pid);
        }
        self.start(pid)?;
        self.started.set(true);
        // systemd made the directories of the hierarchies it manages; the rest (v1 controllers systemd does not
        // know) are made and joined here, and every limit is written, as without systemd.
        self.inner.create()?;
        self.inner.add_task(pid)?;
        if let Some(r) = self.pending.borrow_mut().take() {
            self.inner.apply(&r)?;
        }
        Ok(())
    }

    fn clone_fd(&self) -> Result<Option<OwnedFd>> {
        if self.started.get() {
            self.inner.clone_fd()
        } else {
            Ok(None)
        }
    }

    fn pids(&self) -> Result<Vec<Pid>> {
        if !self.started.get() {
            return Ok(Vec::new());
        }
        self.inner.pids()
    }

    fn freeze(&self, state: Freezer) -> Result<()> {
        self.inner.freeze(state)
    }

    fn is_frozen(&self) -> bool {
        self.inner.is_frozen()
    }

    /// Stops the unit (systemd kills what is left and removes its cgroups), then removes what systemd did not
    /// make.
    /// Before the start nothing was made, and the directories may well be another container's (a unit that
    /// already existed): then there is nothing to undo.
    fn destroy(&self) -> Result<()> {
        if !self.started.get() {
            return Ok(());
        }
        self.stop()?;
        self.inner.destroy()
    }

    fn stats(&self) -> Result<super::stats::Stats> {
        self.inner.stats()
    }

    fn oom_watch(&self) -> Result<super::oom::Watch> {
        self.inner.oom_watch()
    }
}

#[cfg(test)]
mod tests {
    use super::map_to_host;

    #[test]
    fn maps_uid_to_the_host() {
        // the initial namespace: every uid is itself
        assert_eq!(
            map_to_host(1000, "         0          0 4294967295\n"),
            Some(1000)
        );
        // rootless podman: uid 0 is the user, 1.. the subuid range
        let map = "0 1000 1\n1 100000 65536\n";
        assert_eq!(map_to_host(0, map), Some(1000));
        assert_eq!(map_to_host(1, map), Some(100000));
        assert_eq!(map_to_host(65536, map), Some(165535));
        assert_eq!(map_to_host(65537, map), None);
        assert_eq!(map_to_host(0, ""), None);
        assert_eq!(map_to_host(0, "garbage\n"), None);
    }
}
