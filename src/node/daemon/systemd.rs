//! Telling systemd how the node stands (`Type=notify` units, `config/lmsync@.service`):
//! one datagram per state change to the socket systemd names in `$NOTIFY_SOCKET`. Without
//! that variable (any other supervisor, a terminal) nothing is sent.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The node serves: its store is open, the API and QUIC listen.
pub const READY: &str = "READY=1";
/// The node is shutting down in order.
pub const STOPPING: &str = "STOPPING=1";

/// Sends `state` (lines of `KEY=value`) to systemd. Returns whether there was a socket to
/// send to.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    match bytes.strip_prefix(b"@") {
        // An abstract socket (systemd's usual choice): a name, not a path.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            socket.send_to(state.as_bytes(), &path)?;
        }
    }
    Ok(true)
}
