//! Pod logs: text a test stores per (namespace, pod, container, previous), served at
//! `/api/v1/namespaces/{ns}/pods/{pod}/log`.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::ApiError;

/// One `pods/log` request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// `container` parameter.
    pub container: Option<String>,
    /// `previous=true`.
    pub previous: bool,
    /// `sinceSeconds` parameter.
    pub since_seconds: Option<i64>,
    /// `sinceTime` parameter.
    pub since_time: Option<String>,
    /// `tailLines` parameter (applied).
    pub tail_lines: Option<usize>,
    /// `limitBytes` parameter (applied).
    pub limit_bytes: Option<usize>,
    /// `timestamps=true` (recorded, not applied).
    pub timestamps: bool,
}

/// (namespace, pod, container, previous).
type LogKey = (String, String, String, bool);

/// Stored log texts and the log requests served.
#[derive(Debug, Default)]
pub(crate) struct Logs {
    texts: BTreeMap<LogKey, Bytes>,
    pub requests: Vec<LogRequest>,
}

impl Logs {
    pub fn set(&mut self, namespace: &str, pod: &str, container: &str, previous: bool, text: Bytes) {
        self.texts.insert((namespace.to_string(), pod.to_string(), container.to_string(), previous), text);
    }

    /// The stored text for a request; `Ok(None)` when nothing was stored for the pod.
    pub fn lookup(&self, req: &LogRequest) -> Result<Option<Bytes>, ApiError> {
        if let Some(container) = &req.container {
            let key = (req.namespace.clone(), req.pod.clone(), container.clone(), req.previous);
            return Ok(self.texts.get(&key).cloned());
        }
        let candidates: Vec<(&String, &Bytes)> = self
            .texts
            .iter()
            .filter(|((ns, pod, _, prev), _)| *ns == req.namespace && *pod == req.pod && *prev == req.previous)
            .map(|((_, _, container, _), text)| (container, text))
            .collect();
        match candidates.as_slice() {
            [] => Ok(None),
            [(_, text)] => Ok(Some((*text).clone())),
            many => {
                let names: Vec<&str> = many.iter().map(|(c, _)| c.as_str()).collect();
                Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {}, choose one of: [{}]",
                    req.pod,
                    names.join(" ")
                )))
            }
        }
    }
}

/// Applies `tailLines` then `limitBytes` without copying (slices share the stored buffer).
pub(crate) fn select(text: &Bytes, tail_lines: Option<usize>, limit_bytes: Option<usize>) -> Bytes {
    let mut out = match tail_lines {
        Some(n) => tail(text, n),
        None => text.clone(),
    };
    if let Some(limit) = limit_bytes {
        out.truncate(limit.min(out.len()));
    }
    out
}

fn tail(text: &Bytes, n: usize) -> Bytes {
    if n == 0 {
        return Bytes::new();
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, byte) in body.iter().enumerate().rev() {
        if *byte == b'\n' {
            seen += 1;
            if seen == n {
                return text.slice(i + 1..);
            }
        }
    }
    text.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_and_limit_select_the_end_and_the_start() {
        let text = Bytes::from_static(b"a\nb\nc\n");
        assert_eq!(select(&text, Some(2), None), Bytes::from_static(b"b\nc\n"));
        assert_eq!(select(&text, Some(10), None), text);
        assert_eq!(select(&text, Some(0), None), Bytes::new());
        assert_eq!(select(&text, None, Some(3)), Bytes::from_static(b"a\nb"));
        assert_eq!(select(&text, Some(1), Some(1)), Bytes::from_static(b"c"));
    }
}
