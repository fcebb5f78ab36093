//! Results as a table on the terminal and as JSON in a file.

use serde::Serialize;
use serde_json::Value;
use std::path::Path;

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => out.push((prefix.to_owned(), "—".into())),
        Value::Number(n) => out.push((prefix.to_owned(), number(n))),
        other => out.push((
            prefix.to_owned(),
            other.to_string().trim_matches('"').to_owned(),
        )),
    }
}

fn number(n: &serde_json::Number) -> String {
    match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => group(u),
        (None, Some(f)) if f.abs() >= 100.0 => group(f.round() as u64),
        (None, Some(f)) => format!("{f:.2}"),
        _ => n.to_string(),
    }
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The result as `key  value` lines (nested fields dotted).
pub fn table(result: &impl Serialize) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    flatten("", &serde_json::to_value(result)?, &mut rows);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    Ok(rows
        .into_iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect())
}

/// Prints the table to stdout and, when asked, writes the JSON to `json`.
#[allow(clippy::print_stdout, reason = "the table is the command's output")]
pub fn emit(result: &impl Serialize, json: Option<&Path>) -> anyhow::Result<()> {
    println!("{}", table(result)?);
    if let Some(path) = json {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(result)? + "\n")?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_flatten_and_group() {
        let v = serde_json::json!({ "a": { "b": 1234567, "c": 0.5 }, "d": null, "e": "x" });
        let t = table(&v).expect("a table");
        assert!(t.contains("a.b  1,234,567"), "{t}");
        assert!(t.contains("a.c  0.50"), "{t}");
        assert!(t.contains("d    —"), "{t}");
        assert!(t.contains("e    x"), "{t}");
    }
}
