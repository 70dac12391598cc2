//! The filter language of `mtl ls --where`.
//!
//! ```text
//! expr    := and ('or' and)*
//! and     := unary ('and' unary)*
//! unary   := 'not' unary | '(' expr ')' | key op value | key ['not'] 'in' '(' value (',' value)* ')'
//! op      := '=' | '!=' | '<' | '<=' | '>' | '>='
//! key     := a setting (strategy, lambda, seed, …), a metric of the run's result (task.split.metric),
//!            or one of id, experiment, status, trial_key, host, device, git_commit, mtl_version,
//!            experiment_file, attempts
//! value   := number | 'text' | "text"
//! ```
//! Numbers compare as numbers and text as text; a comparison with a missing
//! value or a value of the other type is false (so `lambda != 1` does not match
//! single-task runs, which have no λ).
//!
//! ```
//! use mtl_store::filter::Filter;
//! let filter = Filter::parse("strategy = 'hard' and (lambda >= 0.5 or reviews.test.accuracy > 0.85)").unwrap();
//! assert_eq!(filter.keys().len(), 3);
//! assert!(Filter::parse("lambda >").unwrap_err().to_string().contains('^'));
//! ```

use crate::{ParamValue, RunRecord};

/// A parse error, pointing at the offending position.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}\n  {text}\n  {caret}^", caret = " ".repeat(text[..*position].chars().count()))]
pub struct FilterError {
    /// The expression as given.
    pub text: String,
    /// Byte offset of the problem.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Num(f64),
    Text(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
    And,
    Or,
    Not,
    In,
    End,
}

/// Chains of `or` and of `and` are flat lists, so that a long chain is no deep tree.
#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Any(Vec<Expr>),
    All(Vec<Expr>),
    Not(Box<Expr>),
    Compare { key: String, op: &'static str, value: ParamValue },
    In { key: String, values: Vec<ParamValue> },
}

/// A parsed `--where` expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    expr: Expr,
    keys: Vec<(String, usize)>,
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, FilterError> {
    let error = |position: usize, message: String| FilterError { text: text.into(), position, message };
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let token = match c {
            '(' => {
                i += 1;
                Token::Open
            }
            ')' => {
                i += 1;
                Token::Close
            }
            ',' => {
                i += 1;
                Token::Comma
            }
            '=' | '!' | '<' | '>' => {
                let two = text.get(i..i + 2).unwrap_or("");
                let op = match two {
                    "!=" | "<=" | ">=" | "==" => two,
                    _ if c == '!' => return Err(error(i, "expected != after !".into())),
                    _ => &text[i..i + 1],
                };
                i += op.len();
                Token::Op(match op {
                    "=" | "==" => "=",
                    "!=" => "!=",
                    "<" => "<",
                    "<=" => "<=",
                    ">" => ">",
                    _ => ">=",
                })
            }
            '\'' | '"' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match text[i..].chars().next() {
                        None => return Err(error(start, "unterminated string".into())),
                        Some(q) if q == c && text[i + 1..].starts_with(c) => {
                            value.push(c);
                            i += 2;
                        }
                        Some(q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            value.push(other);
                            i += other.len_utf8();
                        }
                    }
                }
                Token::Text(value)
            }
            _ if c.is_ascii_digit() || c == '-' || c == '.' => {
                i += 1;
                while i < bytes.len() {
                    let d = bytes[i] as char;
                    let exponent_sign = (d == '-' || d == '+') && matches!(bytes[i - 1], b'e' | b'E');
                    if d.is_ascii_digit() || d == '.' || d == 'e' || d == 'E' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                let number = &text[start..i];
                Token::Num(number.parse().map_err(|_| error(start, format!("{number:?} is not a number")))?)
            }
            _ if c.is_alphabetic() || c == '_' => {
                i += c.len_utf8();
                while i < bytes.len() {
                    let d = text[i..].chars().next().unwrap_or(' ');
                    if d.is_alphanumeric() || matches!(d, '_' | '.' | '-') {
                        i += d.len_utf8();
                    } else {
                        break;
                    }
                }
                let word = &text[start..i];
                match word.to_ascii_lowercase().as_str() {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    "in" => Token::In,
                    _ => Token::Ident(word.to_string()),
                }
            }
            _ => return Err(error(i, format!("unexpected character {c:?}"))),
        };
        tokens.push((token, start));
    }
    tokens.push((Token::End, text.len()));
    Ok(tokens)
}

/// Deepest nesting of parentheses and `not` (the parser recurses once per level).
const MAX_DEPTH: usize = 100;

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(Token, usize)>,
    at: usize,
    keys: Vec<(String, usize)>,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at].0
    }

    fn error<T>(&self, message: &str) -> Result<T, FilterError> {
        let (token, position) = &self.tokens[self.at];
        let found = match token {
            Token::End => "the end".to_string(),
            _ => format!("{:?}", &self.text[*position..].split_whitespace().next().unwrap_or("")),
        };
        Err(FilterError { text: self.text.into(), position: *position, message: format!("{message}, found {found}") })
    }

    fn next(&mut self) -> Token {
        let token = self.tokens[self.at].0.clone();
        if token != Token::End {
            self.at += 1;
        }
        token
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.and()?];
        while *self.peek() == Token::Or {
            self.next();
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Any(terms) })
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.unary()?];
        while *self.peek() == Token::And {
            self.next();
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::All(terms) })
    }

    /// `unary` one level down: `not` or parentheses.
    fn nested(&mut self, parse: fn(&mut Self) -> Result<Expr, FilterError>) -> Result<Expr, FilterError> {
        if self.depth == MAX_DEPTH {
            return self.error(&format!("nested more than {MAX_DEPTH} levels deep"));
        }
        self.depth += 1;
        let inner = parse(self);
        self.depth -= 1;
        inner
    }

    fn value(&mut self) -> Result<ParamValue, FilterError> {
        match self.peek().clone() {
            Token::Num(x) => {
                self.next();
                Ok(ParamValue::Num(x))
            }
            Token::Text(s) => {
                self.next();
                Ok(ParamValue::Text(s))
            }
            _ => self.error("expected a number or a 'quoted' text"),
        }
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        match self.peek().clone() {
            Token::Not => {
                self.next();
                Ok(Expr::Not(Box::new(self.nested(Self::unary)?)))
            }
            Token::Open => {
                self.next();
                let inner = self.nested(Self::expr)?;
                if *self.peek() != Token::Close {
                    return self.error("expected )");
                }
                self.next();
                Ok(inner)
            }
            Token::Ident(key) => {
                self.keys.push((key.clone(), self.tokens[self.at].1));
                self.next();
                let negate = *self.peek() == Token::Not;
                if negate {
                    self.next();
                    if *self.peek() != Token::In {
                        return self.error("expected in after not");
                    }
                }
                match self.peek().clone() {
                    Token::Op(op) => {
                        self.next();
                        Ok(Expr::Compare { key, op, value: self.value()? })
                    }
                    Token::In => {
                        self.next();
                        if *self.peek() != Token::Open {
                            return self.error("expected ( after in");
                        }
                        self.next();
                        let mut values = vec![self.value()?];
                        while *self.peek() == Token::Comma {
                            self.next();
                            values.push(self.value()?);
                        }
                        if *self.peek() != Token::Close {
                            return self.error("expected , or )");
                        }
                        self.next();
                        let test = Expr::In { key, values };
                        Ok(if negate { Expr::Not(Box::new(test)) } else { test })
                    }
                    _ => self.error("expected a comparison (=, !=, <, <=, >, >=) or in"),
                }
            }
            _ => self.error("expected a key, not or ("),
        }
    }
}

impl Filter {
    /// Parses an expression; errors point at the position with a caret.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let mut parser = Parser { text, tokens: tokenize(text)?, at: 0, keys: Vec::new(), depth: 0 };
        let expr = parser.expr()?;
        if *parser.peek() != Token::End {
            return parser.error("expected and, or or the end");
        }
        Ok(Filter { expr, keys: parser.keys })
    }

    /// The keys the expression uses, with their byte offsets (to check them
    /// against the keys a database has).
    pub fn keys(&self) -> &[(String, usize)] {
        &self.keys
    }

    /// Whether `run` satisfies the expression.
    pub fn matches(&self, run: &RunRecord) -> bool {
        eval(&self.expr, run)
    }
}

/// The value of `key` for a run: a built-in field, a setting or a metric of its result
/// ([`RunRecord::result_metrics`]).
pub fn lookup(run: &RunRecord, key: &str) -> Option<ParamValue> {
    match key {
        "id" => Some(ParamValue::Num(run.id.0 as f64)),
        "experiment" => Some(ParamValue::Text(run.experiment.clone())),
        "status" => Some(ParamValue::Text(run.status.as_str().into())),
        "trial_key" => Some(ParamValue::Text(run.trial_key.clone())),
        "host" => run.provenance.host.clone().map(ParamValue::Text),
        "device" => run.provenance.device.clone().map(ParamValue::Text),
        "git_commit" => run.provenance.git_commit.clone().map(ParamValue::Text),
        "mtl_version" => run.provenance.mtl_version.clone().map(ParamValue::Text),
        "experiment_file" => run.provenance.experiment_file.clone().map(ParamValue::Text),
        "attempts" => Some(ParamValue::Num(run.attempts as f64)),
        "revision" => (run.revision > 0).then_some(ParamValue::Num(f64::from(run.revision))),
        "note" => run.note.clone().map(ParamValue::Text),
        "archived" => Some(ParamValue::Text(if run.archived { "yes" } else { "no" }.into())),
        _ if key.starts_with("tag.") => run.tags.get(&key["tag.".len()..]).cloned().map(ParamValue::Text),
        _ => run.params.get(key).cloned().or_else(|| {
            run.result_metrics().iter().find(|(k, _)| k.to_string() == key).map(|(_, v)| ParamValue::Num(*v))
        }),
    }
}

/// Keys every run has, whatever its settings (the provenance ones may be missing).
pub const BUILT_IN_KEYS: [&str; 13] = [
    "id",
    "experiment",
    "status",
    "trial_key",
    "host",
    "device",
    "git_commit",
    "mtl_version",
    "experiment_file",
    "attempts",
    "revision",
    "note",
    "archived",
];

fn compare(left: &ParamValue, op: &str, right: &ParamValue) -> bool {
    let ordering = match (left, right) {
        (ParamValue::Num(a), ParamValue::Num(b)) => a.partial_cmp(b),
        (ParamValue::Text(a), ParamValue::Text(b)) => Some(a.cmp(b)),
        _ => None,
    };
    let Some(ordering) = ordering else { return false };
    match op {
        "=" => ordering.is_eq(),
        "!=" => ordering.is_ne(),
        "<" => ordering.is_lt(),
        "<=" => ordering.is_le(),
        ">" => ordering.is_gt(),
        _ => ordering.is_ge(),
    }
}

fn eval(expr: &Expr, run: &RunRecord) -> bool {
    match expr {
        Expr::Any(terms) => terms.iter().any(|term| eval(term, run)),
        Expr::All(terms) => terms.iter().all(|term| eval(term, run)),
        Expr::Not(a) => !eval(a, run),
        Expr::Compare { key, op, value } => lookup(run, key).is_some_and(|v| compare(&v, op, value)),
        Expr::In { key, values } => lookup(run, key).is_some_and(|v| values.iter().any(|x| compare(&v, "=", x))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MetricKey, RunId, RunStatus};
    use std::collections::BTreeMap;

    fn run(strategy: &str, lambda: Option<f64>, accuracy: f64, status: RunStatus) -> RunRecord {
        let mut params = BTreeMap::from([("strategy".to_string(), ParamValue::Text(strategy.into()))]);
        if let Some(l) = lambda {
            params.insert("lambda".into(), ParamValue::Num(l));
        }
        let key = MetricKey { task: "reviews".into(), split: "test".into(), metric: "accuracy".into() };
        RunRecord {
            id: RunId(7),
            experiment: "quickstart".into(),
            trial_key: "abc".into(),
            status,
            started_at: None,
            ended_at: None,
            error: None,
            params,
            final_epoch: Some(3),
            final_metrics: BTreeMap::from([(key, accuracy)]),
            ..RunRecord::default()
        }
    }

    /// (expression, matches hard λ=0.5 acc 0.9 done, matches single-task acc 0.8 failed)
    fn check(expression: &str, expect_hard: bool, expect_single: bool) {
        let filter = Filter::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
        let hard = run("hard", Some(0.5), 0.9, RunStatus::Done);
        let single = run("single-task", None, 0.8, RunStatus::Failed);
        assert_eq!((filter.matches(&hard), filter.matches(&single)), (expect_hard, expect_single), "{expression}");
    }

    #[test]
    fn valid_expressions() {
        check("strategy = 'hard'", true, false);
        check("strategy == \"hard\"", true, false);
        check("strategy != 'hard'", false, true);
        check("lambda >= 0.5", true, false);
        check("lambda > 0.5", false, false);
        check("lambda != 1", true, false); // missing λ never compares
        check("not lambda = 1", true, true);
        check("reviews.test.accuracy > 0.85", true, false);
        check("reviews.test.accuracy <= 8.5e-1", false, true);
        check("strategy = 'hard' and (lambda >= 0.5 or reviews.test.accuracy > 0.85)", true, false);
        check("strategy in ('hard', 'soft')", true, false);
        check("strategy not in ('hard', 'soft')", false, true);
        check("status = 'failed' or id < 0", false, true);
        check("NOT (status = 'done') AND experiment = 'quickstart'", false, true);
        check("lambda = '0.5'", false, false); // text never equals a number
        check("lambda in (-1, 0.5)", true, false);
    }

    /// (expression, caret position, message fragment)
    fn check_error(expression: &str, position: usize, fragment: &str) {
        let error = Filter::parse(expression).expect_err(expression);
        assert_eq!(error.position, position, "{expression}: {error}");
        assert!(error.message.contains(fragment), "{expression}: {}", error.message);
        let caret_line = error.to_string().lines().last().unwrap_or("").to_string();
        assert_eq!(caret_line.find('^'), Some(2 + position), "{error}");
    }

    #[test]
    fn invalid_expressions_point_at_the_problem() {
        check_error("lambda >", 8, "expected a number");
        check_error("lambda = hard", 9, "expected a number or a 'quoted' text");
        check_error("strategy = 'hard", 11, "unterminated string");
        check_error("(lambda = 1", 11, "expected )");
        check_error("lambda = 1 lambda = 2", 11, "expected and, or or the end");
        check_error("lambda ~ 1", 7, "unexpected character");
        check_error("strategy in 'hard'", 12, "expected ( after in");
        check_error("strategy in ('a' 'b')", 17, "expected , or )");
        check_error("lambda ! 1", 7, "expected != after !");
        check_error("", 0, "expected a key");
        check_error("and", 0, "expected a key");
        check_error("seed = 1.2.3", 7, "not a number");
        check_error("strategy not = 'x'", 13, "expected in after not");
        check_error("lambda ≥ 1", 7, "unexpected character '≥'");
        check_error("lambda > 1 — 2", 11, "unexpected character '—'");
        check_error("🙂 = 1", 0, "unexpected character");
    }

    #[test]
    fn keys_are_reported_with_their_positions() {
        let filter = Filter::parse("lamda > 1 or (strategy = 'x')").expect("parse");
        assert_eq!(filter.keys(), [("lamda".to_string(), 0), ("strategy".to_string(), 14)]);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}lambda = 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        let error = Filter::parse(&deep).expect_err("too deep");
        assert!(error.message.contains("nested more than 100 levels deep"), "{}", error.message);
        assert!(Filter::parse(&format!("{}lambda = 1", "not ".repeat(100_000))).is_err());
        let ok = format!("{}lambda = 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Filter::parse(&ok).is_ok());
        // A long chain is a flat list: evaluating it recurses once.
        let chain = vec!["lambda = 0.5"; 20_000].join(" and ");
        let hard = run("hard", Some(0.5), 0.9, RunStatus::Done);
        assert!(Filter::parse(&chain).expect("chain").matches(&hard));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Bounded: a few seconds in CI.
        fn config() -> ProptestConfig {
            ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() }
        }

        /// A parse error's caret must point inside the text (the message slices the text there).
        fn check_error_position(text: &str) {
            if let Err(error) = Filter::parse(text) {
                assert!(error.position <= text.len() && text.is_char_boundary(error.position), "{error:?}");
                let caret_line = error.to_string().lines().last().unwrap_or_default().to_string();
                assert_eq!(caret_line.chars().count(), 3 + text[..error.position].chars().count(), "{error}");
            }
        }

        /// Words of the language and things near them, to reach deep into the parser.
        fn filterish() -> impl Strategy<Value = String> {
            let word = prop::sample::select(vec![
                "lambda",
                "a.test.accuracy",
                "=",
                "==",
                "!=",
                "<",
                "<=",
                ">",
                ">=",
                "!",
                "'x'",
                "\"y\"",
                "'",
                "\"",
                "''",
                "(",
                ")",
                ",",
                "and",
                "OR",
                "not",
                "in",
                "1",
                "-2.5e-3",
                "1.2.3",
                "-",
                ".",
                "e",
                "≥",
                "🙂",
                " ",
            ]);
            prop::collection::vec(word, 0..24).prop_map(|words| words.join(" "))
        }

        fn key() -> impl Strategy<Value = String> {
            "[a-z_][a-z0-9_.-]{0,10}"
                .prop_filter("not a keyword", |k| !["and", "or", "not", "in"].contains(&k.as_str()))
        }

        fn value() -> impl Strategy<Value = ParamValue> {
            prop_oneof![
                any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(ParamValue::Num),
                any::<String>().prop_map(ParamValue::Text),
            ]
        }

        fn expr() -> impl Strategy<Value = Expr> {
            let op = prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]);
            let leaf = prop_oneof![
                (key(), op, value()).prop_map(|(key, op, value)| Expr::Compare { key, op, value }),
                (key(), prop::collection::vec(value(), 1..4)).prop_map(|(key, values)| Expr::In { key, values }),
            ];
            leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::All),
                    prop::collection::vec(inner, 2..4).prop_map(Expr::Any),
                ]
            })
        }

        fn render_value(value: &ParamValue) -> String {
            match value {
                ParamValue::Num(x) => format!("{x:?}"),
                ParamValue::Text(t) => format!("'{}'", t.replace('\'', "''")),
            }
        }

        /// The text of an expression; compound terms in parentheses.
        fn render(expr: &Expr) -> String {
            let term = |e: &Expr| match e {
                Expr::Any(_) | Expr::All(_) => format!("({})", render(e)),
                _ => render(e),
            };
            match expr {
                Expr::Any(terms) => terms.iter().map(term).collect::<Vec<_>>().join(" or "),
                Expr::All(terms) => terms.iter().map(term).collect::<Vec<_>>().join(" and "),
                Expr::Not(inner) => format!("not {}", term(inner)),
                Expr::Compare { key, op, value } => format!("{key} {op} {}", render_value(value)),
                Expr::In { key, values } => {
                    format!("{key} in ({})", values.iter().map(render_value).collect::<Vec<_>>().join(", "))
                }
            }
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn arbitrary_text_never_panics_and_errors_point_inside_it(text in any::<String>()) {
                check_error_position(&text);
            }

            #[test]
            fn filter_like_text_never_panics_and_errors_point_inside_it(text in filterish()) {
                check_error_position(&text);
            }

            #[test]
            fn generated_expressions_parse_back_to_themselves(expr in expr()) {
                let text = render(&expr);
                let parsed = Filter::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                prop_assert_eq!(parsed.expr, expr, "{}", text);
            }
        }
    }
}
