//! NumPy's `.npy` files (format versions 1, 2 and 3, as `numpy.save` writes them):
//! the magic `\x93NUMPY`, a version, a header length (2 bytes in v1, 4 in v2 and v3),
//! a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
//! padded with spaces to a newline, then the values in C order.
//!
//! Read: little-endian (or byte-sized) f32, f64, u8, i32 and i64, in C order. Refused with
//! an error naming the file and saying what to write instead: big-endian data, Fortran
//! order, other dtypes, and a header that does not match the file's size (checked before
//! anything is allocated, so a lying header costs nothing).

use std::io::Read;
use std::path::Path;

use crate::DataError;

/// The longest header read: NumPy's own are under 200 bytes; a longer one is not an
/// array header this reader should trust.
const MAX_HEADER_BYTES: usize = 1 << 16;

/// The values of an array, in their stored type.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyValues {
    /// `<f4`.
    F32(Vec<f32>),
    /// `<f8`.
    F64(Vec<f64>),
    /// `|u1`.
    U8(Vec<u8>),
    /// `<i4`.
    I32(Vec<i32>),
    /// `<i8`.
    I64(Vec<i64>),
}

/// An array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The dimensions (empty for a scalar).
    pub shape: Vec<usize>,
    /// The values in C (row-major) order.
    pub values: NpyValues,
}

impl NpyArray {
    /// Every value as f32 (f64 and the 64-bit integers rounded to the nearest f32).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.values {
            NpyValues::F32(v) => v.clone(),
            NpyValues::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyValues::U8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyValues::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyValues::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// Reads the `.npy` file at `path`.
pub fn read_npy(path: &Path) -> Result<NpyArray, DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let invalid = |message: String| DataError::invalid(path, message);
    // A regular file only: opening a FIFO would block.
    let (mut file, file_len) = crate::files::open(path)?;
    let mut preamble = [0u8; 8];
    file.read_exact(&mut preamble).map_err(|_| invalid("not a .npy file: shorter than its 8-byte preamble".into()))?;
    if &preamble[..6] != b"\x93NUMPY" {
        return Err(invalid("not a .npy file: it does not start with \\x93NUMPY".into()));
    }
    let (major, minor) = (preamble[6], preamble[7]);
    let length_bytes = match major {
        1 => 2,
        2 | 3 => 4,
        _ => return Err(invalid(format!(".npy format version {major}.{minor} is not one of 1.0, 2.0, 3.0"))),
    };
    let mut length = [0u8; 4];
    file.read_exact(&mut length[..length_bytes]).map_err(|_| invalid("truncated .npy header".into()))?;
    let header_len = u32::from_le_bytes(length) as usize;
    if header_len > MAX_HEADER_BYTES {
        return Err(invalid(format!(
            "the .npy header claims {header_len} bytes (at most {MAX_HEADER_BYTES} are read)"
        )));
    }
    let mut header = vec![0u8; header_len];
    file.read_exact(&mut header)
        .map_err(|_| invalid(format!("truncated .npy header (it claims {header_len} bytes)")))?;
    let header = String::from_utf8(header).map_err(|_| invalid("the .npy header is not text".into()))?;
    let (dtype, shape) = parse_header(&header).map_err(invalid)?;
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let data_len = count.and_then(|n| n.checked_mul(dtype.size())).and_then(|b| u64::try_from(b).ok());
    let header_end = (6 + 2 + length_bytes + header_len) as u64;
    let available = file_len.saturating_sub(header_end);
    match data_len {
        Some(expected) if expected == available => {}
        _ => {
            let claimed = format!("shape {shape:?} of {}-byte values", dtype.size());
            return Err(invalid(format!(
                "the header promises {claimed}, but the file holds {available} bytes of data"
            )));
        }
    }
    let mut bytes = Vec::with_capacity(available as usize);
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(NpyArray { shape, values: dtype.decode(&bytes) })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    F32,
    F64,
    U8,
    I32,
    I64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }

    fn decode(self, bytes: &[u8]) -> NpyValues {
        fn each<const N: usize, T>(bytes: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
            bytes.chunks_exact(N).map(|c| from(c.try_into().expect("chunks of N"))).collect()
        }
        match self {
            Dtype::F32 => NpyValues::F32(each(bytes, f32::from_le_bytes)),
            Dtype::F64 => NpyValues::F64(each(bytes, f64::from_le_bytes)),
            Dtype::U8 => NpyValues::U8(bytes.to_vec()),
            Dtype::I32 => NpyValues::I32(each(bytes, i32::from_le_bytes)),
            Dtype::I64 => NpyValues::I64(each(bytes, i64::from_le_bytes)),
        }
    }
}

/// The dtype and shape of a header dict; an error says what is wrong and what to do.
fn parse_header(header: &str) -> Result<(Dtype, Vec<usize>), String> {
    let descr = dict_value(header, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let dtype = match descr {
        "<f4" => Dtype::F32,
        "<f8" => Dtype::F64,
        "|u1" | "<u1" | ">u1" => Dtype::U8,
        "<i4" => Dtype::I32,
        "<i8" => Dtype::I64,
        big if big.starts_with('>') => {
            return Err(format!(
                "big-endian values ('{big}') are not read: save a little-endian copy, e.g. \
                 np.save(path, array.astype(array.dtype.newbyteorder('<')))"
            ))
        }
        other => {
            return Err(format!(
                "dtype '{other}' is not read (float32, float64, uint8, int32 or int64): convert it, \
                 e.g. np.save(path, array.astype(np.float32))"
            ))
        }
    };
    match dict_value(header, "fortran_order")? {
        "False" => {}
        "True" => {
            return Err("the array is stored in Fortran order: save it in C order, \
                        e.g. np.save(path, np.ascontiguousarray(array))"
                .into())
        }
        other => return Err(format!("fortran_order is '{other}', not True or False")),
    }
    let shape = dict_value(header, "shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("shape '{shape}' is not a tuple"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<usize>().map_err(|_| format!("shape dimension '{d}' is not a count")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((dtype, shape))
}

/// The text of `key`'s value in a flat dict literal: up to the next top-level comma.
fn dict_value<'h>(header: &'h str, key: &str) -> Result<&'h str, String> {
    let missing = || format!("the header has no '{key}' (header: {})", header.trim());
    let start = ["'", "\""]
        .iter()
        .find_map(|quote| header.find(&format!("{quote}{key}{quote}")).map(|at| at + key.len() + 2))
        .ok_or_else(missing)?;
    let rest = header[start..].trim_start().strip_prefix(':').ok_or_else(missing)?.trim_start();
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            ',' | '}' if depth == 0 => return Ok(rest[..i].trim()),
            _ => {}
        }
    }
    Err(format!("the header's '{key}' is not terminated (header: {})", header.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file as `numpy.save` writes it: the dict, spaces and a newline padding the
    /// preamble and header to a multiple of 64 bytes (checked byte for byte against NumPy
    /// 2.4.6 for `np.save(f, np.arange(6, dtype="<f4").reshape(2, 3))`).
    fn npy(version: u8, descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let fortran = if fortran { "True" } else { "False" };
        let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
        let length_bytes = if version == 1 { 2 } else { 4 };
        let unpadded = 8 + length_bytes + dict.len() + 1;
        dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
        dict.push('\n');
        let mut bytes = b"\x93NUMPY".to_vec();
        bytes.extend([version, 0]);
        match version {
            1 => bytes.extend((dict.len() as u16).to_le_bytes()),
            _ => bytes.extend((dict.len() as u32).to_le_bytes()),
        }
        bytes.extend(dict.as_bytes());
        bytes.extend(data);
        bytes
    }

    fn read(bytes: &[u8]) -> Result<NpyArray, DataError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("array.npy");
        std::fs::write(&path, bytes).expect("write");
        read_npy(&path)
    }

    fn le<T: Copy, const N: usize>(values: &[T], to: fn(T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(|&v| to(v)).collect()
    }

    #[test]
    fn reads_each_version_and_dtype() {
        let f32s = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        let array = read(&npy(1, "<f4", false, "(2, 3)", &le(&f32s, f32::to_le_bytes))).expect("v1 f4");
        assert_eq!((array.shape, array.values), (vec![2, 3], NpyValues::F32(f32s.to_vec())));
        let f64s = [1.5f64, -2.25, 1e300];
        let array = read(&npy(2, "<f8", false, "(3,)", &le(&f64s, f64::to_le_bytes))).expect("v2 f8");
        assert_eq!((array.shape, array.values), (vec![3], NpyValues::F64(f64s.to_vec())));
        let array = read(&npy(3, "|u1", false, "(2, 1, 2)", &[0, 7, 255, 13])).expect("v3 u1");
        assert_eq!((array.shape, array.values), (vec![2, 1, 2], NpyValues::U8(vec![0, 7, 255, 13])));
        let i64s = [-1i64, 12, 1 << 40];
        let array = read(&npy(1, "<i8", false, "(3,)", &le(&i64s, i64::to_le_bytes))).expect("i8");
        assert_eq!(array.values, NpyValues::I64(i64s.to_vec()));
        assert_eq!(array.to_f32(), [-1.0, 12.0, (1u64 << 40) as f32]);
        let i32s = [-5i32, 255];
        let array = read(&npy(1, "<i4", false, "(1, 2)", &le(&i32s, i32::to_le_bytes))).expect("i4");
        assert_eq!(array.values, NpyValues::I32(i32s.to_vec()));
        let scalar = read(&npy(1, "<f8", false, "()", &le(&[2.5f64], f64::to_le_bytes))).expect("scalar");
        assert_eq!((scalar.to_f32(), scalar.shape), (vec![2.5], vec![]));
        let empty = read(&npy(1, "<f4", false, "(0, 3)", &[])).expect("empty");
        assert_eq!((empty.shape, empty.values), (vec![0, 3], NpyValues::F32(vec![])));
    }

    #[test]
    fn the_fixture_pads_as_numpy_does() {
        let bytes = npy(1, "<f4", false, "(2, 3)", &[0; 24]);
        assert_eq!(bytes.len() - 24, 128);
        assert_eq!(&bytes[..10], b"\x93NUMPY\x01\x00v\x00");
        assert_eq!(bytes[127], b'\n');
    }

    fn refusal(bytes: &[u8]) -> String {
        read(bytes).expect_err("refused").to_string()
    }

    #[test]
    fn refuses_what_it_cannot_read_and_says_what_to_do() {
        let data = [0u8; 8];
        let message = refusal(&npy(1, ">f4", false, "(2,)", &data));
        assert!(
            message.contains("array.npy") && message.contains("big-endian") && message.contains("'<'"),
            "{message}"
        );
        let message = refusal(&npy(1, "<f4", true, "(2,)", &data));
        assert!(message.contains("Fortran order") && message.contains("ascontiguousarray"), "{message}");
        let message = refusal(&npy(1, "<c8", false, "(1,)", &data));
        assert!(message.contains("dtype '<c8'") && message.contains("astype"), "{message}");
        let message = refusal(b"PK\x03\x04 a zip, not an array");
        assert!(message.contains("\\x93NUMPY"), "{message}");
        let mut future = npy(1, "<f4", false, "(2,)", &data);
        future[6] = 4;
        assert!(refusal(&future).contains("version 4.0"));
    }

    #[test]
    fn a_header_that_does_not_match_the_data_is_refused_before_allocating() {
        // Promises 10^12 f8 values (8 TB) over 16 bytes of data.
        let message = refusal(&npy(1, "<f8", false, "(1000000, 1000000)", &[0; 16]));
        assert!(message.contains("shape [1000000, 1000000]") && message.contains("holds 16 bytes"), "{message}");
        // Overflowing shapes, truncated data, and trailing bytes.
        let message = refusal(&npy(1, "<f8", false, "(18446744073709551615, 2)", &[0; 16]));
        assert!(message.contains("holds 16 bytes"), "{message}");
        assert!(refusal(&npy(1, "<f4", false, "(3,)", &[0; 8])).contains("holds 8 bytes"));
        assert!(refusal(&npy(1, "<f4", false, "(1,)", &[0; 8])).contains("holds 8 bytes"));
        // A header length beyond the file, or beyond what is trusted.
        let mut short = npy(2, "<f4", false, "(1,)", &[0; 4]);
        short[8..12].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(refusal(&short).contains("claims 100000 bytes"));
        short[8..12].copy_from_slice(&1_000u32.to_le_bytes());
        assert!(refusal(&short).contains("truncated .npy header"));
    }

    #[test]
    fn malformed_headers_name_the_key() {
        let message = refusal(&npy(1, "<f4", false, "[2, 3]", &[0; 24]));
        assert!(message.contains("shape '[2, 3]' is not a tuple"), "{message}");
        let message = refusal(&npy(1, "<f4", false, "(2, x)", &[0; 24]));
        assert!(message.contains("dimension 'x'"), "{message}");
        let mut no_descr = npy(1, "<f4", false, "(1,)", &[0; 4]);
        let at = no_descr.windows(5).position(|w| w == b"descr").expect("descr");
        no_descr[at..at + 5].copy_from_slice(b"xxxxx");
        assert!(refusal(&no_descr).contains("no 'descr'"));
    }
}
