//! The small POSIX-shell programs we run on a target.
//!
//! Each is a fixed text run as `exec /bin/sh -c '<program>'` (so the user's login shell,
//! whatever it is, only execs `/bin/sh`). Nothing variable is put on the command line:
//! scripts, environment, paths and checksums arrive on stdin, so no secret ever shows in the
//! target's process list. The programs contain no single quote, which keeps the outer quoting
//! trivially correct (asserted in the tests).

/// Marker line the run wrapper prints on stderr before anything else: `\x1ejobd-pgid <n>`.
pub(crate) const PGID_MARKER: &[u8] = b"\x1ejobd-pgid ";

/// Exit code the wrappers use when they could not set up (temp files, reading stdin).
pub(crate) const SETUP_FAILED: u32 = 125;

/// Runs a script in its own session and process group.
///
/// Stdin: the environment block (`export NAME=value` lines, a `cd` and the script's
/// positional arguments as `set -- "$1" …`, POSIX-quoted), a line holding only `sentinel`,
/// then the script. The wrapper reports the group id first,
/// waits for the script, kills whatever the script left behind in its group (TERM, then
/// KILL after two seconds) and exits with the script's status (128 + signal when killed).
pub(crate) fn run_program(
    interpreter: &str,
    args: &[String],
    extension: &str,
    sentinel: &str,
) -> String {
    debug_assert!(is_plain_word(interpreter) && is_plain_word(sentinel));
    debug_assert!(args.iter().all(|a| is_plain_word(a)));
    debug_assert!(extension.bytes().all(|b| b.is_ascii_alphanumeric()));
    let args = args.join(" ");
    let file = if extension.is_empty() {
        "script".to_owned()
    } else {
        format!("script.{extension}")
    };
    let program = format!(
        r#"umask 077
d=$(mktemp -d "${{TMPDIR:-/tmp}}/jobd.XXXXXXXX") || exit {SETUP_FAILED}
: > "$d/env"
while IFS= read -r l; do [ "$l" = "{sentinel}" ] && break; printf "%s\n" "$l" >> "$d/env"; done
cat > "$d/{file}" || {{ rm -rf "$d"; exit {SETUP_FAILED}; }}
setsid /bin/sh -c ". \"\$0\" && exec {interpreter} {args} \"\$@\"" "$d/env" "$d/{file}" < /dev/null &
p=$!
printf "\036jobd-pgid %s\n" "$p" >&2
wait "$p"; rc=$?
if kill -TERM -"$p" 2>/dev/null; then
  i=0; while [ "$i" -lt 20 ] && kill -0 -"$p" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
  kill -KILL -"$p" 2>/dev/null
fi
rm -rf "$d"
exit "$rc""#
    );
    wrap(&program)
}

/// Sends TERM to a process group, then KILL after a grace period if anything is left.
/// (`kill -SIG -PGID`, without `--`: dash's built-in `kill` refuses `--`.)
pub(crate) fn kill_program(pgid: u32, grace_tenths: u32) -> String {
    let program = format!(
        r#"kill -TERM -{pgid} 2>/dev/null || exit 0
i=0
while [ "$i" -lt {grace_tenths} ]; do kill -0 -{pgid} 2>/dev/null || exit 0; sleep 0.1; i=$((i+1)); done
kill -KILL -{pgid} 2>/dev/null
exit 0"#
    );
    wrap(&program)
}

/// Writes stdin to a path atomically: a temporary name in the destination directory, the
/// checksum verified, then renamed into place.
///
/// Stdin: the destination path, `overwrite` or `skip`, the expected sha256 and the octal
/// mode, one per line, then the content. Stdout: `skipped` or `ok <sha256>`.
pub(crate) fn push_program() -> String {
    let program = format!(
        r#"umask 077
IFS= read -r dest || exit {SETUP_FAILED}
IFS= read -r how || exit {SETUP_FAILED}
IFS= read -r want || exit {SETUP_FAILED}
IFS= read -r mode || exit {SETUP_FAILED}
if [ "$how" = skip ] && [ -e "$dest" ]; then cat > /dev/null; echo skipped; exit 0; fi
dir=$(dirname -- "$dest")
mkdir -p -- "$dir" || exit {SETUP_FAILED}
t=$(mktemp "$dir/.jobd-upload.XXXXXXXX") || exit {SETUP_FAILED}
cat > "$t" || {{ rm -f -- "$t"; exit {SETUP_FAILED}; }}
got=$(sha256sum < "$t" | cut -d " " -f 1)
if [ "$got" != "$want" ]; then rm -f -- "$t"; echo "checksum mismatch: expected $want, got $got" >&2; exit 124; fi
chmod "$mode" "$t" && mv -f -- "$t" "$dest" || {{ rm -f -- "$t"; exit {SETUP_FAILED}; }}
echo "ok $got""#
    );
    wrap(&program)
}

/// Sends a file back: its sha256 on stderr (one line), then its content on stdout.
///
/// Stdin: the source path on one line.
pub(crate) fn pull_program() -> String {
    let program = format!(
        r#"IFS= read -r src || exit {SETUP_FAILED}
[ -f "$src" ] || {{ echo "no such file: $src" >&2; exit 2; }}
[ -r "$src" ] || {{ echo "cannot read: $src" >&2; exit 2; }}
sum=$(sha256sum < "$src" | cut -d " " -f 1) || exit 2
printf "\036jobd-sha256 %s\n" "$sum" >&2
exec cat -- "$src""#
    );
    wrap(&program)
}

fn wrap(program: &str) -> String {
    debug_assert!(!program.contains('\''));
    format!("exec /bin/sh -c '{program}'")
}

/// Whether `s` can stand unquoted in our programs: letters, digits and `_ . / + -`.
pub(crate) fn is_plain_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./+-".contains(&b))
}

/// Quotes `s` for a POSIX shell with single quotes.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The environment block sent ahead of a script: `export` lines and a `cd`.
pub(crate) fn env_block(
    env: &[(String, String)],
    workdir: Option<&str>,
    script_args: &[String],
) -> String {
    let mut out = String::new();
    for (k, v) in env {
        out.push_str(&format!("export {k}={}\n", sh_quote(v)));
    }
    if let Some(dir) = workdir {
        out.push_str(&format!("cd -- {} || exit 126\n", sh_quote(dir)));
    }
    if !script_args.is_empty() {
        // Sourced by the shell that execs the interpreter with "$@": keep $1 (the script
        // file) and append the arguments.
        let quoted: Vec<String> = script_args.iter().map(|a| sh_quote(a)).collect();
        out.push_str(&format!("set -- \"$1\" {}\n", quoted.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_contain_no_single_quote_inside_the_wrapper() {
        for p in [
            run_program("bash", &[], "sh", "S1"),
            kill_program(42, 20),
            push_program(),
            pull_program(),
        ] {
            let inner = p
                .strip_prefix("exec /bin/sh -c '")
                .and_then(|s| s.strip_suffix('\''))
                .unwrap();
            assert!(!inner.contains('\''), "{inner}");
        }
    }

    #[test]
    fn quoting_survives_hostile_values() {
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        let block = env_block(
            &[("A".into(), "x'; rm -rf / #".into())],
            Some("/tmp/a b"),
            &["it's".into()],
        );
        assert_eq!(
            block,
            "export A='x'\\''; rm -rf / #'\ncd -- '/tmp/a b' || exit 126\nset -- \"$1\" 'it'\\''s'\n"
        );
    }
}
