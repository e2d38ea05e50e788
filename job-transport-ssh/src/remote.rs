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

/// How the script text reaches the interpreter on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// A private temporary file (`mktemp -d`, mode 0600), removed after the run: works for
    /// every interpreter and gives the script a real file as `$0`.
    File,
    /// The rest of the wrapper's stdin pipe, opened by the interpreter as
    /// `/proc/<wrapper pid>/fd/0` (only the run's user may open it): no temporary file and
    /// three programs fewer. The wrapper falls back to [`Delivery::File`] when its stdin is
    /// not a pipe.
    Pipe,
}

/// Shells that read a script from a path they open themselves, as a file or a pipe alike.
const PIPE_SHELLS: &[&str] = &["bash", "sh", "dash"];

/// The largest script streamed through the pipe. bash reads a script it cannot seek one
/// byte per system call, so past a few KiB the temporary file is cheaper.
pub(crate) const PIPE_MAX_SCRIPT: usize = 8 * 1024;

/// Names by which a script can find its own file: `$0` and friends. A script that uses
/// them may read itself (self-extracting installers do `tail -n +N "$0"`), which a pipe
/// cannot serve twice, so such a script gets a real file.
const OWN_PATH_WORDS: &[&str] = &["$0", "${0", "BASH_SOURCE", "BASH_ARGV0", "/proc/$$"];

/// Picks how to deliver `body` to `interpreter`: the pipe for short shell scripts that do
/// not refer to their own path, a temporary file for everything else.
pub(crate) fn delivery_for(interpreter: &str, body: &[u8]) -> Delivery {
    let refers_to_itself = OWN_PATH_WORDS
        .iter()
        .any(|w| body.windows(w.len()).any(|x| x == w.as_bytes()));
    if PIPE_SHELLS.contains(&interpreter) && body.len() <= PIPE_MAX_SCRIPT && !refers_to_itself {
        Delivery::Pipe
    } else {
        Delivery::File
    }
}

/// Runs a script in its own session and process group.
///
/// Stdin: the environment block (`export NAME=value` lines, a `cd` and the script's
/// positional arguments as `set -- "$1" …`, POSIX-quoted), a line holding only `sentinel`,
/// then the script. The wrapper keeps the block in a variable (`read` is a built-in that
/// stops at the line's end, so the script stays in the pipe), forks, and in the child
/// evaluates the block and execs `setsid <interpreter> <args> <script path> <script args>`
/// with stdin from `/dev/null`. The script path is `/proc/<wrapper pid>/fd/0` for
/// [`Delivery::Pipe`] or a file in a private `mktemp -d` directory. The wrapper reports the
/// group id first, waits for the script, kills whatever the script left behind in its group
/// (TERM, then KILL after two seconds) and exits with the script's status (128 + signal when
/// killed).
pub(crate) fn run_program(
    interpreter: &str,
    args: &[String],
    extension: &str,
    sentinel: &str,
    delivery: Delivery,
) -> String {
    debug_assert!(is_plain_word(interpreter) && is_plain_word(sentinel));
    debug_assert!(args.iter().all(|a| is_plain_word(a)));
    debug_assert!(extension.bytes().all(|b| b.is_ascii_alphanumeric()));
    let command = if args.is_empty() {
        interpreter.to_owned()
    } else {
        format!("{interpreter} {}", args.join(" "))
    };
    let file = if extension.is_empty() {
        "script".to_owned()
    } else {
        format!("script.{extension}")
    };
    // Whether the script goes into a temporary file: always for `File`; for `Pipe` only
    // when stdin is not a pipe (an SSH server that hands the session a socket or a file).
    let needs_file = match delivery {
        Delivery::File => ":",
        Delivery::Pipe => "[ ! -p /dev/stdin ]",
    };
    let program = format!(
        r#"umask 077
e=
while IFS= read -r l; do [ "$l" = "{sentinel}" ] && break; e="$e$l
"; done
d=
f="/proc/$$/fd/0"
if {needs_file}; then
  d=$(mktemp -d "${{TMPDIR:-/tmp}}/jobd.XXXXXXXX") || exit {SETUP_FAILED}
  f="$d/{file}"
  cat > "$f" || {{ rm -rf "$d"; exit {SETUP_FAILED}; }}
fi
{{ set -- "$f"; eval "$e" && exec setsid {command} "$@"; }} < /dev/null &
p=$!
printf "\036jobd-pgid %s\n" "$p" >&2
wait "$p"; rc=$?
if kill -TERM -"$p" 2>/dev/null; then
  i=0; while [ "$i" -lt 20 ] && kill -0 -"$p" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
  kill -KILL -"$p" 2>/dev/null
fi
[ -z "$d" ] || rm -rf "$d"
exit "$rc""#
    );
    wrap(&program)
}

/// How many bytes a resident runner's end marker carries at most after its nonce: the word
/// and a status (`end 255`, `pgid 4194304`) — longer means the line is not ours.
pub(crate) const RUNNER_MARKER_MAX: usize = 24;

/// The resident runner: a `bash` loop on one long-lived channel of a pooled connection that
/// runs one script after another, each in its own process group, so a pooled run costs a
/// fork and an exec instead of a whole SSH session (see `docs/transports.md`).
///
/// Stdin, per run: a header line `<nonce> <env bytes> <script bytes> <interpreter> [args…]`,
/// then the environment block ([`env_block`]) and the script, both exactly as long as the
/// header says (`read -N` in the C locale counts bytes). The runner forks (job control on, so
/// the child leads its own process group), the child restores the locale, evaluates the
/// block with `$1` set to `/dev/fd/4` and execs the interpreter on the script, which it
/// reads from a here-string on fd 4; stdin is `/dev/null`. The runner prints
/// `\x1e<nonce> pgid <n>` on stderr, waits, kills whatever the script left in its group
/// (TERM, then KILL after two seconds, as [`run_program`] does), and prints
/// `\x1e<nonce> end <status>` on stdout and on stderr, so that each stream's end marker comes
/// after every byte the script wrote to it. End of stdin ends the runner.
pub(crate) fn runner_program() -> String {
    let program = r#"set -m
h=${LC_ALL+x}; l=${LC_ALL-}
LC_ALL=C
while IFS=" " read -r n el sl cmd; do
  e=; s=
  [ "$el" = 0 ] || IFS= read -r -N "$el" e || exit 0
  [ "$sl" = 0 ] || IFS= read -r -N "$sl" s || exit 0
  { if [ -n "$h" ]; then LC_ALL=$l; else unset LC_ALL; fi
    set -- /dev/fd/4; eval "$e" && exec $cmd "$@" 4<<<"$s"; } < /dev/null &
  p=$!
  printf "\036%s pgid %s\n" "$n" "$p" >&2
  wait "$p" 2>/dev/null; rc=$?
  if kill -TERM -"$p" 2>/dev/null; then
    i=0; while [ "$i" -lt 20 ] && kill -0 -"$p" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
    kill -KILL -"$p" 2>/dev/null
  fi
  printf "\036%s end %s\n" "$n" "$rc"
  printf "\036%s end %s\n" "$n" "$rc" >&2
done"#;
    debug_assert!(!program.contains('\''));
    format!("exec /bin/sh -c 'exec bash -c \"$0\"' '{program}'")
}

/// One request to a resident runner ([`runner_program`]): header, environment block, script.
/// `command` is the interpreter and its arguments, plain words.
pub(crate) fn runner_request(nonce: &str, command: &str, env: &str, body: &[u8]) -> Vec<u8> {
    debug_assert!(is_plain_word(nonce));
    let mut req = format!("{nonce} {} {} {command}\n", env.len(), body.len()).into_bytes();
    req.extend_from_slice(env.as_bytes());
    req.extend_from_slice(body);
    req
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
/// checksum of what landed verified, then renamed into place.
///
/// Stdin, one per line: the destination path, `overwrite` or `skip`, the expected sha256,
/// the umask to create the temporary file with (so that it gets the final mode without a
/// `chmod` when the mode has no execute or special bits), the octal mode to `chmod` to or
/// `-`, and a random tag naming the temporary file (`.jobd-upload.<tag>`, created with
/// `O_EXCL` through the shell's noclobber mode); then the content. Stdout: `skipped` or
/// `ok <sha256>`. On the common path only `cat`, `sha256sum` and `mv` run.
pub(crate) fn push_program() -> String {
    let program = format!(
        r#"umask 077
IFS= read -r dest || exit {SETUP_FAILED}
IFS= read -r how || exit {SETUP_FAILED}
IFS= read -r want || exit {SETUP_FAILED}
IFS= read -r mask || exit {SETUP_FAILED}
IFS= read -r mode || exit {SETUP_FAILED}
IFS= read -r tag || exit {SETUP_FAILED}
if [ "$how" = skip ] && [ -e "$dest" ]; then cat > /dev/null; echo skipped; exit 0; fi
dir=${{dest%/*}}
[ -n "$dir" ] || dir=/
[ -d "$dir" ] || mkdir -p -- "$dir" || exit {SETUP_FAILED}
t="$dir/.jobd-upload.$tag"
umask "$mask" && set -C && : > "$t" && set +C || exit {SETUP_FAILED}
cat > "$t" || {{ rm -f -- "$t"; exit {SETUP_FAILED}; }}
got=$(sha256sum < "$t") || {{ rm -f -- "$t"; exit {SETUP_FAILED}; }}
got=${{got%% *}}
if [ "$got" != "$want" ]; then rm -f -- "$t"; echo "checksum mismatch: expected $want, got $got" >&2; exit 124; fi
if [ "$mode" != - ]; then chmod "$mode" "$t" || {{ rm -f -- "$t"; exit {SETUP_FAILED}; }}; fi
mv -f -- "$t" "$dest" || {{ rm -f -- "$t"; exit {SETUP_FAILED}; }}
echo "ok $got""#
    );
    wrap(&program)
}

/// The push header's umask and `chmod` lines for a file mode: a mode within `0o666` is
/// reached by the umask alone; anything else is created private and `chmod`ed.
pub(crate) fn push_mode_lines(mode: u32) -> (String, String) {
    let mode = mode & 0o7777;
    if mode & !0o666 == 0 {
        (format!("{:03o}", !mode & 0o777), "-".to_owned())
    } else {
        ("077".to_owned(), format!("{mode:o}"))
    }
}

/// Sends a file back: its sha256 on stderr (one line), then its content on stdout.
///
/// Stdin: the source path on one line.
pub(crate) fn pull_program() -> String {
    let program = format!(
        r#"IFS= read -r src || exit {SETUP_FAILED}
[ -f "$src" ] || {{ echo "no such file: $src" >&2; exit 2; }}
[ -r "$src" ] || {{ echo "cannot read: $src" >&2; exit 2; }}
sum=$(sha256sum < "$src") || exit 2
sum=${{sum%% *}}
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
            run_program("bash", &[], "sh", "S1", Delivery::File),
            run_program("bash", &[], "sh", "S1", Delivery::Pipe),
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
    fn short_shell_scripts_go_through_the_pipe_and_everything_else_through_a_file() {
        assert_eq!(delivery_for("bash", b"echo hi"), Delivery::Pipe);
        assert_eq!(delivery_for("sh", b"echo hi"), Delivery::Pipe);
        assert_eq!(delivery_for("python3", b"print(1)"), Delivery::File);
        assert_eq!(delivery_for("bash", b"tail -n +3 \"$0\""), Delivery::File);
        assert_eq!(delivery_for("bash", b"cd \"${0%/*}\""), Delivery::File);
        assert_eq!(
            delivery_for("bash", b"echo ${BASH_SOURCE[0]}"),
            Delivery::File
        );
        let long = vec![b'#'; PIPE_MAX_SCRIPT + 1];
        assert_eq!(delivery_for("bash", &long), Delivery::File);
    }

    #[test]
    fn a_mode_within_0666_needs_only_a_umask() {
        assert_eq!(push_mode_lines(0o644), ("133".to_owned(), "-".to_owned()));
        assert_eq!(push_mode_lines(0o600), ("177".to_owned(), "-".to_owned()));
        assert_eq!(push_mode_lines(0o755), ("077".to_owned(), "755".to_owned()));
        assert_eq!(
            push_mode_lines(0o4755),
            ("077".to_owned(), "4755".to_owned())
        );
    }

    /// Runs the wrapper with local `/bin/sh`, stdin from a regular file rather than a pipe.
    #[test]
    fn the_pipe_wrapper_falls_back_to_a_file_when_stdin_is_not_a_pipe() {
        let dir = std::env::temp_dir().join(format!("jobd-remote-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("stdin");
        let mut stdin = env_block(&[("X".into(), "x y".into())], None, &["arg".into()]);
        stdin.push_str("S1\nprintf '%s|%s' \"$X\" \"$1\"\nread -r l || printf '|eof'\n");
        std::fs::write(&input, stdin).unwrap();
        let program = run_program("sh", &[], "sh", "S1", Delivery::Pipe);
        let inner = program
            .strip_prefix("exec /bin/sh -c '")
            .and_then(|s| s.strip_suffix('\''))
            .unwrap();
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", inner])
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "x y|arg|eof");
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
