//! The AWS CLI shorthand syntax (`name=web,image=nginx,portMappings=[{containerPort=80}]`)
//! parsed into JSON.
//!
//! Grammar, as the AWS CLI accepts it:
//!
//! ```text
//! structure := keyval ("," keyval)*
//! keyval    := key "=" values
//! values    := "[" [value ("," value)*] "]"   explicit list
//!            | "{" [keyval ("," keyval)*] "}"  nested structure
//!            | scalar ("," scalar)*            a bare list: `key=a,b,c` gives ["a","b","c"]
//!                                              (a segment after "," is another key when it holds "=")
//! value     := "[" ... "]" | "{" ... "}" | scalar
//! scalar    := 'quoted' | "quoted" | bare      bare runs to the next "," or closing bracket;
//!                                              `\` escapes the next character; ends are trimmed
//! ```
//!
//! Typing rule (shorthand carries no types, JSON does): a bare scalar made of an
//! optional `-` and ASCII digits becomes a JSON number, `true`/`false` become
//! booleans, anything else is a string. Quoted scalars are always strings, and so
//! is every scalar under a key listed in [`STRING_KEYS`] (ECS fields that are
//! strings, such as `name`, `value`, `key`, `image`, `command`) or anywhere below a
//! key listed in [`STRING_MAP_KEYS`] (string-to-string maps such as `options`).
//! Duplicate keys: the later value wins.

use serde_json::{Map, Number, Value};
use std::fmt;

/// ECS fields whose values are strings even when they look like numbers or booleans;
/// a list under one of these keys holds strings.
pub const STRING_KEYS: &[&str] = &[
    "name",
    "value",
    "key",
    "image",
    "command",
    "entryPoint",
    "hostname",
    "user",
    "workingDirectory",
    "type",
    "expression",
    "containerName",
    "containerPath",
    "sourcePath",
    "sourceVolume",
    "protocol",
    "appProtocol",
    "containerPortRange",
    "hostPortRange",
    "cpuArchitecture",
    "operatingSystemFamily",
    "family",
    "driver",
    "scope",
    "fileSystemId",
    "rootDirectory",
    "accessPointId",
    "credentialsParameter",
    "domain",
    "valueFrom",
    "logDriver",
    "dnsServers",
    "dnsSearchDomains",
    "links",
    "dockerSecurityOptions",
    "ipAddress",
    "namespace",
    "hostPath",
    "condition",
    "add",
    "drop",
    "deviceName",
    "deviceType",
    "networkMode",
    "pidMode",
    "ipcMode",
    "taskRoleArn",
    "executionRoleArn",
    "subnets",
    "securityGroups",
    "targetType",
    "targetId",
];

/// ECS string-to-string maps: every scalar below them stays a string.
pub const STRING_MAP_KEYS: &[&str] = &["options", "dockerLabels", "driverOpts", "labels"];

/// Where and why shorthand input failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShorthandError {
    /// The whole input, to point at the failure.
    pub input: String,
    /// Character offset of the failure.
    pub position: usize,
    /// What the parser wanted there.
    pub expected: String,
    /// What it found (`EOF` at the end).
    pub received: String,
}

impl fmt::Display for ShorthandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Expected: '{}', received: '{}' for input:\n{}\n{}^",
            self.expected,
            self.received,
            self.input,
            " ".repeat(self.position)
        )
    }
}

impl std::error::Error for ShorthandError {}

/// Parses one shorthand structure (`k=v,k2=v2`) into a JSON object.
pub fn parse(input: &str) -> Result<Value, ShorthandError> {
    let mut p = Parser {
        input,
        chars: input.chars().collect(),
        pos: 0,
    };
    let map = p.keyvals(None, false)?;
    p.skip_ws();
    if p.pos < p.chars.len() {
        return Err(p.error("EOF"));
    }
    Ok(Value::Object(map))
}

struct Parser<'a> {
    input: &'a str,
    chars: Vec<char>,
    pos: usize,
}

/// A scalar as read, before typing.
struct Scalar {
    text: String,
    quoted: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, expected: &str) -> ShorthandError {
        ShorthandError {
            input: self.input.to_string(),
            position: self.pos,
            expected: expected.to_string(),
            received: self
                .peek()
                .map_or_else(|| "EOF".to_string(), |c| c.to_string()),
        }
    }

    fn eat(&mut self, c: char) -> Result<(), ShorthandError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&c.to_string()))
        }
    }

    /// `keyval ("," keyval)*` up to `close` (or the end of input when `None`).
    fn keyvals(
        &mut self,
        close: Option<char>,
        strings: bool,
    ) -> Result<Map<String, Value>, ShorthandError> {
        let mut map = Map::new();
        self.skip_ws();
        if close.is_some() && self.peek() == close {
            return Ok(map);
        }
        loop {
            let key = self.key()?;
            self.eat('=')?;
            let strings_below = strings || STRING_MAP_KEYS.contains(&key.as_str());
            let as_string = strings_below || STRING_KEYS.contains(&key.as_str());
            let value = self.values(close, as_string, strings_below)?;
            map.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                c if c == close => return Ok(map),
                _ => {
                    return Err(self.error(
                        close
                            .map_or_else(|| ",".to_string(), |c| format!(", or {c}"))
                            .as_str(),
                    ))
                }
            }
        }
    }

    fn key(&mut self) -> Result<String, ShorthandError> {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, '=' | ',' | '[' | ']' | '{' | '}') {
                break;
            }
            self.pos += 1;
        }
        let key: String = self.chars[start..self.pos]
            .iter()
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            return Err(self.error("key"));
        }
        Ok(key)
    }

    /// The value(s) after `key=`: an explicit list, a structure, or one or more scalars.
    fn values(
        &mut self,
        close: Option<char>,
        as_string: bool,
        strings: bool,
    ) -> Result<Value, ShorthandError> {
        self.skip_ws();
        match self.peek() {
            Some('[') => self.list(as_string, strings),
            Some('{') => self.structure(strings),
            _ => {
                let first = self.scalar(close)?;
                let mut rest = Vec::new();
                while self.continues_bare_list(close) {
                    self.pos += 1; // the ','
                    rest.push(self.scalar(close)?);
                }
                if rest.is_empty() {
                    Ok(typed(first, as_string))
                } else {
                    let items = std::iter::once(first)
                        .chain(rest)
                        .map(|s| typed(s, as_string));
                    Ok(Value::Array(items.collect()))
                }
            }
        }
    }

    /// After a scalar: is the next segment another item of a bare list (no `=` before its end)?
    fn continues_bare_list(&self, close: Option<char>) -> bool {
        if self.peek() != Some(',') {
            return false;
        }
        let mut i = self.pos + 1;
        let mut escaped = false;
        let mut empty = true;
        while let Some(&c) = self.chars.get(i) {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '=' || c == '[' || c == '{' {
                return false;
            } else if c == ',' || Some(c) == close {
                break;
            }
            empty &= c.is_whitespace();
            i += 1;
        }
        !empty
    }

    fn list(&mut self, as_string: bool, strings: bool) -> Result<Value, ShorthandError> {
        self.eat('[')?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            let item = match self.peek() {
                Some('[') => self.list(as_string, strings)?,
                Some('{') => self.structure(strings)?,
                _ => typed(self.scalar(Some(']'))?, as_string),
            };
            items.push(item);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error(", or ]")),
            }
        }
    }

    fn structure(&mut self, strings: bool) -> Result<Value, ShorthandError> {
        self.eat('{')?;
        let map = self.keyvals(Some('}'), strings)?;
        self.eat('}')?;
        Ok(Value::Object(map))
    }

    /// A quoted or bare scalar; stops before `,` or `close` (and before any closing bracket).
    fn scalar(&mut self, close: Option<char>) -> Result<Scalar, ShorthandError> {
        self.skip_ws();
        if let Some(q @ ('\'' | '"')) = self.peek() {
            self.pos += 1;
            let mut text = String::new();
            loop {
                match self.peek() {
                    None => return Err(self.error(&q.to_string())),
                    Some('\\') if matches!(self.chars.get(self.pos + 1), Some(&c) if c == q || c == '\\') =>
                    {
                        text.extend(self.chars.get(self.pos + 1));
                        self.pos += 2;
                    }
                    Some(c) if c == q => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) => {
                        text.push(c);
                        self.pos += 1;
                    }
                }
            }
            self.skip_ws();
            return Ok(Scalar { text, quoted: true });
        }
        let mut text = String::new();
        let mut trailing_ws_from = 0;
        while let Some(c) = self.peek() {
            if c == ',' || Some(c) == close || matches!(c, ']' | '}') {
                break;
            }
            if c == '\\' {
                if let Some(&next) = self.chars.get(self.pos + 1) {
                    text.push(next);
                    self.pos += 2;
                    trailing_ws_from = text.len();
                    continue;
                }
            }
            text.push(c);
            if !c.is_whitespace() {
                trailing_ws_from = text.len();
            }
            self.pos += 1;
        }
        text.truncate(trailing_ws_from);
        Ok(Scalar {
            text,
            quoted: false,
        })
    }
}

/// Applies the typing rule of the module documentation.
fn typed(s: Scalar, as_string: bool) -> Value {
    if s.quoted || as_string {
        return Value::String(s.text);
    }
    match s.text.as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let digits = s.text.strip_prefix('-').unwrap_or(&s.text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = s.text.parse::<i64>() {
            return Value::Number(n.into());
        }
        if let Ok(n) = s.text.parse::<u64>() {
            return Value::Number(Number::from(n));
        }
    }
    Value::String(s.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ok(input: &str) -> Value {
        match parse(input) {
            Ok(v) => v,
            Err(e) => panic!("{input}: {e}"),
        }
    }

    #[test]
    fn flat_structures_are_typed_by_rule() {
        assert_eq!(
            ok("name=web,image=nginx,memory=128,essential=true,cpu=-1"),
            json!({"name": "web", "image": "nginx", "memory": 128, "essential": true, "cpu": -1})
        );
        assert_eq!(
            ok("key=env,value=123"),
            json!({"key": "env", "value": "123"})
        );
        assert_eq!(
            ok("name=containerInsights,value=enabled"),
            json!({"name": "containerInsights", "value": "enabled"})
        );
        assert_eq!(
            ok("hostPort='80',x=\"true\""),
            json!({"hostPort": "80", "x": "true"})
        );
        assert_eq!(
            ok("size=1.5,u=18446744073709551615,big=99999999999999999999"),
            json!({"size": "1.5", "u": 18446744073709551615u64, "big": "99999999999999999999"})
        );
    }

    #[test]
    fn nested_lists_and_structures() {
        assert_eq!(
            ok("name=web,portMappings=[{containerPort=80,hostPort=8080,protocol=tcp}],command=[sleep,30]"),
            json!({
                "name": "web",
                "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}],
                "command": ["sleep", "30"]
            })
        );
        assert_eq!(
            ok("logConfiguration={logDriver=json-file,options={max-size=10,compress=true}}"),
            json!({"logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10", "compress": "true"}}})
        );
        assert_eq!(
            ok("a=[],b={},c=[[1,2],[x]]"),
            json!({"a": [], "b": {}, "c": [[1, 2], ["x"]]})
        );
        assert_eq!(
            ok("environment=[{name=A,value=1},{name=B,value=two}]"),
            json!({"environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}]})
        );
    }

    #[test]
    fn bare_lists_escapes_quotes_and_spaces() {
        assert_eq!(
            ok("values=a,b,c,key=k"),
            json!({"values": ["a", "b", "c"], "key": "k"})
        );
        assert_eq!(ok("command=sleep,30"), json!({"command": ["sleep", "30"]}));
        assert_eq!(ok("value=a\\,b"), json!({"value": "a,b"}));
        assert_eq!(ok("value='a,b=c'"), json!({"value": "a,b=c"}));
        assert_eq!(
            ok("value=\"say \\\"hi\\\"\""),
            json!({"value": "say \"hi\""})
        );
        assert_eq!(
            ok(" type = memberOf , expression=attribute:x =~ t2.* "),
            json!({"type": "memberOf", "expression": "attribute:x =~ t2.*"})
        );
        assert_eq!(ok("value="), json!({"value": ""}));
        assert_eq!(ok("k=1,k=2"), json!({"k": 2}));
    }

    #[test]
    fn errors_point_at_the_failure() {
        let e = parse("name").unwrap_err();
        assert_eq!(
            (e.position, e.expected.as_str(), e.received.as_str()),
            (4, "=", "EOF")
        );
        assert_eq!(
            e.to_string(),
            "Expected: '=', received: 'EOF' for input:\nname\n    ^"
        );
        for bad in [
            "", "=x", "a=[1,2", "a={b=c", "a={b}", "a=1]", "a='x", "a=[1}", ",a=1", "a=1,",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,64}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_syntax_soup(s in "[a-z=,\\[\\]{}'\"\\\\ 0-9]{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn flat_maps_round_trip(pairs in proptest::collection::btree_map("[a-z][a-zA-Z]{0,6}", "[a-zA-Z][a-zA-Z0-9:/.-]{0,10}", 1..6)) {
            let input: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let parsed = parse(&input.join(",")).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (k, v) in &pairs {
                let want = if (v == "true" || v == "false") && !STRING_KEYS.contains(&k.as_str()) && !STRING_MAP_KEYS.contains(&k.as_str()) { Value::Bool(v == "true") } else { Value::String(v.clone()) };
                prop_assert_eq!(parsed.get(k), Some(&want));
            }
        }
    }
}
