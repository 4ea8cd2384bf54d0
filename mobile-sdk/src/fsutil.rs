//! Durability helpers: a file is not saved until its bytes and its directory entry are synced.

use crate::error::SdkError;
use std::fs;
use std::path::Path;

/// Syncs a directory so a file created or renamed in it survives power loss.
pub fn sync_dir(dir: &Path) -> Result<(), SdkError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SdkError::io("syncing a folder", e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `to` through a temp name, fsyncs, then renames into place, so `to`
/// either does not exist or holds all of them.
pub fn write_durably(bytes: &[u8], to: &Path) -> Result<(), SdkError> {
    use std::io::Write;
    let tmp = to.with_extension("partial");
    let mut file =
        fs::File::create(&tmp).map_err(|e| SdkError::io("creating the queued photo", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| SdkError::io("writing the queued photo", e))?;
    fs::rename(&tmp, to).map_err(|e| SdkError::io("moving the photo into the queue", e))?;
    match to.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}
