//! Error messages from parsers, without the input.
//!
//! serde's messages quote the value at fault (`invalid type: integer `40010122213`, expected a
//! string`) and toml's quote the whole source line: any of them can carry an INSZ into a 422
//! body or a log line. Every error this program builds from a JSON or TOML parser goes through
//! here instead: it says where (line, column, field path) and what kind of problem, in fixed
//! words, and never copies a byte of the input.

use serde::Deserialize;

/// A field name as the program's own structures spell them: safe to name in a message. Keys
/// that are not (an unknown key could be anything, an INSZ included) are shown as `?`.
pub(crate) fn field_name(key: &str) -> bool {
    let mut digits_in_a_row = 0;
    !key.is_empty()
        && key.len() <= 40
        && key.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && key.chars().all(|c| {
            digits_in_a_row = if c.is_ascii_digit() {
                digits_in_a_row + 1
            } else {
                0
            };
            // No number hidden in a name: field names have at most a short counter.
            digits_in_a_row <= 3 && (c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// A dotted setting name (`server.body_limit_bytes`, `client[0].id`) if every part is a field
/// name, else `?`.
pub fn setting_name(key: &str) -> String {
    let ok = key.split('.').all(|part| {
        let name = part.split('[').next().unwrap_or_default();
        let indices = part[name.len()..]
            .chars()
            .all(|c| c.is_ascii_digit() || c == '[' || c == ']');
        field_name(name) && indices && part.len() - name.len() <= 8
    });
    if ok {
        key.to_string()
    } else {
        "?".to_string()
    }
}

/// `events[2].date`: the place of an error, from a serde path, with unknown keys replaced.
fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(if field_name(key) { key } else { "?" });
            }
            Segment::Enum { .. } | Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// A fixed description of a serde data error, from the start of its message (the rest, which
/// quotes the value, is dropped). A `missing field` or `duplicate field` names one of the
/// program's own fields, which may be repeated.
pub fn describe_data(message: &str) -> String {
    for (prefix, what) in [
        ("missing field `", "missing field"),
        ("duplicate field `", "duplicate field"),
        // A key from the input, named only when it looks like a setting name (no long number).
        ("unknown field `", "unknown field"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let name = rest.split('`').next().unwrap_or_default();
            return if field_name(name) {
                format!("{what} `{name}`")
            } else {
                what.to_string()
            };
        }
    }
    let kinds = [
        ("invalid type", "a value has the wrong type"),
        ("invalid value", "a value is not allowed"),
        ("unknown variant", "a value is not one of the allowed words"),
        ("invalid length", "wrong number of elements"),
    ];
    kinds
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or_else(
            || "a value is not valid".to_string(),
            |(_, what)| what.to_string(),
        )
}

/// "field `events[0].date`: " or "" when the error is at the top.
fn at_field(path: &str) -> String {
    if path.is_empty() || path == "?" {
        String::new()
    } else {
        format!("field `{path}`: ")
    }
}

/// Describes `error`, which parsing `input` as a `T` gave, without quoting `input`: column (the
/// caller knows the line), field path and a fixed description. Parses again to find the path
/// (errors only: the normal path pays nothing).
pub fn json<'de, T: Deserialize<'de>>(input: &'de [u8], error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Syntax => "not valid JSON".to_string(),
        Category::Eof => "the JSON ends too early (truncated?)".to_string(),
        Category::Io => "cannot be read".to_string(),
        Category::Data => describe_data(&error.to_string()),
    };
    let path = match error.classify() {
        Category::Data => {
            let mut deserializer = serde_json::Deserializer::from_slice(input);
            match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
                Err(located) => render_path(located.path()),
                Ok(_) => String::new(),
            }
        }
        _ => String::new(),
    };
    format!("{}{what} (column {})", at_field(&path), error.column())
}

/// Line and column (1-based) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

/// Parses `text` as TOML into a `T`; on error, a description that names the line, column and
/// field path without quoting `text` (toml's own message shows the offending source line).
pub fn toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let error = match toml::from_str::<T>(text) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let message = error.message();
    let data = [
        "missing field",
        "duplicate field",
        "invalid type",
        "invalid value",
        "unknown variant",
        "unknown field",
        "invalid length",
    ]
    .iter()
    .any(|prefix| message.starts_with(prefix));
    let what = if data {
        describe_data(message)
    } else if message.starts_with("duplicate key") {
        "a key is defined twice".to_string()
    } else {
        "not valid TOML".to_string()
    };
    let path = if data {
        match serde_path_to_error::deserialize::<_, T>(toml::Deserializer::new(text)) {
            Err(located) => render_path(located.path()),
            Ok(_) => String::new(),
        }
    } else {
        String::new()
    };
    let place = match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: ")
        }
        None => String::new(),
    };
    Err(format!("{place}{}{what}", at_field(&path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        insz: String,
        events: Vec<Event>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Event {
        date: String,
    }

    const INSZ: &str = "40010122213";

    fn json_error(text: &str) -> String {
        let error = serde_json::from_str::<Line>(text).unwrap_err();
        json::<Line>(text.as_bytes(), &error)
    }

    #[test]
    fn json_errors_name_the_field_and_never_the_value() {
        let e = json_error(&format!(r#"{{"insz": {INSZ}, "events": []}}"#));
        assert!(!e.contains(INSZ), "{e}");
        assert!(
            e.contains("field `insz`") && e.contains("wrong type"),
            "{e}"
        );
        let e = json_error(&format!(
            r#"{{"insz": "x", "events": [{{"date": {INSZ}}}]}}"#
        ));
        assert!(!e.contains(INSZ), "{e}");
        assert!(e.contains("field `events[0].date`"), "{e}");
        let e = json_error(&format!(r#"{{"insz": "x", "events": [], "{INSZ}": 1}}"#));
        assert!(!e.contains(INSZ), "{e}");
        assert!(e.contains("unknown field"), "{e}");
        let e = json_error(r#"{"events": []}"#);
        assert!(e.contains("missing field `insz`"), "{e}");
        let e = json_error(&format!(r#"{{"insz": "{INSZ}" "#));
        assert!(!e.contains(INSZ), "{e}");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        version: String,
        regime: Vec<Regime>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Regime {
        id: String,
        months: u32,
    }

    #[test]
    fn toml_errors_name_line_and_field_and_never_the_value() {
        let text = format!("version = \"1\"\n[[regime]]\nid = \"a\"\nmonths = \"{INSZ}\"\n");
        let e = toml::<File>(&text).unwrap_err();
        assert!(!e.contains(INSZ), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("regime[0].months"), "{e}");
        let text = format!("version = \"1\"\n{INSZ} = 1\n");
        let e = toml::<File>(&text).unwrap_err();
        assert!(!e.contains(INSZ), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let text = format!("version = \"1\"\nregime = [ {INSZ}");
        let e = toml::<File>(&text).unwrap_err();
        assert!(!e.contains(INSZ), "{e}");
    }
}
