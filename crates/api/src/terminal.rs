//! What the binaries (operator, must-gather) print on a terminal: decided from inputs the caller reads, so
//! it stays free of I/O.

use std::ffi::OsStr;

/// Whether log lines carry ANSI colour codes: only on a terminal, and never when `NO_COLOR` is set to
/// anything (<https://no-color.org>). Redirected to a file or a pipe (a pod's log, `2> run.log`,
/// `oc adm must-gather`'s gather.logs), the escape codes would be noise in every line.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(colour(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
    }
}
