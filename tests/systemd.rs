//! Running under systemd: `lmsync run` sends READY=1 to `$NOTIFY_SOCKET` once it serves
//! and STOPPING=1 when SIGTERM begins its orderly stop, then exits 0; the unit file in
//! `config/` runs the command this binary has.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::{Network, RunningNode, bin};

fn next_message(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_node_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let net = Network::new();
    let files = net.init("440100", None);
    let path = net.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut command = bin();
    command.env("NOTIFY_SOCKET", &path);
    let node = RunningNode::start_with(&files, command);
    let ready = next_message(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready.contains(&format!("API {}", node.url(""))),
        "the status names the API: {ready:?}"
    );
    assert_eq!(node.terminate(), Some(0), "an orderly stop exits 0");
    assert_eq!(next_message(&socket), "STOPPING=1");
}

#[test]
fn the_unit_file_runs_the_node_with_its_config_and_waits_for_readiness() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lmsync@.service"),
    )
    .unwrap();
    let line = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the unit"))
            .to_string()
    };
    assert_eq!(line("Type"), "notify");
    let exec = line("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    assert_eq!(args[..2], ["run", "--config"], "{exec}");
    // The verb and its option exist in this binary.
    let help = bin().args(["run", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--config"));
}

/// systemd usually names an abstract socket (`@…`), not a path.
#[test]
fn an_abstract_notify_socket_is_reached_too() {
    use std::os::linux::net::SocketAddrExt;
    let net = Network::new();
    let files = net.init("440100", None);
    let name = format!("lmsync-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut command = bin();
    command.env("NOTIFY_SOCKET", format!("@{name}"));
    let node = RunningNode::start_with(&files, command);
    assert!(next_message(&socket).starts_with("READY=1"));
    assert_eq!(node.terminate(), Some(0));
}
