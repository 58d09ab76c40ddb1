//! A small reader of Dockerfile instructions: enough to compare labels with the bundle annotations and the
//! operator image's entrypoint and user with its Deployment.

use std::collections::BTreeMap;

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// `FROM`, `LABEL`, `COPY`, ...
    pub keyword: String,
    /// Everything after the keyword.
    pub args: String,
}

/// The instructions of a Dockerfile, comments and blank lines dropped.
pub fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(stripped) = trimmed.strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let full = std::mem::take(&mut current);
        let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
        out.push(Instruction { keyword: keyword.to_ascii_uppercase(), args: args.trim().to_string() });
    }
    out
}

/// The instructions of the last stage (after the last `FROM`).
pub fn final_stage(text: &str) -> Vec<Instruction> {
    let all = instructions(text);
    let start = all.iter().rposition(|i| i.keyword == "FROM").unwrap_or(0);
    all[start..].to_vec()
}

/// `key=value` pairs of `LABEL` arguments; values may be double-quoted.
fn label_pairs(args: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        if chars.peek() != Some(&'=') {
            break;
        }
        chars.next();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim_matches('"').to_string(), value));
    }
    out
}

/// Every label of the final stage.
pub fn labels(text: &str) -> BTreeMap<String, String> {
    final_stage(text).iter().filter(|i| i.keyword == "LABEL").flat_map(|i| label_pairs(&i.args)).collect()
}

/// The last value of `keyword` in the final stage (`USER`, `ENTRYPOINT`, ...).
pub fn last(text: &str, keyword: &str) -> Option<String> {
    final_stage(text).into_iter().rev().find(|i| i.keyword == keyword).map(|i| i.args)
}

/// The exec-form arguments of an `ENTRYPOINT`/`CMD` (`["a", "b"]`).
pub fn exec_form(args: &str) -> Option<Vec<String>> {
    serde_json::from_str(args).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_with_quotes_and_continuations_are_read() {
        let text = "FROM a AS b\nLABEL x=1\nFROM scratch\n# c\nLABEL a=\"b c\" \\\n  d=e\nLABEL f=\"g\\\"h\"\n";
        let l = labels(text);
        assert_eq!(l.get("a").map(String::as_str), Some("b c"));
        assert_eq!(l.get("d").map(String::as_str), Some("e"));
        assert_eq!(l.get("f").map(String::as_str), Some("g\"h"));
        assert!(!l.contains_key("x"), "labels of earlier stages are not the image's");
    }

    #[test]
    fn entrypoint_in_exec_form_is_parsed() {
        let text = "FROM scratch\nENTRYPOINT [\"/bin/x\", \"run\"]\nUSER 1:1\n";
        assert_eq!(
            last(text, "ENTRYPOINT").and_then(|a| exec_form(&a)),
            Some(vec!["/bin/x".to_string(), "run".to_string()])
        );
        assert_eq!(last(text, "USER").as_deref(), Some("1:1"));
    }
}
