//! The CA's register of the certificates it issued (`DIR/issued`), which `pki revoke`
//! reads to name every certificate of a node.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::{PkiError, info_of_der, io_err};
use crate::core::model::NodeCode;

/// The CA directory's register of the certificates it issued, one line each: serial,
/// node, not before and not after (seconds since the epoch), tab-separated. `pki revoke`
/// reads it to name every certificate of a node.
pub const ISSUED: &str = "issued";

/// A certificate the CA issued, as its register records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// The node.
    pub node: NodeCode,
    /// Expiry, seconds since the epoch.
    pub not_after: i64,
}

/// Appends the certificate in `cert_pem` to the register in `ca_dir`.
pub(super) fn register(ca_dir: &Path, cert_pem: &str) -> Result<(), PkiError> {
    let path = ca_dir.join(ISSUED);
    let bad = || PkiError::BadCertificate(path.clone());
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).map_err(|_| bad())?;
    let info = info_of_der(&pem.contents).ok_or_else(bad)?;
    let node = info.node.map(|n| n.to_string()).unwrap_or_default();
    let line = format!(
        "{}\t{node}\t{}\t{}\n",
        info.serial, info.not_before, info.not_after
    );
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    file.write_all(line.as_bytes()).map_err(io_err(&path))?;
    file.sync_all().map_err(io_err(&path))
}

/// Every certificate the CA in `ca_dir` recorded issuing (none before the register
/// existed; lines that do not parse are skipped).
pub fn issued(ca_dir: &Path) -> Result<Vec<Issued>, PkiError> {
    let path = ca_dir.join(ISSUED);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let serial = f.next()?.to_string();
            let node = f.next()?.parse().ok()?;
            let _not_before = f.next()?;
            let not_after = f.next()?.parse().ok()?;
            Some(Issued {
                serial,
                node,
                not_after,
            })
        })
        .collect())
}
