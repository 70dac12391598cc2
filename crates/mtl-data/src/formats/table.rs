//! Tables: CSV or TSV rows of numeric and categorical feature columns with a class
//! column, one or several regression target columns, or one 0/1 column per label.
//!
//! Numeric columns are read as written and categorical ones as names; [`crate::prepare::table_task`]
//! standardises the numeric columns on the training split and makes each categorical
//! column one 0/1 value per category of the training split ([`Categories`]: a category
//! only val or test has is all zeros).
//! Every bad cell is an error naming the file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::text::delimited::{column_index, csv_error, decoded_text, reader};
use super::text::{classes_of, Column, LabelClasses, SplitFiles, MAX_CLASSES};
use crate::{files, DataError, LoadReport, Sourced, TableRows, Targets};

/// At most this many values per row (numeric columns plus every category): more is a
/// wrong column (an id, a free-text field).
pub const MAX_WIDTH: usize = 100_000;

/// At most this many feature values in all (rows × width, 4 bytes each: 1 GiB).
pub const MAX_VALUES: usize = 1 << 28;

/// The categories of each categorical column, sorted, as the training rows have them;
/// each category's position for the one-hot encoding.
#[derive(Clone, Debug)]
pub struct Categories {
    names: Vec<Vec<String>>,
    positions: Vec<HashMap<String, usize>>,
}

impl Categories {
    /// The categories of the training rows `indices` of `rows`.
    pub fn of(rows: &TableRows, indices: &[usize]) -> Categories {
        let k = rows.categorical.len();
        let names: Vec<Vec<String>> = (0..k)
            .map(|c| {
                let mut names: Vec<String> = indices.iter().map(|&i| rows.categories[i * k + c].clone()).collect();
                names.sort_unstable();
                names.dedup();
                names
            })
            .collect();
        let positions =
            names.iter().map(|names| names.iter().enumerate().map(|(i, name)| (name.clone(), i)).collect()).collect();
        Categories { names, positions }
    }

    /// The one-hot columns' categories, then the embedded columns'.
    fn split_at_embedded(&self, rows: &TableRows) -> (&[Vec<String>], &[Vec<String>]) {
        self.names.split_at(self.names.len() - rows.n_embedded)
    }

    /// Values per row: `rows`' numeric columns, one per category of each one-hot column,
    /// then one id per embedded column.
    pub fn width(&self, rows: &TableRows) -> usize {
        let (one_hot, embedded) = self.split_at_embedded(rows);
        rows.n_numeric + one_hot.iter().map(Vec::len).sum::<usize>() + embedded.len()
    }

    /// The embedding the embedded columns need, `dim` wide: each column has its
    /// categories' rows and one for a category the training rows lack.
    pub fn embedded(&self, rows: &TableRows, dim: usize) -> crate::Embedded {
        let (_, embedded) = self.split_at_embedded(rows);
        let n_rows = embedded.iter().map(|names| names.len() + 1).sum();
        crate::Embedded { columns: embedded.len(), rows: n_rows, dim: if embedded.is_empty() { 0 } else { dim } }
    }

    /// Why `n` rows of this width are too many, naming the categorical column with the most
    /// categories; `None` when they fit [`MAX_WIDTH`] and [`MAX_VALUES`].
    pub fn too_many(&self, rows: &TableRows, n: usize) -> Option<String> {
        let width = self.width(rows);
        if width <= MAX_WIDTH && n.saturating_mul(width) <= MAX_VALUES {
            return None;
        }
        let widest = rows.categorical.iter().zip(&self.names).max_by_key(|(_, names)| names.len());
        let culprit =
            widest.map_or(String::new(), |(column, names)| format!("; {column} has {} categories", names.len()));
        Some(format!(
            "{n} rows × {width} values per row after one-hot encoding is too many (at most {MAX_WIDTH} per row and \
             {MAX_VALUES} in all){culprit}: is a categorical column an id?"
        ))
    }

    /// The rows `indices` of `rows` as features: the numeric values (as given), each
    /// one-hot column's categories, then each embedded column's id: column j's category p
    /// (in sorted order) is `offset_j + 1 + p` and one the training rows lack `offset_j`,
    /// where `offset_j` counts the rows of the columns before it.
    pub fn encode(&self, rows: &TableRows, indices: &[usize], numeric: &[f32]) -> Vec<f32> {
        let (n_numeric, k) = (rows.n_numeric, rows.categorical.len());
        let one_hot = k - rows.n_embedded;
        let mut features = Vec::with_capacity(indices.len() * self.width(rows));
        for (r, &i) in indices.iter().enumerate() {
            features.extend_from_slice(&numeric[r * n_numeric..(r + 1) * n_numeric]);
            let mut offset = 0;
            for (c, (names, positions)) in self.names.iter().zip(&self.positions).enumerate() {
                let position = positions.get(&rows.categories[i * k + c]);
                if c < one_hot {
                    let start = features.len();
                    features.resize(start + names.len(), 0.0);
                    if let Some(&p) = position {
                        features[start + p] = 1.0;
                    }
                } else {
                    // Ids are below 2^24 (MAX_WIDTH), exact as f32.
                    features.push((offset + position.map_or(0, |&p| p + 1)) as f32);
                    offset += names.len() + 1;
                }
            }
        }
        features
    }
}

/// What a table's rows are labelled with.
#[derive(Clone, Debug, PartialEq)]
pub enum TableTarget {
    /// One class column (classification).
    Class {
        /// The column.
        column: Column,
        /// How its values become classes.
        classes: LabelClasses,
        /// The values that make the positive class, if the column is made binary: two
        /// classes, `not <values>` and `<values>` (e.g. census-income's marital status as
        /// "Never married" or not, the MMoE paper's task).
        positive: Option<Vec<String>>,
    },
    /// Real-valued columns (regression), every cell a finite number.
    Values(Vec<Column>),
    /// One column per label (multi-label): 1 present; 0 or −1 (CelebA's) absent.
    Labels(Vec<Column>),
    /// One column holding each row's labels, separated by `separator` (multi-label; an
    /// empty cell is no label); the labels are those of all files together, sorted.
    LabelList {
        /// The column.
        column: Column,
        /// Between two labels of a cell, e.g. `|`.
        separator: char,
    },
}

/// How to read a table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableOptions {
    /// The field separator.
    pub delimiter: u8,
    /// The first row names the columns.
    pub has_header: bool,
    /// Whether double quotes enclose fields.
    pub quoting: bool,
    /// Numeric feature columns.
    pub numeric: Vec<Column>,
    /// Categorical feature columns (one-hot).
    pub categorical: Vec<Column>,
    /// Categorical feature columns given to the network as ids into a learned embedding.
    pub embedded: Vec<Column>,
    /// Width of each embedded column's embedding.
    pub embedding_dim: usize,
    /// The targets.
    pub target: TableTarget,
}

impl TableOptions {
    /// The columns read as category names: the one-hot ones, then the embedded ones.
    pub fn category_columns(&self) -> Vec<Column> {
        self.categorical.iter().chain(&self.embedded).cloned().collect()
    }
}

/// One file's cells: numeric features, category names, raw target cells, each with its line.
struct RawTable {
    numeric: Vec<f32>,
    categories: Vec<Vec<String>>,
    targets: Vec<String>,
    lines: Vec<u64>,
    target_names: Vec<String>,
}

/// Reads a table kept as one file or one file per split; the classes (for a class column)
/// are those of all files together, the categories those of the training file.
pub fn table(files: &SplitFiles, options: &TableOptions) -> Result<Sourced<TableRows>, DataError> {
    if options.numeric.is_empty() && options.categorical.is_empty() && options.embedded.is_empty() {
        return Err(DataError::invalid(&files.train, "no feature columns given (numeric, categorical or embedded)"));
    }
    let train = raw(&files.train, options)?;
    let val = files.val.as_deref().map(|p| raw(p, options).map(|t| (p, t))).transpose()?;
    let test = files.test.as_deref().map(|p| raw(p, options).map(|t| (p, t))).transpose()?;
    let mut splits = vec![(files.train.as_path(), train)];
    splits.extend(val);
    splits.extend(test);
    let (class_names, mut targets) = targets(&splits, &options.target)?;
    let categorical: Vec<String> = options.category_columns().iter().map(ToString::to_string).collect();
    let mut rows = splits.into_iter().map(|(_, t)| TableRows {
        numeric: t.numeric,
        n_numeric: options.numeric.len(),
        categories: t.categories.into_iter().flatten().collect(),
        categorical: categorical.clone(),
        n_embedded: options.embedded.len(),
        targets: targets.remove(0),
    });
    let train = rows.next().expect("the training file");
    let (val, test) = (files.val.as_ref().and_then(|_| rows.next()), files.test.as_ref().and_then(|_| rows.next()));
    let report = LoadReport {
        files_read: 1 + usize::from(val.is_some()) + usize::from(test.is_some()),
        ..LoadReport::default()
    };
    Ok(Sourced { class_names, train, val, test, report })
}

/// The output names and each file's targets.
fn targets(files: &[(&Path, RawTable)], target: &TableTarget) -> Result<(Vec<String>, Vec<Targets>), DataError> {
    match target {
        TableTarget::LabelList { separator, .. } => {
            let split = |cell: &str| -> Vec<String> {
                cell.split(*separator).map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
            };
            let mut names: Vec<String> =
                files.iter().flat_map(|(_, t)| t.targets.iter().flat_map(|c| split(c))).collect();
            names.sort_unstable();
            names.dedup();
            if names.is_empty() || names.len() > MAX_CLASSES {
                let message = format!("{} distinct labels in the label list (1 to {MAX_CLASSES})", names.len());
                return Err(DataError::invalid(files[0].0, message));
            }
            let position: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
            let width = names.len();
            let targets = files
                .iter()
                .map(|(_, t)| {
                    let mut labels = vec![0u8; t.targets.len() * width];
                    for (row, cell) in t.targets.iter().enumerate() {
                        split(cell).iter().for_each(|label| labels[row * width + position[label.as_str()]] = 1);
                    }
                    Targets::Binary { labels, width }
                })
                .collect();
            Ok((crate::files::escaped_class_names(files[0].0, names)?, targets))
        }
        TableTarget::Class { positive: Some(values), column, .. } => {
            let is_positive = |cell: &String| values.iter().any(|v| v == cell);
            if let Some(missing) = values.iter().find(|v| !files.iter().any(|(_, t)| t.targets.contains(v))) {
                let message = format!("positive value {missing:?} occurs in no row of {column}");
                return Err(DataError::invalid(files[0].0, message));
            }
            let joined = values.join(", ");
            let targets = files
                .iter()
                .map(|(_, t)| Targets::Classes(t.targets.iter().map(|c| u32::from(is_positive(c))).collect()))
                .collect();
            let names = vec![format!("not {joined}"), joined];
            Ok((crate::files::escaped_class_names(files[0].0, names)?, targets))
        }
        TableTarget::Class { classes, .. } => {
            let raw: Vec<Vec<(String, u64)>> =
                files.iter().map(|(_, t)| t.targets.iter().cloned().zip(t.lines.iter().copied()).collect()).collect();
            let labelled: Vec<(&Path, &[(String, u64)])> =
                files.iter().zip(&raw).map(|((path, _), raw)| (*path, raw.as_slice())).collect();
            let (names, labels) = classes_of(&labelled, *classes)?;
            Ok((names, labels.into_iter().map(Targets::Classes).collect()))
        }
        TableTarget::Values(_) | TableTarget::Labels(_) => {
            let names = files[0].1.target_names.clone();
            let width = names.len();
            let parsed = files
                .iter()
                .map(|(path, t)| {
                    let cell = |i: usize| (&t.targets[i], t.lines[i / width], &names[i % width]);
                    match target {
                        TableTarget::Values(_) => (0..t.targets.len())
                            .map(|i| {
                                let (text, line, column) = cell(i);
                                match text.parse::<f32>() {
                                    Ok(v) if v.is_finite() => Ok(v),
                                    _ => Err(DataError::invalid(
                                        path,
                                        format!("line {line}: target {column}: {text:?} is not a finite number"),
                                    )),
                                }
                            })
                            .collect::<Result<Vec<f32>, _>>()
                            .map(|values| Targets::Values { values, width }),
                        _ => (0..t.targets.len())
                            .map(|i| {
                                let (text, line, column) = cell(i);
                                match text.as_str() {
                                    "1" => Ok(1u8),
                                    "0" | "-1" => Ok(0u8),
                                    _ => Err(DataError::invalid(
                                        path,
                                        format!("line {line}: label {column}: {text:?} must be 1 (present), or 0 or -1 (absent)"),
                                    )),
                                }
                            })
                            .collect::<Result<Vec<u8>, _>>()
                            .map(|labels| Targets::Binary { labels, width }),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((names, parsed))
        }
    }
}

fn raw(path: &Path, options: &TableOptions) -> Result<RawTable, DataError> {
    let decoded = decoded_text(path)?;
    let (mut reader, header) = reader(path, &decoded.text, (options.delimiter, options.quoting, options.has_header))?;
    let csv_error = |e: csv::Error| csv_error(path, e);
    let indices = |columns: &[Column]| -> Result<Vec<usize>, DataError> {
        columns.iter().map(|c| column_index(path, c, header.as_ref())).collect()
    };
    let category_columns = options.category_columns();
    let (numeric, categorical) = (indices(&options.numeric)?, indices(&category_columns)?);
    let target_columns = match &options.target {
        TableTarget::Class { column, .. } | TableTarget::LabelList { column, .. } => vec![column.clone()],
        TableTarget::Values(columns) | TableTarget::Labels(columns) => columns.clone(),
    };
    if target_columns.is_empty() {
        return Err(DataError::invalid(path, "no target columns given"));
    }
    let targets = indices(&target_columns)?;
    let mut used: BTreeMap<usize, &Column> = BTreeMap::new();
    for (index, column) in (numeric.iter().zip(&options.numeric))
        .chain(categorical.iter().zip(&category_columns))
        .chain(targets.iter().zip(&target_columns))
    {
        if let Some(earlier) = used.insert(*index, column) {
            return Err(DataError::invalid(path, format!("{column} is used twice (also as {earlier})")));
        }
    }
    let target_names = target_columns
        .iter()
        .map(|c| match c {
            Column::Name(name) => name.clone(),
            Column::Index(i) => format!("column{i}"),
        })
        .collect();
    let mut table =
        RawTable { numeric: Vec::new(), categories: Vec::new(), targets: Vec::new(), lines: Vec::new(), target_names };
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line());
        files::check_line(path, line, record.as_slice().len(), "record")?;
        let field = |index: usize, column: &Column| {
            record.get(index).map(str::trim).ok_or_else(|| {
                DataError::invalid(path, format!("line {line}: row has {} fields, no {column}", record.len()))
            })
        };
        for (&index, column) in numeric.iter().zip(&options.numeric) {
            let text = field(index, column)?;
            match text.parse::<f32>() {
                Ok(v) if v.is_finite() => table.numeric.push(v),
                _ => {
                    let message = format!(
                        "line {line}: {column}: {text:?} is not a finite number (a column of names is categorical)"
                    );
                    return Err(DataError::invalid(path, message));
                }
            }
        }
        let row: Vec<String> = categorical
            .iter()
            .zip(&category_columns)
            .map(|(&index, column)| field(index, column).map(str::to_owned))
            .collect::<Result<_, _>>()?;
        table.categories.push(row);
        for (&index, column) in targets.iter().zip(&target_columns) {
            table.targets.push(field(index, column)?.to_owned());
        }
        table.lines.push(line);
    }
    if table.lines.is_empty() {
        return Err(DataError::invalid(path, "no rows"));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn names(columns: &[&str]) -> Vec<Column> {
        columns.iter().map(|c| Column::Name((*c).into())).collect()
    }

    fn options(target: TableTarget) -> TableOptions {
        TableOptions {
            delimiter: b',',
            has_header: true,
            quoting: true,
            numeric: names(&["age", "hours"]),
            categorical: names(&["job"]),
            embedded: Vec::new(),
            embedding_dim: 8,
            target,
        }
    }

    #[test]
    fn embedded_columns_are_ids_after_the_one_hot_values() {
        let dir = tempfile::tempdir().expect("dir");
        let text =
            "age,job,city,hours,y\n30,clerk,paris,40,1\n50,admin,rome,20,2\n41,clerk,oslo,35,3\n22,pilot,rome,10,4\n";
        let train = write(dir.path(), "train.csv", text);
        let options = TableOptions { embedded: names(&["city"]), ..options(TableTarget::Values(names(&["y"]))) };
        let read = table(&SplitFiles::one(&train), &options).expect("reads");
        assert_eq!(read.train.categorical, ["column 'job'", "column 'city'"]);
        assert_eq!(read.train.n_embedded, 1);
        // Training rows 0–2: job admin, clerk (one-hot); city oslo, paris, rome (ids).
        let categories = Categories::of(&read.train, &[0, 1, 2]);
        assert_eq!(categories.width(&read.train), 2 + 2 + 1);
        assert_eq!(categories.embedded(&read.train, 4), crate::Embedded { columns: 1, rows: 4, dim: 4 });
        // City ids: 0 is a city the training rows lack (row 3's rome is kept: rows 0-2 have it).
        let encoded = categories.encode(&read.train, &[1, 3], &[5., 6., 7., 8.]);
        assert_eq!(encoded, [5., 6., 1., 0., 3., 7., 8., 0., 0., 3.]);
        let only_paris = Categories::of(&read.train, &[0]);
        assert_eq!(only_paris.encode(&read.train, &[1], &[0., 0.]), [0., 0., 0., 0.]);
        assert_eq!(only_paris.embedded(&read.train, 4).rows, 2);
    }

    #[test]
    fn numeric_then_one_hot_with_training_categories() {
        let dir = tempfile::tempdir().expect("dir");
        let train = write(dir.path(), "train.csv", "age,job,hours,y\n30,clerk,40,1.5\n50,admin,20,-2\n41,clerk,35,0\n");
        let test = write(dir.path(), "test.csv", "age,job,hours,y\n22,pilot,10,3\n");
        let files = SplitFiles { train, val: None, test: Some(test) };
        let read = table(&files, &options(TableTarget::Values(names(&["y"])))).expect("reads");
        assert_eq!((read.train.n_numeric, read.train.numeric.clone()), (2, vec![30., 40., 50., 20., 41., 35.]));
        assert_eq!(read.train.categories, ["clerk", "admin", "clerk"]);
        // The categories of the training rows kept (rows 0 and 1), sorted: admin, clerk; one
        // only test has, or only an unkept training row, is all zeros.
        let categories = Categories::of(&read.train, &[0, 1]);
        assert_eq!(categories.width(&read.train), 4);
        assert_eq!(categories.encode(&read.train, &[1, 2], &[5., 6., 7., 8.]), [5., 6., 1., 0., 7., 8., 0., 1.]);
        let test = read.test.as_ref().expect("test");
        assert_eq!(categories.encode(test, &[0], &[9., 9.]), [9., 9., 0., 0.]);
        assert_eq!(
            Categories::of(test, &[0]).too_many(test, MAX_VALUES),
            Some(
                "268435456 rows × 3 values per row after one-hot encoding is too many (at most 100000 per row and \
             268435456 in all); column 'job' has 1 categories: is a categorical column an id?"
                    .into()
            )
        );
        assert_eq!(read.train.targets, Targets::Values { values: vec![1.5, -2.0, 0.0], width: 1 });
        assert_eq!(read.class_names, ["y"]);
    }

    #[test]
    fn label_columns_and_a_class_column() {
        let dir = tempfile::tempdir().expect("dir");
        let path = write(dir.path(), "t.csv", "age,job,hours,smiling,young,income\n1,a,2,1,-1,>50K\n3,b,4,0,1,<=50K\n");
        let files = SplitFiles::one(&path);
        let read = table(&files, &options(TableTarget::Labels(names(&["smiling", "young"])))).expect("reads");
        assert_eq!(read.train.targets, Targets::Binary { labels: vec![1, 0, 0, 1], width: 2 });
        let class =
            TableTarget::Class { column: Column::Name("income".into()), classes: LabelClasses::Names, positive: None };
        let read = table(&files, &options(class)).expect("reads");
        assert_eq!(read.class_names, ["<=50K", ">50K"]);
        assert_eq!(read.train.targets, Targets::Classes(vec![1, 0]));
        // Made two-class by its positive values: 1 where the cell is one of them.
        let binary = |values: &[&str]| TableTarget::Class {
            column: Column::Name("income".into()),
            classes: LabelClasses::Names,
            positive: Some(values.iter().map(|v| v.to_string()).collect()),
        };
        let read = table(&files, &options(binary(&[">50K"]))).expect("reads");
        assert_eq!(read.class_names, ["not >50K", ">50K"]);
        assert_eq!(read.train.targets, Targets::Classes(vec![1, 0]));
        let error = table(&files, &options(binary(&[">50K", "b"]))).expect_err("b is in no row").to_string();
        assert!(error.contains("positive value \"b\" occurs in no row of column 'income'"), "{error}");
    }

    #[test]
    fn a_label_list_column_is_one_label_per_name_of_every_file() {
        let dir = tempfile::tempdir().expect("dir");
        let train = write(dir.path(), "train.csv", "age,job,hours,tags\n1,a,2,drama|comedy\n3,b,4,\n5,a,6, comedy \n");
        let test = write(dir.path(), "test.csv", "age,job,hours,tags\n7,b,8,horror|drama\n");
        let list = TableTarget::LabelList { column: Column::Name("tags".into()), separator: '|' };
        let read = table(&SplitFiles { train, val: None, test: Some(test) }, &options(list)).expect("reads");
        // Names of all files, sorted: comedy, drama, horror; an empty cell is no label.
        assert_eq!(read.class_names, ["comedy", "drama", "horror"]);
        assert_eq!(read.train.targets, Targets::Binary { labels: vec![1, 1, 0, 0, 0, 0, 1, 0, 0], width: 3 });
        assert_eq!(read.test.expect("test").targets, Targets::Binary { labels: vec![0, 1, 1], width: 3 });
    }

    #[test]
    fn bad_cells_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().expect("dir");
        let cases = [
            ("age,job,hours,y\n30,a,40,1\n?,b,2,3\n", "line 3: column 'age': \"?\" is not a finite number"),
            ("age,job,hours,y\n30,a,40,nan\n", "line 2: target y: \"nan\" is not a finite number"),
            ("age,job,hours,y\n30,a,40\n", "line 2: row has 3 fields, no column 'y'"),
            ("age,job,hours\n30,a,40\n", "no column 'y' in the header"),
        ];
        for (text, expected) in cases {
            let path = write(dir.path(), "bad.csv", text);
            let error = table(&SplitFiles::one(&path), &options(TableTarget::Values(names(&["y"])))).unwrap_err();
            assert!(error.to_string().contains(expected), "{error} lacks {expected}");
            assert!(error.to_string().contains("bad.csv"), "{error}");
        }
        let path = write(dir.path(), "ml.csv", "age,job,hours,s\n1,a,2,yes\n");
        let error = table(&SplitFiles::one(&path), &options(TableTarget::Labels(names(&["s"])))).unwrap_err();
        assert!(error.to_string().contains("line 2: label s: \"yes\" must be 1"), "{error}");
        let mut twice = options(TableTarget::Values(names(&["age"])));
        twice.categorical.clear();
        let path = write(dir.path(), "twice.csv", "age,job,hours\n1,a,2\n");
        let error = table(&SplitFiles::one(&path), &twice).unwrap_err();
        assert!(error.to_string().contains("column 'age' is used twice"), "{error}");
    }
}
