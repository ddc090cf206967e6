//! `lmsync run` tunes glibc's malloc for a long-running node: it restarts itself once, in
//! place (same pid), with `MALLOC_ARENA_MAX` and `MALLOC_TRIM_THRESHOLD_` in its
//! environment, and keeps any value the operator set.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Network, RunningNode, bin};

/// The environment the process `pid` was last exec'd with, as `NAME=value` strings.
fn environment(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn has(env: &[String], pair: &str) -> bool {
    env.iter().any(|v| v == pair)
}

/// Starts a node with `command`'s environment, reads the environment it runs with, and
/// stops it (which must be orderly).
fn environment_of_a_node(command: Command) -> Vec<String> {
    let net = Network::new();
    let files = net.init("440100", None);
    // The pid spawned here is the node's: the restart replaced the process in place.
    let node = RunningNode::start_with(&files, command);
    let env = environment(node.child.id());
    assert_eq!(node.terminate(), Some(0));
    env
}

#[test]
fn a_node_runs_with_two_arenas_and_a_fixed_trim_threshold() {
    let mut command = bin();
    command
        .env_remove("MALLOC_ARENA_MAX")
        .env_remove("MALLOC_TRIM_THRESHOLD_");
    let env = environment_of_a_node(command);
    assert!(has(&env, "MALLOC_ARENA_MAX=2"), "{env:?}");
    assert!(has(&env, "MALLOC_TRIM_THRESHOLD_=131072"), "{env:?}");
}

#[test]
fn the_operators_own_malloc_settings_are_kept() {
    let mut command = bin();
    command
        .env("MALLOC_ARENA_MAX", "4")
        .env_remove("MALLOC_TRIM_THRESHOLD_");
    let env = environment_of_a_node(command);
    assert!(has(&env, "MALLOC_ARENA_MAX=4"), "{env:?}");
    assert!(
        !has(&env, "MALLOC_ARENA_MAX=2"),
        "the operator's value is not overridden: {env:?}"
    );
    assert!(has(&env, "MALLOC_TRIM_THRESHOLD_=131072"), "{env:?}");
}
