//! A file the user gives us (the config file, a theme): read safely, and its problems located
//! for the user. A user file must be a regular file of at most [`MAX_USER_FILE_BYTES`]: a FIFO,
//! a device (`/dev/zero`) or a directory is refused at once, with a message, never read until
//! memory runs out or blocked on.

use std::{
    fmt,
    fs::File,
    io::Read,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

/// The largest config or theme file read, bytes (real ones are a few KiB).
pub const MAX_USER_FILE_BYTES: u64 = 1 << 20;

/// Reads the user file at `path` as UTF-8 text. `what` names it in messages ("config file").
/// Opens without blocking (a FIFO never hangs the open), refuses anything but a regular file,
/// and reads at most [`MAX_USER_FILE_BYTES`] + 1 bytes, so a file that is too large — or grows
/// while it is read — is refused rather than read whole.
pub fn read_bounded(path: &Path, what: &str) -> Result<String, FileError> {
    let cannot =
        |detail: String| FileError::whole(path, format!("cannot read the {what}: {detail}"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| cannot(e.to_string()))?;
    let metadata = file.metadata().map_err(|e| cannot(e.to_string()))?;
    if !metadata.is_file() {
        return Err(cannot(format!(
            "it is {}, not a regular file",
            file_kind(&metadata.file_type())
        )));
    }
    if metadata.len() > MAX_USER_FILE_BYTES {
        return Err(too_large(path, what, metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    File::take(file, MAX_USER_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(e.to_string()))?;
    if bytes.len() as u64 > MAX_USER_FILE_BYTES {
        return Err(too_large(path, what, bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        cannot(format!(
            "it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn too_large(path: &Path, what: &str, bytes: u64) -> FileError {
    FileError::whole(
        path,
        format!("the {what} is too large ({bytes} bytes or more; at most {MAX_USER_FILE_BYTES})"),
    )
}

/// What a non-regular file is, in words.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// A problem in a config or theme file, located for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong (and what would be valid).
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.path.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for FileError {}

impl FileError {
    /// An error at byte `offset` of `text` (the file's content).
    pub fn at(path: &Path, text: &str, offset: usize, message: impl Into<String>) -> FileError {
        FileError {
            path: path.to_path_buf(),
            location: Some(line_and_column(text, offset)),
            message: message.into(),
        }
    }

    /// An error about the file as a whole (e.g. it cannot be read).
    pub fn whole(path: &Path, message: impl Into<String>) -> FileError {
        FileError {
            path: path.to_path_buf(),
            location: None,
            message: message.into(),
        }
    }

    /// A TOML parse or deserialisation error, located by its span.
    pub fn from_toml(path: &Path, text: &str, error: &toml::de::Error) -> FileError {
        // toml's messages end with a newline and sometimes repeat the key; keep the first line.
        let message = error
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .trim();
        match error.span() {
            Some(span) => FileError::at(path, text, span.start, message),
            None => FileError::whole(path, message),
        }
    }
}

/// 1-based (line, column) of byte `offset` in `text`; the column counts characters.
pub fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 6), (2, 1));
        assert_eq!(line_and_column(text, 11), (2, 6));
        assert_eq!(line_and_column(text, 999), (3, 1));
    }

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("bpftop-user-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small.toml");
        std::fs::write(&small, "mode = \"ring\"\n").unwrap();
        assert_eq!(
            read_bounded(&small, "config file").unwrap(),
            "mode = \"ring\"\n"
        );
        let big = dir.join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_USER_FILE_BYTES as usize + 1]).unwrap();
        let error = read_bounded(&big, "config file").unwrap_err();
        assert!(error.message.contains("too large"), "{error}");
        let error = read_bounded(&dir, "config file").unwrap_err();
        assert!(error.message.contains("a directory"), "{error}");
        let error = read_bounded(Path::new("/dev/zero"), "theme file").unwrap_err();
        assert!(error.message.contains("a character device"), "{error}");
        let binary = dir.join("binary.toml");
        std::fs::write(&binary, [b'a', 0xff, b'b']).unwrap();
        let error = read_bounded(&binary, "config file").unwrap_err();
        assert!(error.message.contains("offset 1"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A regular file larger than its size says (`/proc/kallsyms`: size 0, megabytes of text)
    /// passes the fstat check; the bounded read still stops at the limit + 1 byte.
    #[test]
    fn a_file_larger_than_its_size_says_is_caught_by_the_bounded_read() {
        let path = Path::new("/proc/kallsyms");
        let Ok(metadata) = std::fs::metadata(path) else {
            eprintln!("skipped: no /proc/kallsyms");
            return;
        };
        let len = std::fs::read(path).map_or(0, |bytes| bytes.len() as u64);
        if !metadata.is_file() || metadata.len() != 0 || len <= MAX_USER_FILE_BYTES {
            eprintln!("skipped: /proc/kallsyms is not a large file of size 0 here");
            return;
        }
        let error = read_bounded(path, "config file").unwrap_err();
        assert!(
            error.message.contains(&format!(
                "too large ({} bytes or more",
                MAX_USER_FILE_BYTES + 1
            )),
            "{error}"
        );
    }
}
