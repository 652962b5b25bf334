//! Reading `terraform show -json` output by hand, value by value, so that whatever is malformed
//! is named by its JSON path (`values.root_module.resources[3].values.name`) and nothing panics,
//! whatever the input.

use serde_json::{Map, Value};

use crate::error::Explain;

/// What is wrong with the input, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The JSON path of the malformed value (empty: the document itself).
    pub path: String,
    pub problem: String,
    pub hint: Option<String>,
}

impl ReadError {
    pub fn new(path: &str, problem: impl Into<String>) -> Self {
        ReadError {
            path: path.to_string(),
            problem: problem.into(),
            hint: Some(
                "give the output of `terraform show -json` (run in the Terraform working \
                 directory, without a plan file): `terraform show -json > state.json`"
                    .into(),
            ),
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl Explain for ReadError {
    fn message(&self) -> String {
        if self.path.is_empty() {
            self.problem.clone()
        } else {
            format!("at {}: {}", self.path, self.problem)
        }
    }

    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// A JSON value and its path from the document's root.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub value: &'a Value,
    pub path: String,
}

/// A JSON object and its path.
#[derive(Debug, Clone)]
pub struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value) -> Self {
        Node {
            value,
            path: String::new(),
        }
    }

    fn error(&self, expected: &str) -> ReadError {
        ReadError::new(
            &self.path,
            format!("expected {expected}, found {}", describe(self.value)),
        )
    }

    pub fn object(&self) -> Result<Obj<'a>, ReadError> {
        match self.value {
            Value::Object(map) => Ok(Obj {
                map,
                path: self.path.clone(),
            }),
            _ => Err(self.error("an object")),
        }
    }

    pub fn string(&self) -> Result<&'a str, ReadError> {
        match self.value {
            Value::String(text) => Ok(text),
            _ => Err(self.error("a string")),
        }
    }

    pub fn array(&self) -> Result<Vec<Node<'a>>, ReadError> {
        match self.value {
            Value::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, value)| Node {
                    value,
                    path: format!("{}[{i}]", self.path),
                })
                .collect()),
            _ => Err(self.error("an array")),
        }
    }
}

impl<'a> Obj<'a> {
    /// The value of `key`; `None` when it is absent or null.
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        let value = self.map.get(key).filter(|v| !v.is_null())?;
        Some(Node {
            value,
            path: self.child_path(key),
        })
    }

    pub fn required(&self, key: &str) -> Result<Node<'a>, ReadError> {
        self.get(key)
            .ok_or_else(|| ReadError::new(&self.child_path(key), "is missing"))
    }

    /// A string attribute; `None` when absent, null or empty (Terraform writes `""` for an
    /// optional string left unset).
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, ReadError> {
        match self.get(key) {
            Some(node) => node.string().map(|s| Some(s).filter(|s| !s.is_empty())),
            None => Ok(None),
        }
    }

    /// A string attribute that must be there.
    pub fn req_str(&self, key: &str) -> Result<&'a str, ReadError> {
        match self.str(key)? {
            Some(text) => Ok(text),
            None => Err(ReadError::new(&self.child_path(key), "is missing or empty")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ReadError> {
        match self.get(key) {
            Some(node) => match node.value {
                Value::Bool(b) => Ok(Some(*b)),
                _ => Err(node.error("true or false")),
            },
            None => Ok(None),
        }
    }

    pub fn array(&self, key: &str) -> Result<Vec<Node<'a>>, ReadError> {
        match self.get(key) {
            Some(node) => node.array(),
            None => Ok(Vec::new()),
        }
    }

    /// A list of strings (audiences).
    pub fn strings(&self, key: &str) -> Result<Vec<String>, ReadError> {
        self.array(key)?
            .iter()
            .map(|n| n.string().map(str::to_string))
            .collect()
    }

    /// A map of strings (tags, labels, annotations), in the order the document gives.
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, ReadError> {
        let Some(node) = self.get(key) else {
            return Ok(Vec::new());
        };
        let map = node.object()?;
        let mut entries = Vec::new();
        for key in map.map.keys() {
            if let Some(value) = map.get(key) {
                entries.push((key.clone(), value.string()?.to_string()));
            }
        }
        Ok(entries)
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

/// What a value is, for an error message: its type, and the value itself when short.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Every string in `value`, at most `depth` levels down.
pub fn strings_in<'a>(value: &'a Value, depth: usize, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) if depth > 0 => {
            for item in items {
                strings_in(item, depth - 1, out);
            }
        }
        Value::Object(map) if depth > 0 => {
            for item in map.values() {
                strings_in(item, depth - 1, out);
            }
        }
        _ => {}
    }
}
