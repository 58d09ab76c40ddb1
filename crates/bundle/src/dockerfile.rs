//! A small reader of Dockerfile instructions: enough to compare labels with the bundle annotations, the
//! operator image's entrypoint and user with its Deployment, and to check what the image carries for
//! `oc adm must-gather` (its base, the files it copies, the packages it installs).

use std::collections::{BTreeMap, BTreeSet};

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

/// The image the final stage starts from (`FROM [--platform=...] image [AS name]`).
pub fn base_image(text: &str) -> Option<String> {
    let from = instructions(text).into_iter().rev().find(|i| i.keyword == "FROM")?;
    from.args.split_whitespace().find(|a| !a.starts_with("--")).map(str::to_string)
}

/// One `COPY` of the final stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// The stage (or image) of `--from=`; `None` copies from the build context.
    pub from: Option<String>,
    /// Source paths.
    pub sources: Vec<String>,
    /// Destination path.
    pub dest: String,
}

/// The `COPY` instructions of the final stage (shell form; flags other than `--from` are skipped).
pub fn copies(text: &str) -> Vec<Copy> {
    final_stage(text)
        .into_iter()
        .filter(|i| i.keyword == "COPY")
        .filter_map(|i| {
            let mut from = None;
            let mut paths = Vec::new();
            for word in i.args.split_whitespace() {
                match word.strip_prefix("--from=") {
                    Some(stage) => from = Some(stage.to_string()),
                    None if word.starts_with("--") => {}
                    None => paths.push(word.to_string()),
                }
            }
            let dest = paths.pop()?;
            Some(Copy { from, sources: paths, dest })
        })
        .collect()
}

/// Packages the final stage installs with `microdnf`, `dnf` or `yum install` (options left out).
pub fn installed_packages(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for run in final_stage(text).into_iter().filter(|i| i.keyword == "RUN") {
        // Each shell command of the RUN on its own: `a && b; c`.
        for command in run.args.split("&&").flat_map(|c| c.split(';')) {
            let words: Vec<&str> = command.split_whitespace().collect();
            let Some(tool) = words.iter().position(|w| matches!(*w, "microdnf" | "dnf" | "yum")) else {
                continue;
            };
            let mut args = words[tool + 1..].iter().filter(|w| !w.starts_with('-'));
            if args.next() == Some(&"install") {
                out.extend(args.map(|w| w.to_string()));
            }
        }
    }
    out
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

    #[test]
    fn base_copies_and_installed_packages_of_the_final_stage_are_read() {
        let text = "FROM rust AS builder\nRUN dnf install -y gcc\nFROM --platform=linux/amd64 ubi-minimal:9 AS final\n\
                    RUN microdnf install -y --nodocs tar gawk \\\n && microdnf clean all\n\
                    COPY --from=builder --chmod=0755 /out/a /usr/bin/a\nCOPY gather /usr/bin/gather\n";
        assert_eq!(base_image(text).as_deref(), Some("ubi-minimal:9"));
        assert_eq!(
            copies(text),
            vec![
                Copy { from: Some("builder".into()), sources: vec!["/out/a".into()], dest: "/usr/bin/a".into() },
                Copy { from: None, sources: vec!["gather".into()], dest: "/usr/bin/gather".into() },
            ]
        );
        let packages: Vec<String> = installed_packages(text).into_iter().collect();
        assert_eq!(packages, vec!["gawk".to_string(), "tar".to_string()], "gcc is the builder's, not the image's");
    }
}
