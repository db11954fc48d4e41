//! Reading from the file system the way every floor must, and reporting progress of long work.
//!
//! Configuration (rules, client registry, settings, TLS files, age recipients), snapshots and
//! dossiers are named by an operator or a deployment; a FIFO, device or directory under such a
//! name must be refused at once, not block start-up or fill memory. [`open_regular`] is the one
//! place that checks it; [`read_regular_file`] and [`read_config_text`] add a size cap for files
//! read whole. Used by the snapshot reader, `kbi-trust` (clients.toml), the service's settings and
//! TLS files, `kbi-import` (dossier files) and `kbi-premium` (recipient files).

use std::io::{self, Read};
use std::path::Path;

mod progress;

pub use progress::{Console, Progress, Silent};

/// Why [`open_regular`] refused a path.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// It could not be opened or examined (missing, no permission, …).
    #[error("{0}")]
    Io(io::Error),
    /// A FIFO, device, socket or directory: reading it could block forever or never end.
    #[error("it is a {kind}, not a regular file")]
    NotRegular { kind: &'static str },
}

impl From<OpenError> for io::Error {
    fn from(error: OpenError) -> io::Error {
        match error {
            OpenError::Io(error) => error,
            not_regular => io::Error::new(io::ErrorKind::InvalidInput, not_regular.to_string()),
        }
    }
}

/// What kind of file `file_type` describes, for an error message.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_fifo() {
        "FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Opens `path` for reading only if it is a regular file (a symbolic link to one is fine).
///
/// The type is checked before opening (opening a FIFO for reading blocks until a writer comes),
/// and again on the opened descriptor, which is what is read: the name may have been replaced
/// between the two. `O_NONBLOCK` makes the open itself return at once if it was replaced by a
/// FIFO meanwhile; on a regular file the flag has no effect on reads.
pub fn open_regular(path: &Path) -> Result<std::fs::File, OpenError> {
    open_checked(path, true)
}

/// [`open_regular`], but a symbolic link is refused too (`O_NOFOLLOW`, and `lstat` before):
/// for names found by listing a directory, where a link may point anywhere (the dossier
/// import reads only the regular files of an input directory).
pub fn open_regular_no_follow(path: &Path) -> Result<std::fs::File, OpenError> {
    open_checked(path, false)
}

fn open_checked(path: &Path, follow: bool) -> Result<std::fs::File, OpenError> {
    use std::os::unix::fs::OpenOptionsExt;
    let not_regular = |file_type| OpenError::NotRegular {
        kind: kind_of(file_type),
    };
    let before = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .map_err(OpenError::Io)?;
    if !before.is_file() {
        return Err(not_regular(before.file_type()));
    }
    let mut flags = libc::O_NONBLOCK;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(OpenError::Io)?;
    let opened = file.metadata().map_err(OpenError::Io)?;
    if !opened.is_file() {
        return Err(not_regular(opened.file_type()));
    }
    Ok(file)
}

/// The most a configuration file (rules, client registry, TLS files) may hold: they are a few kB.
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 << 20;

/// Reads a small file whole, only if it is a regular file and at most `max_bytes` long: a FIFO
/// or device named as a configuration file must not block start-up or fill memory.
pub fn read_regular_file(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is larger than {max_bytes} bytes"),
        ));
    }
    Ok(bytes)
}

/// [`read_regular_file`] as UTF-8 text, capped at [`MAX_CONFIG_FILE_BYTES`].
pub fn read_config_text(path: &Path) -> io::Result<String> {
    let bytes = read_regular_file(path, MAX_CONFIG_FILE_BYTES)?;
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_refused_by_kind_and_a_file_past_the_cap_by_size() {
        let dir = tempfile_dir();
        let error = read_regular_file(&dir, 10).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(error.to_string(), "it is a directory, not a regular file");
        let file = dir.join("eleven");
        std::fs::write(&file, b"hello world").unwrap();
        assert_eq!(read_regular_file(&file, 11).unwrap(), b"hello world");
        let error = read_regular_file(&file, 10).unwrap_err();
        assert_eq!(error.to_string(), "it is larger than 10 bytes");
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_config_text(&file).unwrap_err().to_string(),
            "it is not UTF-8 text"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symbolic_link_is_followed_only_when_asked() {
        // Its own directory: the other test removes `tempfile_dir()` while this one may run.
        let dir = std::env::temp_dir().join(format!("kbi-core-io-links-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(open_regular(&link).is_ok());
        assert!(open_regular_no_follow(&file).is_ok());
        let error = open_regular_no_follow(&link).unwrap_err();
        assert_eq!(
            error.to_string(),
            "it is a symbolic link, not a regular file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh directory of this test's own (kbi-core has no tempfile dependency).
    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kbi-core-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
