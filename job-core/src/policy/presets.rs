//! The built-in command and path rules shipped with the platform.
//!
//! Built-in rules carry stable ids (the same on every node and every release), so a store
//! can seed them idempotently; they can be disabled, not deleted. Command patterns are
//! written against the normalized script (see [`super::normalize`]): tokens are separated
//! by one space and segments by NUL, which is the rules' line terminator.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::RuleId;
use crate::model::{CommandRule, PathMatchType, PathRule, PathRuleKind, RuleLevel};
use crate::values::{Description, Name};

/// A command word: at the start of a segment or after a blank or a `/` (`/bin/rm`).
const CMD: &str = r"(?:^|[\s/])";
/// The end of a token.
const END: &str = r"(?:\s|$)";
/// A recursive flag of `rm`: `-r`, `-R`, `-rf`, `-fr`, `--recursive`.
const RECURSIVE: &str = r"(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)";
/// The root directory: `/`, `//`, `/.`, `/*`, `/./`.
const ROOT: &str = r"/[/.]*\*?";
/// A top-level system directory.
const SYSTEM_DIR: &str =
    r"/+(?:bin|boot|dev|etc|home|lib|lib32|lib64|opt|proc|root|sbin|srv|sys|usr|var)/*\*?";
/// A Windows drive root: `c:`, `c:\`, `C:/`, `c:\*`.
const DRIVE_ROOT: &str = r"[a-zA-Z]:[\\/]*\*?";

/// One built-in command rule, as data.
struct CommandPreset {
    n: u16,
    name: &'static str,
    level: RuleLevel,
    pattern: String,
    description: &'static str,
}

/// `cmd … flag … target` or `cmd … target … flag`, within one segment.
fn with_flag_and_target(cmd: &str, flag: &str, target: &str) -> String {
    format!(
        r"{CMD}{cmd}\s(?:.*\s)?{flag}(?:\s.*)?\s{target}{END}|{CMD}{cmd}\s(?:.*\s)?{target}\s(?:.*\s)?{flag}{END}"
    )
}

fn command_presets() -> Vec<CommandPreset> {
    use RuleLevel::{Confirm, Forbidden};
    let p = |n, name, level, pattern: String, description| CommandPreset {
        n,
        name,
        level,
        pattern,
        description,
    };
    vec![
        p(
            1,
            "rm -rf /",
            Forbidden,
            with_flag_and_target("rm", RECURSIVE, ROOT),
            "Recursive delete of the root directory, in any flag order or spelling.",
        ),
        p(
            2,
            "recursive rm of a system directory",
            Forbidden,
            with_flag_and_target("rm", RECURSIVE, SYSTEM_DIR),
            "Recursive delete of a top-level system directory such as /etc or /usr.",
        ),
        p(
            3,
            "mkfs on a device",
            Forbidden,
            format!(r"{CMD}(?:mkfs(?:\.[a-zA-Z0-9]+)?|mke2fs|mkswap)\s.*/dev/"),
            "Creating a file system on a block device destroys its data.",
        ),
        p(
            4,
            "dd onto a device",
            Forbidden,
            format!(
                r"{CMD}dd\s.*of=/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|md|dm-|mapper/|disk/|loop|sr|root)"
            ),
            "Writing raw data onto a block device destroys its data.",
        ),
        p(
            5,
            "redirect onto a device",
            Forbidden,
            r">\s?/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|md|dm-|mapper/|disk/)".to_owned(),
            "Redirecting output onto a block device destroys its data.",
        ),
        p(
            6,
            "wipefs",
            Forbidden,
            format!(r"{CMD}wipefs{END}"),
            "Erasing file system signatures makes a device unreadable.",
        ),
        p(
            7,
            "shred or discard a device",
            Forbidden,
            format!(r"{CMD}(?:shred|blkdiscard)\s.*/dev/"),
            "Overwriting or discarding a whole device destroys its data.",
        ),
        p(
            8,
            "fork bomb",
            Forbidden,
            r"\(\) ?\{ ?[^\s\x00]+\x00[^\s\x00]+\x00\}|(?:^|\x00)%0 ?\x00 ?%0(?:\x00|$)".to_owned(),
            "A function that pipes itself into itself in the background exhausts the host.",
        ),
        p(
            9,
            "recursive chmod/chown of the root directory",
            Forbidden,
            format!(
                "{}|{}",
                with_flag_and_target(
                    "chmod",
                    r"(?:-[a-zA-Z]*R[a-zA-Z]*|--recursive)",
                    r"\S+\s/[/.]*"
                ),
                with_flag_and_target(
                    "chown",
                    r"(?:-[a-zA-Z]*R[a-zA-Z]*|--recursive)",
                    r"\S+\s/[/.]*"
                ),
            ),
            "Changing ownership or modes of every file breaks the system.",
        ),
        p(
            10,
            "shutdown, reboot, poweroff or halt",
            Confirm,
            format!(
                r"{CMD}(?:shutdown(?:\.exe)?|reboot|poweroff|halt){END}|{CMD}systemctl\s(?:.*\s)?(?:poweroff|reboot|halt|kexec){END}|{CMD}(?:tel)?init\s[06]{END}"
            ),
            "Stops or restarts the host.",
        ),
        p(
            11,
            "systemctl stop or restart",
            Confirm,
            format!(
                r"{CMD}systemctl\s(?:.*\s)?(?:stop|restart){END}|{CMD}service\s\S+\s(?:stop|restart){END}"
            ),
            "Stops or restarts a service.",
        ),
        p(
            12,
            "format a drive (Windows)",
            Forbidden,
            r"(?i)(?:^|\s)format(?:\.com)?\s(?:.*\s)?[a-z]:".to_owned(),
            "Formats a Windows volume.",
        ),
        p(
            13,
            "Remove-Item -Recurse of a drive root (Windows)",
            Forbidden,
            format!(
                "(?i){}",
                with_flag_and_target(
                    r"(?:remove-item|ri|rm|rmdir|del|erase|rd)",
                    r"-r[a-z]*",
                    DRIVE_ROOT
                )
            ),
            "Recursive delete of a whole Windows drive from PowerShell.",
        ),
        p(
            14,
            "rd /s of a drive root (Windows)",
            Forbidden,
            format!(
                "(?i){}",
                with_flag_and_target(r"(?:rd|rmdir|del|erase)", r"/s", DRIVE_ROOT)
            ),
            "Recursive delete of a whole Windows drive from cmd.",
        ),
        p(
            15,
            "bcdedit /delete (Windows)",
            Forbidden,
            r"(?i)(?:^|\s)bcdedit(?:\.exe)?\s(?:.*\s)?/delete".to_owned(),
            "Deleting boot entries can leave Windows unbootable.",
        ),
        p(
            16,
            "wipe a disk (Windows)",
            Forbidden,
            r"(?i)(?:^|\s)(?:clear-disk|format-volume|initialize-disk)(?:\s|$)".to_owned(),
            "Erases a Windows disk or volume.",
        ),
        p(
            17,
            "Stop-Computer or Restart-Computer (Windows)",
            Confirm,
            r"(?i)(?:^|\s)(?:stop|restart)-computer(?:\s|$)".to_owned(),
            "Stops or restarts a Windows host.",
        ),
    ]
}

/// A stable id for built-in rule number `n` of `family` (1 = command, 2 = path).
fn builtin_id(family: u128, n: u16) -> RuleId {
    // "job" in ASCII, then a version-7-shaped layout, then the family and the number.
    RuleId::from_uuid(Uuid::from_u128(
        0x6a6f_6200_0000_7000_8000_0000_0000_0000 | (family << 16) | u128::from(n),
    ))
}

fn name(text: &str) -> Option<Name> {
    Name::parse("name", text).ok()
}

/// The built-in command rules, enabled, global, marked `built_in`, created at `created_at`.
pub fn builtin_command_rules(created_at: DateTime<Utc>) -> Vec<CommandRule> {
    command_presets()
        .into_iter()
        .filter_map(|p| {
            Some(CommandRule {
                id: builtin_id(1, p.n),
                name: name(p.name)?,
                pattern: p.pattern,
                level: p.level,
                enabled: true,
                built_in: true,
                team_id: None,
                description: Description::parse("description", p.description).ok()?,
                created_at,
            })
        })
        .collect()
}

/// `(number, pattern, level, windows)` of each built-in path deny rule; every one is a
/// prefix rule.
const PATH_PRESETS: [(u16, &str, RuleLevel, bool); 24] = [
    (1, "/boot", RuleLevel::Forbidden, false),
    (2, "/dev", RuleLevel::Forbidden, false),
    (3, "/proc", RuleLevel::Forbidden, false),
    (4, "/sys", RuleLevel::Forbidden, false),
    (5, "/root/.ssh", RuleLevel::Forbidden, false),
    (6, "/etc/shadow", RuleLevel::Forbidden, false),
    (7, "/etc/gshadow", RuleLevel::Forbidden, false),
    (8, "/etc", RuleLevel::Confirm, false),
    (9, "/bin", RuleLevel::Confirm, false),
    (10, "/sbin", RuleLevel::Confirm, false),
    (11, "/lib", RuleLevel::Confirm, false),
    (12, "/usr/bin", RuleLevel::Confirm, false),
    (13, "/usr/sbin", RuleLevel::Confirm, false),
    (14, "/lib64", RuleLevel::Confirm, false),
    (
        15,
        r"C:\Windows\System32\config",
        RuleLevel::Forbidden,
        true,
    ),
    (
        16,
        r"C:\Windows\System32\drivers",
        RuleLevel::Forbidden,
        true,
    ),
    (17, r"C:\Boot", RuleLevel::Forbidden, true),
    (18, r"C:\bootmgr", RuleLevel::Forbidden, true),
    (19, r"C:\EFI", RuleLevel::Forbidden, true),
    (20, r"C:\pagefile.sys", RuleLevel::Forbidden, true),
    (21, r"C:\Windows", RuleLevel::Confirm, true),
    (22, r"C:\Program Files", RuleLevel::Confirm, true),
    (23, r"C:\Program Files (x86)", RuleLevel::Confirm, true),
    (24, r"C:\ProgramData", RuleLevel::Confirm, true),
];

/// The built-in path deny rules (prefix rules), enabled, global, marked `built_in`, created
/// at `created_at`: system areas of Linux and Windows hosts, `forbidden` for the ones that
/// can brick a host or leak credentials, `confirm` for system binaries and configuration.
pub fn builtin_path_rules(created_at: DateTime<Utc>) -> Vec<PathRule> {
    PATH_PRESETS
        .iter()
        .filter_map(|&(n, pattern, level, windows)| {
            Some(PathRule {
                id: builtin_id(2, n),
                name: name(pattern)?,
                pattern: pattern.to_owned(),
                match_type: PathMatchType::Prefix,
                kind: PathRuleKind::Deny,
                level,
                windows,
                enabled: true,
                built_in: true,
                team_id: None,
                description: Description::parse(
                    "description",
                    "A system area: writing here can break the host or leak credentials.",
                )
                .ok()?,
                created_at,
            })
        })
        .collect()
}
