//! The network's private PKI: the root CA held by the ministry information centre and the
//! node certificates it issues, each binding one node code.
//!
//! A node certificate names its code three ways (subject CN, DNS SAN `n<code>.lmsync`, URI
//! SAN `urn:lmsync:node:<code>`), so a peer's code is read from the certificate, never
//! from what the peer claims. Private keys are created with mode 0600 before any byte is
//! written; nothing here overwrites an existing key.

use std::fs::OpenOptions;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use crate::core::model::NodeCode;
use crate::core::model::signature::{NODE_URI_PREFIX, SignatureError, node_of};

mod register;

use register::register;
pub use register::{ISSUED, Issued, issued};

/// CA certificate file name.
pub const CA_CERT: &str = "ca.crt";
/// CA private key file name.
pub const CA_KEY: &str = "ca.key";
/// Node certificate file name.
pub const NODE_CERT: &str = "node.crt";
/// Node private key file name.
pub const NODE_KEY: &str = "node.key";

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file that would be written exists already.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation or parsing failed.
    #[error("certificate error: {0}")]
    Cert(#[from] rcgen::Error),
    /// A certificate does not parse as X.509.
    #[error("{0} is not a valid PEM X.509 certificate")]
    BadCertificate(PathBuf),
    /// A certificate to be renewed is another node's.
    #[error("{path} is not a certificate of node {node}")]
    OtherNode {
        /// The certificate.
        path: PathBuf,
        /// The node it should be for.
        node: NodeCode,
    },
    /// Signing a document failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` to a new file with `mode`, refusing to replace an existing one.
fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(mode);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            PkiError::Exists(path.to_path_buf())
        } else {
            io_err(path)(e)
        }
    })?;
    file.write_all(contents.as_bytes()).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

fn validity(params: &mut CertificateParams, today: (i32, u8, u8), years: i32) {
    let (y, m, d) = today;
    // Back-dated one day so that a peer whose clock lags a little still accepts it.
    params.not_before = rcgen::date_time_ymd(y, m, d) - std::time::Duration::from_secs(86_400);
    // Day clamped to 28 so that 29 February plus N years is still a date.
    params.not_after = rcgen::date_time_ymd(y + years, m, d.min(28));
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

/// The names that bind `node` into its certificate.
pub fn dns_name(node: NodeCode) -> String {
    format!("n{node}.lmsync")
}

/// The URI SAN naming `node`.
pub fn node_uri(node: NodeCode) -> String {
    format!("{NODE_URI_PREFIX}{node}")
}

fn today() -> (i32, u8, u8) {
    use chrono::Datelike;
    let now = crate::node::clock::today();
    let month = u8::try_from(now.month()).unwrap_or(1);
    let day = u8::try_from(now.day()).unwrap_or(1);
    (now.year(), month, day)
}

/// Creates the network's root CA in `dir` (`ca.crt` 0644, `ca.key` 0600), valid 20 years.
pub fn init_ca(dir: &Path) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    for p in [&cert_path, &key_path] {
        if p.exists() {
            return Err(PkiError::Exists(p.clone()));
        }
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "lmsync network root CA");
    dn.push(DnType::OrganizationName, "Ministry information centre");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    validity(&mut params, today(), 20);
    let cert = params.self_signed(&key)?;
    write_new(&key_path, &key.serialize_pem(), 0o600)?;
    write_new(&cert_path, &cert.pem(), 0o644)
}

/// Issues a certificate for `node` signed by the CA in `ca_dir`, valid from yesterday for
/// `years`, writing `node.crt`, `node.key` (0600) and a copy of `ca.crt` (never the CA
/// key) into `out`.
pub fn issue(ca_dir: &Path, node: NodeCode, out: &Path, years: i32) -> Result<(), PkiError> {
    let mut params = CertificateParams::default();
    validity(&mut params, today(), years);
    sign_node_certificate(ca_dir, node, out, params)
}

/// Like [`issue`], valid from the start of `from` to the start of `until` (UTC): a
/// renewal's dates, or a certificate that tests need expired or not yet valid.
pub fn issue_between(
    ca_dir: &Path,
    node: NodeCode,
    out: &Path,
    from: chrono::NaiveDate,
    until: chrono::NaiveDate,
) -> Result<(), PkiError> {
    use chrono::Datelike;
    let midnight = |d: chrono::NaiveDate| {
        let month = u8::try_from(d.month()).unwrap_or(1);
        let day = u8::try_from(d.day()).unwrap_or(1);
        rcgen::date_time_ymd(d.year(), month, day)
    };
    let mut params = CertificateParams::default();
    params.not_before = midnight(from);
    params.not_after = midnight(until);
    sign_node_certificate(ca_dir, node, out, params)
}

/// A freshly signed node certificate and its new key, PEM.
struct SignedNode {
    cert: String,
    key: String,
    /// The issuing CA's certificate.
    ca: String,
}

/// Signs a certificate for `node`, with a new key, valid as in `dates`.
fn sign_node(
    ca_dir: &Path,
    node: NodeCode,
    dates: CertificateParams,
) -> Result<SignedNode, PkiError> {
    let ca_key = KeyPair::from_pem(&read(&ca_dir.join(CA_KEY))?)?;
    let ca_pem = read(&ca_dir.join(CA_CERT))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![dns_name(node)])?;
    params
        .subject_alt_names
        .push(SanType::URI(node_uri(node).try_into()?));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("lmsync node {node}"));
    dn.push(DnType::OrganizationalUnitName, node.tier().to_string());
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.serial_number = Some(random_serial());
    params.not_before = dates.not_before;
    params.not_after = dates.not_after;
    let cert = params.signed_by(&key, &issuer)?;
    register(ca_dir, &cert.pem())?;
    Ok(SignedNode {
        cert: cert.pem(),
        key: key.serialize_pem(),
        ca: ca_pem,
    })
}

/// Signs a node certificate for `node` with the validity in `dates` and writes it, with
/// its key and the CA certificate, into `out`, which must not hold them yet.
fn sign_node_certificate(
    ca_dir: &Path,
    node: NodeCode,
    out: &Path,
    dates: CertificateParams,
) -> Result<(), PkiError> {
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    for name in [NODE_CERT, NODE_KEY, CA_CERT] {
        let p = out.join(name);
        if p.exists() {
            return Err(PkiError::Exists(p));
        }
    }
    let signed = sign_node(ca_dir, node, dates)?;
    write_new(&out.join(NODE_KEY), &signed.key, 0o600)?;
    write_new(&out.join(NODE_CERT), &signed.cert, 0o644)?;
    write_new(&out.join(CA_CERT), &signed.ca, 0o644)
}

/// What [`renew`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewed {
    /// The new certificate.
    pub info: CertInfo,
    /// The serial number of the certificate it replaced (none when `dir` held none).
    pub previous_serial: Option<String>,
    /// True when the directory's `ca.crt` holds the CA that issued the new certificate;
    /// false in the middle of a CA rotation that has not yet reached this node's trust.
    pub issuer_trusted: bool,
}

/// Issues `node`'s next certificate, with a new key, valid from yesterday for `years`,
/// into `dir`, in the layout of [`issue`]. When `dir` holds `node`'s current certificate,
/// `node.crt` and `node.key` are replaced: each is written beside the old one, synced and
/// renamed over it, so a reader sees the old file or the new, never a part, and a node
/// picks them up on SIGHUP; the old key is overwritten, so a renewal after a key was
/// stolen leaves nothing to steal again. A certificate of another node there is refused.
pub fn renew(ca_dir: &Path, node: NodeCode, dir: &Path, years: i32) -> Result<Renewed, PkiError> {
    let mut dates = CertificateParams::default();
    validity(&mut dates, today(), years);
    if !dir.join(NODE_CERT).exists() {
        sign_node_certificate(ca_dir, node, dir, dates)?;
        return Ok(Renewed {
            info: cert_info(&dir.join(NODE_CERT))?,
            previous_serial: None,
            issuer_trusted: true,
        });
    }
    let current = cert_info(&dir.join(NODE_CERT))?;
    if current.node != Some(node) {
        return Err(PkiError::OtherNode {
            path: dir.join(NODE_CERT),
            node,
        });
    }
    let signed = sign_node(ca_dir, node, dates)?;
    // The key first: a node reloading between the two renames finds a key that does not
    // match its certificate and keeps the pair it has; after the second, the new pair.
    write_replacing(&dir.join(NODE_KEY), &signed.key, 0o600)?;
    write_replacing(&dir.join(NODE_CERT), &signed.cert, 0o644)?;
    sync_dir(dir)?;
    let trusted = read(&dir.join(CA_CERT)).unwrap_or_default();
    let issuer_trusted = pem_certificates(&signed.ca)
        .first()
        .is_some_and(|ca| pem_certificates(&trusted).contains(ca));
    Ok(Renewed {
        info: cert_info(&dir.join(NODE_CERT))?,
        previous_serial: Some(current.serial),
        issuer_trusted,
    })
}

/// The DER certificates in a PEM text (none when it does not parse).
fn pem_certificates(text: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .filter_map(Result::ok)
        .map(|p| p.contents)
        .collect()
}

/// Writes `contents` to `path` through a synced temporary file renamed over it.
fn write_replacing(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".new");
    let temp = PathBuf::from(temp);
    // A leftover from an interrupted renewal is ours to replace.
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&temp)(e)),
        _ => {}
    }
    write_new(&temp, contents, mode)?;
    std::fs::rename(&temp, path).map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// What a node certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Node code from the URI SAN, if present.
    pub node: Option<NodeCode>,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
    /// Serial number, lowercase hex (as revocations name it).
    pub serial: String,
}

/// Certificates expiring within this many days draw a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

impl CertInfo {
    /// A warning for an operator when the certificate is expired, not yet valid or expires
    /// within [`EXPIRY_WARNING_DAYS`] of `now` (seconds since the epoch); `None` when it
    /// is fine.
    pub fn validity_warning(&self, now: i64) -> Option<String> {
        let date = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0).map_or_else(
                || t.to_string(),
                |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
            )
        };
        let renew = "renew it at the network CA (`lmsync pki renew`) and send the node SIGHUP";
        if now > self.not_after {
            Some(format!(
                "the certificate expired on {}: {renew}",
                date(self.not_after)
            ))
        } else if now < self.not_before {
            Some(format!(
                "the certificate is not valid until {}: check this machine's clock",
                date(self.not_before)
            ))
        } else if self.not_after - now < EXPIRY_WARNING_DAYS * 86_400 {
            let days = (self.not_after - now) / 86_400;
            Some(format!(
                "the certificate expires on {} (in {days} days): {renew}",
                date(self.not_after)
            ))
        } else {
            None
        }
    }
}

/// The node certificate in force on a running node, replaced when it reloads its TLS files.
#[derive(Debug, Default)]
pub struct CurrentCertificate(std::sync::RwLock<Option<CertInfo>>);

impl CurrentCertificate {
    /// Holding `info`.
    pub fn new(info: CertInfo) -> Self {
        CurrentCertificate(std::sync::RwLock::new(Some(info)))
    }

    /// The certificate in force, if known.
    pub fn get(&self) -> Option<CertInfo> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `info` in force.
    pub fn replace(&self, info: CertInfo) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(info);
    }
}

/// The node code a DER certificate binds (its `urn:lmsync:node:` URI SAN), if any.
pub fn node_of_der(der: &[u8]) -> Option<NodeCode> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    node_of(&cert)
}

/// True when the PEM certificate at `cert` was signed by the PEM CA certificate at `ca`.
pub fn issued_by(cert: &Path, ca: &Path) -> Result<bool, PkiError> {
    let (cert_pem, ca_pem) = (read(cert)?, read(ca)?);
    let parse = |text: &str, path: &Path| {
        x509_parser::pem::parse_x509_pem(text.as_bytes())
            .map(|(_, pem)| pem)
            .map_err(|_| PkiError::BadCertificate(path.to_path_buf()))
    };
    let (cert_pem, ca_pem) = (parse(&cert_pem, cert)?, parse(&ca_pem, ca)?);
    let bad = |path: &Path| PkiError::BadCertificate(path.to_path_buf());
    let cert_x509 = cert_pem.parse_x509().map_err(|_| bad(cert))?;
    let ca_x509 = ca_pem.parse_x509().map_err(|_| bad(ca))?;
    Ok(cert_x509
        .verify_signature(Some(ca_x509.public_key()))
        .is_ok())
}

/// Reads the node code, validity and serial from a PEM certificate file.
pub fn cert_info(path: &Path) -> Result<CertInfo, PkiError> {
    let pem = read(path)?;
    let bad = || PkiError::BadCertificate(path.to_path_buf());
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| bad())?;
    info_of_der(&pem.contents).ok_or_else(bad)
}

/// The node code, validity and serial of a DER certificate (a peer's, as TLS verified it).
pub fn info_of_der(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(CertInfo {
        node: node_of(&cert),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        serial: crate::core::model::revocation::serial_hex(cert.raw_serial()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_node_certificate_binding_the_code() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        init_ca(&ca).unwrap();
        let node: NodeCode = "440100".parse().unwrap();
        let out = dir.path().join("440100");
        issue(&ca, node, &out, 2).unwrap();
        let info = cert_info(&out.join(NODE_CERT)).unwrap();
        assert_eq!(info.node, Some(node));
        assert!(info.not_after > chrono::Utc::now().timestamp() + 365 * 86_400);
        assert!(
            !out.join(CA_KEY).exists(),
            "the CA key never leaves the CA directory"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(out.join(NODE_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(ca.join(CA_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path()).unwrap();
        assert!(matches!(init_ca(dir.path()), Err(PkiError::Exists(_))));
        let node: NodeCode = "440000".parse().unwrap();
        let out = dir.path().join("n");
        issue(dir.path(), node, &out, 1).unwrap();
        assert!(matches!(
            issue(dir.path(), node, &out, 1),
            Err(PkiError::Exists(_))
        ));
    }
}

/// Document signatures made with certificates this module issues, and renewal.
#[cfg(test)]
mod signature_tests;
