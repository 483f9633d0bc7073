//! The two keys of a server: the operator's admin key and the server key (the secret
//! that keys every stored digest and never enters the database). Each comes from the
//! environment (`POCKET_ADMIN_KEY`, `POCKET_SERVER_KEY`), which is how several nodes
//! on one PostgreSQL database share them, else from a file in the data directory,
//! created on first start with mode 0600 (`admin.key`, `server.key`).

use rand::RngCore;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads `path`, or creates it with `make()` (mode 0600). Returns the content and
/// whether it was created now.
fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> Result<(String, bool), String> {
    match std::fs::read_to_string(path) {
        Ok(s) => return Ok((s.trim().to_string(), false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let value = make();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(value.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((value, true))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The admin key: from `POCKET_ADMIN_KEY`, else `<data>/admin.key`. The second value
/// is true when the key was generated now (and should be printed once).
pub fn admin_key(data: &Path) -> Result<(String, bool), String> {
    if let Ok(k) = std::env::var("POCKET_ADMIN_KEY") {
        if k.len() < 16 {
            return Err(
                "invalid configuration: `POCKET_ADMIN_KEY`: must be at least 16 characters".into(),
            );
        }
        return Ok((k, false));
    }
    read_or_create(&data.join("admin.key"), || {
        format!("adm_{}", random_hex(24))
    })
}

/// The admin key the directory's server used: `POCKET_ADMIN_KEY`, else
/// `<data>/admin.key`, which must exist (nothing is created).
pub fn admin_key_existing(data: &Path) -> Result<String, String> {
    if let Ok(k) = std::env::var("POCKET_ADMIN_KEY") {
        return Ok(k);
    }
    let path = data.join("admin.key");
    std::fs::read_to_string(&path)
        .map(|k| k.trim().to_string())
        .map_err(|e| {
            format!(
                "no admin key: set POCKET_ADMIN_KEY or keep {} ({e})",
                path.display()
            )
        })
}

/// The 32-byte server key of `<data>/server.key`, which must exist.
pub fn server_key_file(data: &Path) -> Result<[u8; 32], String> {
    let path = data.join("server.key");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("{} must hold 32 bytes in hex", path.display()))
}

/// The 32-byte server key: `POCKET_SERVER_KEY` (64 hex digits), else
/// `<data>/server.key`.
pub fn server_key(data: &Path) -> Result<[u8; 32], String> {
    if let Ok(text) = std::env::var("POCKET_SERVER_KEY") {
        return hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                "invalid configuration: `POCKET_SERVER_KEY`: must be 64 hex digits (32 bytes)"
                    .to_string()
            });
    }
    let path = data.join("server.key");
    let (text, _) = read_or_create(&path, || random_hex(32))?;
    let bytes = hex::decode(&text).map_err(|_| format!("{} is not hex", path.display()))?;
    bytes
        .try_into()
        .map_err(|_| format!("{} must hold 32 bytes", path.display()))
}

/// What a database remembers of the keys it was written with, so that a node started
/// with other keys refuses to serve instead of failing every sign-in: keyed digests
/// under the server key of a fixed text and of the admin key's digest (neither
/// reveals a key, and a weak admin key cannot be guessed from a dump).
pub fn checks(server_key: &[u8; 32], admin_digest: &[u8; 32]) -> Vec<(&'static str, String)> {
    use hmac::{Hmac, Mac};
    let keyed = |what: &[u8]| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(server_key).expect("any key length");
        mac.update(what);
        hex::encode(mac.finalize().into_bytes())
    };
    vec![
        (
            "server_key",
            keyed(b"pocket: the server key this database was written with"),
        ),
        (
            "admin_key",
            keyed(&[b"pocket: the admin key: ".as_slice(), admin_digest].concat()),
        ),
    ]
}
