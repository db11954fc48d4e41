//! The recipients of the list: age X25519 public keys (`age1…`), from the command line or from a
//! recipients file in the format of `age -R` (one key a line, `#` comments, blank lines).

use std::path::Path;
use std::str::FromStr;

use age::x25519::Recipient;

/// A recipient that could not be used; names where it came from, never echoes a secret key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin} {shown}: {why}")]
pub struct RecipientError {
    /// `--recipient #2` or `recipients file F line 3`.
    pub origin: String,
    /// The start of the text, or a placeholder when it is a secret key.
    pub shown: String,
    pub why: String,
}

/// Parses one recipient; `origin` names the argument or file line for the error.
pub(crate) fn parse_recipient(text: &str, origin: &str) -> Result<Recipient, RecipientError> {
    let text = text.trim();
    let error = |why: &str| RecipientError {
        origin: origin.to_string(),
        shown: show(text),
        why: why.to_string(),
    };
    if text.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
        return Err(error(
            "this is an age secret key (identity), not a public key: give the recipient's \
             public key (`age-keygen -y key.txt` prints it) and keep the secret key secret",
        ));
    }
    if text.starts_with("ssh-") || text.starts_with("ecdsa-") {
        return Err(error(
            "SSH keys are not accepted: give an age X25519 public key (age1…)",
        ));
    }
    Recipient::from_str(text).map_err(|why| {
        if why == "incorrect HRP" && text.starts_with("age1") {
            // `age1NAME1…`: a plugin recipient (YubiKey, TPM…); this build has no plugins.
            error("plugin recipients are not accepted: give an age X25519 public key (age1…)")
        } else {
            error(&format!(
                "not an age X25519 public key (age1…, 62 characters): {why}"
            ))
        }
    })
}

/// What is shown of a refused recipient: the start, and never a secret key.
fn show(text: &str) -> String {
    if text.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
        return "(AGE-SECRET-KEY-…, not shown)".to_string();
    }
    let start: String = text.chars().take(24).collect();
    if start.len() < text.len() {
        format!("\"{start}…\"")
    } else {
        format!("\"{start}\"")
    }
}

/// Parses the `--recipient` arguments and the lines of the `--recipients-file`s, in that order;
/// duplicates are dropped (age would wrap the file key twice for the same key).
pub fn collect(args: &[String], files: &[&Path]) -> Result<Vec<Recipient>, RecipientError> {
    let mut out: Vec<Recipient> = Vec::new();
    let mut add = |recipient: Recipient| {
        if !out.contains(&recipient) {
            out.push(recipient);
        }
    };
    for (i, text) in args.iter().enumerate() {
        add(parse_recipient(text, &format!("--recipient #{}", i + 1))?);
    }
    for file in files {
        let text = kbi_core::io::read_config_text(file).map_err(|error| RecipientError {
            origin: format!("--recipients-file {}", file.display()),
            shown: String::new(),
            why: format!("cannot be read: {error}"),
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let origin = format!("--recipients-file {} line {}", file.display(), n + 1);
            add(parse_recipient(line, &origin)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    #[test]
    fn a_public_key_is_accepted_and_duplicates_dropped() {
        let all = collect(&[PUBLIC.to_string(), PUBLIC.to_string()], &[]).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].to_string(), PUBLIC);
    }

    #[test]
    fn errors_name_the_argument_and_hide_secret_keys() {
        let secret = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
        let error = collect(&[PUBLIC.to_string(), secret.to_string()], &[]).unwrap_err();
        assert_eq!(error.origin, "--recipient #2");
        assert!(!error.to_string().contains("GFPYY"), "{error}");
        let error = parse_recipient("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA", "--recipient #1")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("--recipient #1 \"ssh-ed25519"), "{error}");
        let error = parse_recipient("age1notakey", "--recipient #1")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not an age X25519 public key"), "{error}");
    }

    #[test]
    fn recipients_file_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recipients.txt");
        std::fs::write(&file, format!("# VSB\n\n{PUBLIC}\nnonsense\n")).unwrap();
        let error = collect(&[], &[&file]).unwrap_err();
        assert!(error.origin.ends_with("line 4"), "{}", error.origin);
        std::fs::write(&file, format!("# VSB\n{PUBLIC}\n")).unwrap();
        assert_eq!(collect(&[], &[&file]).unwrap().len(), 1);
    }
}
