//! Command-line arguments of the KEDA containers: how an argument replaces or joins the ones already there.

/// Flags that may be given several times; a new occurrence is added rather than replacing the old one.
const REPEATABLE: [&str; 1] = ["--ca-dir"];

/// The flag name of an argument (`--v=4` -> `--v`), or `None` for a positional argument.
fn flag_name(arg: &str) -> Option<&str> {
    arg.starts_with('-').then(|| arg.split_once('=').map_or(arg, |(name, _)| name))
}

/// Sets `arg` in `args`: a flag replaces every earlier occurrence of the same flag (in place of the first),
/// unless the flag is repeatable; anything else is appended unless already present. Values containing `=`
/// are kept whole: only the first `=` separates name and value.
pub fn set(args: &mut Vec<String>, arg: &str) {
    match flag_name(arg) {
        Some(name) if !REPEATABLE.contains(&name) => {
            let mut replaced = false;
            args.retain_mut(|existing| {
                if flag_name(existing) != Some(name) {
                    return true;
                }
                if replaced {
                    return false;
                }
                replaced = true;
                *existing = arg.to_string();
                true
            });
            if !replaced {
                args.push(arg.to_string());
            }
        }
        _ => {
            if !args.iter().any(|existing| existing == arg) {
                args.push(arg.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_flag_replaces_the_same_flag_in_place() {
        let mut args = v(&["--leader-elect", "--zap-log-level=info", "--x=1"]);
        set(&mut args, "--zap-log-level=debug");
        assert_eq!(args, v(&["--leader-elect", "--zap-log-level=debug", "--x=1"]));
    }

    #[test]
    fn a_boolean_flag_can_be_given_a_value() {
        let mut args = v(&["--leader-elect", "--a=1"]);
        set(&mut args, "--leader-elect=false");
        assert_eq!(args, v(&["--leader-elect=false", "--a=1"]));
    }

    #[test]
    fn values_with_equals_signs_are_kept_whole() {
        let mut args = v(&["--label=a=b"]);
        set(&mut args, "--label=c=d=e");
        assert_eq!(args, v(&["--label=c=d=e"]));
    }

    #[test]
    fn new_flags_and_positionals_are_appended_once() {
        let mut args = v(&["--a=1"]);
        set(&mut args, "--b=2");
        set(&mut args, "ENV_ARGUMENT");
        set(&mut args, "ENV_ARGUMENT");
        assert_eq!(args, v(&["--a=1", "--b=2", "ENV_ARGUMENT"]));
    }

    #[test]
    fn repeatable_flags_accumulate() {
        let mut args = v(&["--ca-dir=/custom/ca0"]);
        set(&mut args, "--ca-dir=/custom/ca1");
        assert_eq!(args, v(&["--ca-dir=/custom/ca0", "--ca-dir=/custom/ca1"]));
    }

    #[test]
    fn duplicates_of_a_replaced_flag_collapse() {
        let mut args = v(&["--v=1", "--a", "--v=2"]);
        set(&mut args, "--v=5");
        assert_eq!(args, v(&["--v=5", "--a"]));
    }
}
