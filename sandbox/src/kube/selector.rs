//! Label selectors as `?labelSelector=` carries them, parsed like
//! `k8s.io/apimachinery/pkg/labels/selector.go` (its lexer, `Parser.parse`,
//! `parseRequirement`, `parseValues`, `parseExactValue`, with the same error wording):
//! `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`, `!key`,
//! `key>1`, `key<1`, comma-joined (AND). And the two field selectors every object has.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::validation;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: BTreeSet<String>,
}

/// A parsed selector: every requirement must hold. Empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    DoesNotExist,
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    GreaterThan,
    LessThan,
    OpenPar,
    ClosedPar,
    Comma,
    End,
}

impl Token {
    fn literal(&self) -> String {
        match self {
            Token::Identifier(s) => s.clone(),
            Token::DoesNotExist => "!".into(),
            Token::Equals => "=".into(),
            Token::DoubleEquals => "==".into(),
            Token::NotEquals => "!=".into(),
            Token::In => "in".into(),
            Token::NotIn => "notin".into(),
            Token::GreaterThan => ">".into(),
            Token::LessThan => "<".into(),
            Token::OpenPar => "(".into(),
            Token::ClosedPar => ")".into(),
            Token::Comma => ",".into(),
            Token::End => String::new(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

/// The lexer: whitespace separates, the special symbols are tokens of their own, any other run
/// is an identifier (`in`/`notin` are told apart from identifiers by the parser's mode).
fn lex(input: &str) -> Vec<Token> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_special(c) {
            let next = chars.get(i + 1).copied();
            let (token, width) = match (c, next) {
                ('=', Some('=')) => (Token::DoubleEquals, 2),
                ('!', Some('=')) => (Token::NotEquals, 2),
                ('=', _) => (Token::Equals, 1),
                ('!', _) => (Token::DoesNotExist, 1),
                ('(', _) => (Token::OpenPar, 1),
                (')', _) => (Token::ClosedPar, 1),
                (',', _) => (Token::Comma, 1),
                ('>', _) => (Token::GreaterThan, 1),
                _ => (Token::LessThan, 1),
            };
            tokens.push(token);
            i += width;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Identifier(chars[start..i].iter().collect()));
        }
    }
    tokens.push(Token::End);
    tokens
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `in` and `notin` are operators.
    KeyAndOperator,
    /// Everything that is not a symbol is an identifier.
    Values,
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn token(&self, at: usize, mode: Mode) -> Token {
        let token = self.tokens.get(at).cloned().unwrap_or(Token::End);
        match (&token, mode) {
            (Token::Identifier(s), Mode::KeyAndOperator) if s == "in" => Token::In,
            (Token::Identifier(s), Mode::KeyAndOperator) if s == "notin" => Token::NotIn,
            _ => token,
        }
    }

    fn lookahead(&self, mode: Mode) -> Token {
        self.token(self.position, mode)
    }

    fn consume(&mut self, mode: Mode) -> Token {
        let token = self.token(self.position, mode);
        self.position = (self.position + 1).min(self.tokens.len());
        token
    }

    fn parse(&mut self) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        loop {
            match self.lookahead(Mode::Values) {
                Token::Identifier(_) | Token::DoesNotExist => {
                    let requirement = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    match self.consume(Mode::Values) {
                        Token::End => return Ok(Selector(requirements)),
                        Token::Comma => {
                            let next = self.lookahead(Mode::Values);
                            if !matches!(next, Token::Identifier(_) | Token::DoesNotExist) {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    next.literal()
                                ));
                            }
                        }
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                other.literal()
                            ));
                        }
                    }
                }
                Token::End => return Ok(Selector(requirements)),
                other => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        other.literal()
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.key_and_inferred_operator()?;
        if let Some(operator) = operator {
            return Ok(Requirement {
                key,
                operator,
                values: BTreeSet::new(),
            });
        }
        let operator = self.operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.values()?,
            _ => self.exact_value()?,
        };
        if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for value in &values {
                if value.parse::<i64>().is_err() {
                    return Err(format!(
                        "for 'Gt', 'Lt' operators, the value must be an integer: {value}"
                    ));
                }
            }
        } else {
            // `NewRequirement`: `field.Invalid(path.Child("values").Index(i).Key(key), …)`,
            // over the values in sorted order.
            for (i, value) in values.iter().enumerate() {
                let messages = validation::label_value(value);
                if !messages.is_empty() {
                    return Err(format!(
                        "values[{i}][{key}]: Invalid value: {value:?}: {}",
                        messages.join("; ")
                    ));
                }
            }
        }
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let mut token = self.consume(Mode::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            token = self.consume(Mode::Values);
        }
        let Token::Identifier(key) = token else {
            return Err(format!("found '{}', expected: identifier", token.literal()));
        };
        if let Some(message) = validation::qualified_name(&key).into_iter().next() {
            return Err(format!("<nil>: Invalid value: {key:?}: {message}"));
        }
        if matches!(self.lookahead(Mode::Values), Token::End | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((key, operator))
    }

    fn operator(&mut self) -> Result<Operator, String> {
        match self.consume(Mode::KeyAndOperator) {
            Token::In => Ok(Operator::In),
            Token::NotIn => Ok(Operator::NotIn),
            Token::Equals | Token::DoubleEquals => Ok(Operator::Equals),
            Token::NotEquals => Ok(Operator::NotEquals),
            Token::GreaterThan => Ok(Operator::GreaterThan),
            Token::LessThan => Ok(Operator::LessThan),
            other => Err(format!(
                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                other.literal()
            )),
        }
    }

    fn values(&mut self) -> Result<BTreeSet<String>, String> {
        let token = self.consume(Mode::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{}' expected: '('", token.literal()));
        }
        match self.lookahead(Mode::Values) {
            Token::Identifier(_) | Token::Comma => {
                let values = self.identifiers()?;
                let token = self.consume(Mode::Values);
                if token != Token::ClosedPar {
                    return Err(format!("found '{}', expected: ')'", token.literal()));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Mode::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            other => Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                other.literal()
            )),
        }
    }

    fn identifiers(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            match self.consume(Mode::Values) {
                Token::Identifier(value) => {
                    values.insert(value);
                    match self.lookahead(Mode::Values) {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or ')'",
                                other.literal()
                            ));
                        }
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    match self.lookahead(Mode::Values) {
                        Token::ClosedPar => {
                            values.insert(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.consume(Mode::Values);
                            values.insert(String::new());
                        }
                        _ => {}
                    }
                }
                other => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        other.literal()
                    ));
                }
            }
        }
    }

    fn exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        if matches!(self.lookahead(Mode::Values), Token::End | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        match self.consume(Mode::Values) {
            Token::Identifier(value) => Ok(BTreeSet::from([value])),
            other => Err(format!("found '{}', expected: identifier", other.literal())),
        }
    }
}

impl Selector {
    /// Parses `?labelSelector=`; the error is the message of the real 400.
    pub fn parse(input: &str) -> Result<Selector, String> {
        Parser {
            tokens: lex(input),
            position: 0,
        }
        .parse()
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.0.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match r.operator {
                Operator::Equals | Operator::In => value.is_some_and(|v| r.values.contains(v)),
                Operator::NotEquals | Operator::NotIn => {
                    !value.is_some_and(|v| r.values.contains(v))
                }
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
                Operator::GreaterThan | Operator::LessThan => {
                    let (Some(have), Some(want)) = (
                        value.and_then(|v| v.parse::<i64>().ok()),
                        r.values.iter().next().and_then(|v| v.parse::<i64>().ok()),
                    ) else {
                        return false;
                    };
                    if r.operator == Operator::GreaterThan {
                        have > want
                    } else {
                        have < want
                    }
                }
            }
        })
    }
}

/// `?fieldSelector=`: `field=value`, `field==value`, `field!=value`, comma-joined, over the
/// fields a resource supports (`metadata.name`, `metadata.namespace`, and a namespace's
/// `status.phase`), as `k8s.io/apimachinery/pkg/fields/selector.go` parses them.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(input: &str, supported: &[&str]) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in input.split(',').filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{input}'; can't understand '{term}'"
                ));
            };
            if !supported.contains(&field) {
                let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
                return Err(format!(
                    "{field:?} is not a known field selector: only {}",
                    quoted.join(", ")
                ));
            }
            terms.push((field.to_string(), equal, value.to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn selects(selector: &str, l: Value) -> bool {
        Selector::parse(selector).unwrap().matches(Some(&labels(l)))
    }

    #[test]
    fn operators_select_like_kubernetes() {
        let l = json!({"app": "api", "tier": "web", "n": "5"});
        assert!(selects("", l.clone()));
        assert!(selects("app=api", l.clone()));
        assert!(selects("app==api", l.clone()));
        assert!(!selects("app=web", l.clone()));
        assert!(selects("app!=web", l.clone()));
        assert!(selects("missing!=x", l.clone()));
        assert!(selects("app in (api, db)", l.clone()));
        assert!(!selects("app notin (api,db)", l.clone()));
        assert!(selects("missing notin (a)", l.clone()));
        assert!(selects("app", l.clone()));
        assert!(!selects("!app", l.clone()));
        assert!(selects("!missing", l.clone()));
        assert!(selects("app=api,tier=web", l.clone()));
        assert!(!selects("app=api,tier=db", l.clone()));
        assert!(selects("n>4,n<6", l.clone()));
        assert!(selects("wiform.io/stack!=x, app", l));
        assert!(selects("a=", json!({"a": ""})));
    }

    #[test]
    fn errors_are_worded_like_the_parser() {
        for (input, message) in [
            (
                "a===",
                "unable to parse requirement: found '=', expected: identifier",
            ),
            (
                "a in ",
                "unable to parse requirement: found '' expected: '('",
            ),
            (
                "!",
                "unable to parse requirement: found '', expected: identifier",
            ),
            ("a=b,", "found '', expected: identifier after ','"),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            (
                "a=!b",
                "unable to parse requirement: found '!', expected: identifier",
            ),
        ] {
            assert_eq!(Selector::parse(input).unwrap_err(), message, "{input}");
        }
        assert!(Selector::parse("-a=b").unwrap_err().starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist"
        ));
    }

    #[test]
    fn field_selectors() {
        let object = json!({"metadata": {"name": "a", "namespace": "n"}});
        let supported = ["metadata.name", "metadata.namespace"];
        assert!(
            FieldSelector::parse("metadata.name=a", &supported)
                .unwrap()
                .matches(&object)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace!=n", &supported)
                .unwrap()
                .matches(&object)
        );
        assert_eq!(
            FieldSelector::parse("spec.x=1", &supported).unwrap_err(),
            "\"spec.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
    }
}
