//! Opening data files safely: only regular files are read, text is read with a cap on the
//! length of one line, and class names taken from data have their control characters escaped.
//!
//! Devices and FIFOs are refused from their metadata, before they are opened: `/dev/zero`
//! never ends, and opening a FIFO blocks until some other process writes to it.
//!
//! ```
//! use mtl_data::files::describe;
//! let file_type = std::fs::metadata("/dev/null")?.file_type();
//! assert_eq!(describe(file_type), "a character device");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::borrow::Cow;
use std::fs::{File, FileType};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::DataError;

/// The longest line read from a text file, in bytes: 16 MiB. A line is one example of a
/// line-per-class file, one JSONL object, one CSV/TSV record, or one aclImdb review; a longer
/// one is refused with an error naming the file and the line. Real examples are kilobytes
/// long, so a line this long is a file of another kind (or `/dev/zero`-like data), and
/// refusing it early keeps memory bounded.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// The cap as the messages give it.
const MAX_LINE_TEXT: &str = "16 MiB";

/// What `file_type` is, in words: "a regular file", "a folder", "a character device", …
pub fn describe(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_file() {
        "a regular file"
    } else if file_type.is_dir() {
        "a folder"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// What `path` is expected to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    File,
    Folder,
    FileOrFolder,
}

/// Checks from its metadata (following symbolic links, without opening it) that `path` is what
/// is expected; answers whether it is a folder.
pub(crate) fn check_kind(path: &Path, expected: Expected) -> Result<bool, DataError> {
    let file_type = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?.file_type();
    let wanted = match expected {
        Expected::File if file_type.is_file() => return Ok(false),
        Expected::Folder if file_type.is_dir() => return Ok(true),
        Expected::FileOrFolder if file_type.is_file() || file_type.is_dir() => return Ok(file_type.is_dir()),
        Expected::File => "not a regular file",
        Expected::Folder => "not a folder",
        Expected::FileOrFolder => "not a file or a folder",
    };
    Err(DataError::invalid(path, format!("{}, {wanted}", describe(file_type))))
}

/// Opens a regular file (checked before opening, and again once open in case the path changed
/// in between); answers the file and its length.
pub(crate) fn open(path: &Path) -> Result<(File, u64), DataError> {
    check_kind(path, Expected::File)?;
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let metadata = file.metadata().map_err(|e| DataError::io(path, e))?;
    if !metadata.is_file() {
        let message = format!("{}, not a regular file", describe(metadata.file_type()));
        return Err(DataError::invalid(path, message));
    }
    Ok((file, metadata.len()))
}

/// The bytes of a regular file.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    let (mut file, len) = open(path)?;
    let mut bytes = Vec::with_capacity(capacity_hint(len));
    file.read_to_end(&mut bytes).map_err(|e| DataError::io(path, e))?;
    Ok(bytes)
}

/// The bytes of a regular text file, refused at the first line longer than [`MAX_LINE_BYTES`]
/// without reading further.
pub(crate) fn read_text(path: &Path) -> Result<Vec<u8>, DataError> {
    let (file, len) = open(path)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut bytes = Vec::with_capacity(capacity_hint(len));
    let mut line_number = 1u64;
    loop {
        let line = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| DataError::io(path, e))?;
        if line == 0 {
            return Ok(bytes);
        }
        check_line(path, line_number, line - usize::from(bytes.last() == Some(&b'\n')), "line")?;
        line_number += 1;
    }
}

/// Refuses a line (or record, `what`) of `len` bytes over [`MAX_LINE_BYTES`].
pub(crate) fn check_line(path: &Path, line_number: u64, len: usize, what: &str) -> Result<(), DataError> {
    if len <= MAX_LINE_BYTES {
        return Ok(());
    }
    let message = format!("line {line_number}: a {what} of more than {MAX_LINE_TEXT}, the most one example may hold");
    Err(DataError::invalid(path, message))
}

/// A first allocation for a file of `len` bytes: its length, but not so much that a huge file
/// refused early (a long line, a lying header) reserves it all.
fn capacity_hint(len: u64) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX).min(64 << 20)
}

/// `name` with its control characters (U+0000–U+001F, U+007F–U+009F) written as Rust escapes
/// (`\n`, `\t`, `\u{1b}`), so that a class name taken from data (a folder or file name, a label)
/// cannot drive the terminal or split a line of output. Other characters are kept as they are.
/// Escaped rather than refused: the data set may not be the user's to rename, and the escaped
/// name still tells the classes apart and shows where the odd character is.
pub fn escape_control(name: &str) -> Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return Cow::Borrowed(name);
    }
    let mut escaped = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// Escapes `names` with [`escape_control`], refusing two that become the same (`a<newline>`
/// and a literal `a\n`) rather than merging their classes; `path` names the data set.
pub(crate) fn escaped_class_names(path: &Path, names: Vec<String>) -> Result<Vec<String>, DataError> {
    if !names.iter().any(|name| name.chars().any(char::is_control)) {
        return Ok(names);
    }
    let escaped: Vec<String> = names.iter().map(|name| escape_control(name).into_owned()).collect();
    for (idx, name) in escaped.iter().enumerate() {
        if let Some(other) = escaped[..idx].iter().position(|earlier| earlier == name) {
            let message = format!(
                "class names {:?} and {:?} are both {name} once control characters are escaped",
                names[other], names[idx]
            );
            return Err(DataError::invalid(path, message));
        }
    }
    Ok(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_control_escapes_only_control_characters() {
        let cases = [
            ("plain", "plain"),
            ("café ☕", "café ☕"),
            ("a\nb", "a\\nb"),
            ("tab\there", "tab\\there"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("nul\0", "nul\\u{0}"),
            ("c1\u{9b}", "c1\\u{9b}"),
            ("back\\slash", "back\\slash"),
        ];
        for (name, expected) in cases {
            assert_eq!(escape_control(name), expected, "{name:?}");
        }
    }

    #[test]
    fn read_text_checks_every_line_and_keeps_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, b"a\r\nbb\n\nccc").unwrap();
        assert_eq!(read_text(&path).unwrap(), b"a\r\nbb\n\nccc");
        let long = [&b"x\n"[..], &vec![b'y'; MAX_LINE_BYTES], b"\n", &vec![b'z'; MAX_LINE_BYTES + 1]].concat();
        std::fs::write(&path, long).unwrap();
        let message = read_text(&path).unwrap_err().to_string();
        assert!(
            message.ends_with("f.txt: line 3: a line of more than 16 MiB, the most one example may hold"),
            "{message}"
        );
    }

    #[test]
    fn check_kind_names_what_the_path_is() {
        let dir = tempfile::tempdir().unwrap();
        let message = check_kind(dir.path(), Expected::File).unwrap_err().to_string();
        assert!(message.ends_with(": a folder, not a regular file"), "{message}");
        assert!(check_kind(dir.path(), Expected::Folder).unwrap());
        let message = check_kind("/dev/null".as_ref(), Expected::FileOrFolder).unwrap_err().to_string();
        assert_eq!(message, "/dev/null: a character device, not a file or a folder");
        let absent = dir.path().join("absent");
        assert!(matches!(check_kind(&absent, Expected::File), Err(DataError::Io { .. })));
    }
}
