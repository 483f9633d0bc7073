//! Key files in the data directory, created on first start with mode 0600:
//! `admin.key` (the operator's key, unless `POCKET_ADMIN_KEY` is set) and
//! `server.key` (the server-side secret that never enters the database).

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

/// The 32-byte server key.
pub fn server_key(data: &Path) -> Result<[u8; 32], String> {
    let path = data.join("server.key");
    let (text, _) = read_or_create(&path, || random_hex(32))?;
    let bytes = hex::decode(&text).map_err(|_| format!("{} is not hex", path.display()))?;
    bytes
        .try_into()
        .map_err(|_| format!("{} must hold 32 bytes", path.display()))
}
