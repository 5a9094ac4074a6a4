//! `--systemd-cgroup` on this host, which has no systemd: the errors, and that nothing is left behind. The driver
//! itself is tested against a real systemd by integration/systemd/test.sh (a VM with systemd as PID 1).

mod common;

use common::*;
use serde_json::json;

fn create_fails(berth: &Berth, b: &Bundle, id: &str, want: &[&str]) {
    create_fails_with(berth, &["--systemd-cgroup"], &b.dir, id, want);
}

#[test]
fn cgroups_path_not_in_slice_prefix_name_form() {
    let berth = Berth::new();
    for path in [
        "berth-tests/x",
        "/abs/path",
        "a.slice:b",
        "a:b:c:d",
        "notaslice:p:n",
    ] {
        let id = unique("sdbadpath");
        let mut b = Bundle::new(&id);
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
        create_fails(&berth, &b, &id, &[path, "slice"]);
    }
}

#[test]
fn systemd_unreachable_names_the_sockets() {
    let sockets = ["/run/dbus/system_bus_socket", "/run/systemd/private"];
    if sockets.iter().any(|s| std::path::Path::new(s).exists()) {
        skipped(
            "systemd_unreachable_names_the_sockets",
            "this host has a D-Bus or systemd socket (integration/systemd/tests.sh covers it by hiding them)",
        );
        return;
    }
    let berth = Berth::new();
    let id = unique("sdnobus");
    let mut b = Bundle::new(&id);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}")));
    create_fails(&berth, &b, &id, &sockets);
}
