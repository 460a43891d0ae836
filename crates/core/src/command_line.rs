//! ECS Exec's `--command "..."` string as an argument vector.
//!
//! ECS hands the string to the SSM agent, which runs it without a shell:
//! AWS's documentation tells users to write `--command "/bin/sh -c '...'"`
//! for pipes and redirections. orca does the same: the string is split into
//! words by the POSIX shell's quoting rules and nothing else. No variable,
//! glob or tilde expansion, no operators (`|`, `;`, `>` and `#` are ordinary
//! characters), so what runs is exactly what was typed, in every container
//! whether or not it has a shell.
//!
//! Quoting: whitespace separates words; `'...'` keeps everything literally;
//! `"..."` keeps everything except that a backslash escapes `\`, `"`, `$`,
//! `` ` `` and a newline (dropped); outside quotes a backslash escapes any
//! character (a backslash-newline is dropped). `''` is an empty word.

/// Why a command string could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandLineError {
    #[error("the command is empty")]
    Empty,
    #[error("the command has an unterminated {0} quote")]
    UnterminatedQuote(char),
    #[error("the command ends with a lone backslash")]
    TrailingBackslash,
}

/// Splits `command` into its words (see the module documentation).
pub fn parse_command(command: &str) -> Result<Vec<String>, CommandLineError> {
    let mut words = Vec::new();
    // The word being built; `None` between words (so `''` can make an
    // empty word while runs of blanks make none).
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(CommandLineError::UnterminatedQuote('\'')),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(c @ ('\\' | '"' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(CommandLineError::UnterminatedQuote('"')),
                        },
                        Some(c) => w.push(c),
                        None => return Err(CommandLineError::UnterminatedQuote('"')),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(CommandLineError::TrailingBackslash),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    if words.is_empty() {
        return Err(CommandLineError::Empty);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<String> {
        parse_command(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn blanks_separate_words() {
        assert_eq!(ok("/bin/sh"), ["/bin/sh"]);
        assert_eq!(ok("  ls   -l\t/tmp\n"), ["ls", "-l", "/tmp"]);
    }

    #[test]
    fn quotes_group_and_nest() {
        assert_eq!(
            ok("sh -c 'read x; echo got $x; exit 3'"),
            ["sh", "-c", "read x; echo got $x; exit 3"]
        );
        assert_eq!(ok(r#"echo "it's here""#), ["echo", "it's here"]);
        assert_eq!(ok(r#"a'b c'"d e"f"#), ["ab cd ef"]);
        assert_eq!(ok("echo '' \"\" x"), ["echo", "", "", "x"]);
    }

    #[test]
    fn backslashes_follow_the_shell() {
        assert_eq!(ok(r"echo a\ b \'c"), ["echo", "a b", "'c"]);
        assert_eq!(
            ok(r#"echo "\$HOME \"q\" \\ \n""#),
            ["echo", r#"$HOME "q" \ \n"#]
        );
        assert_eq!(ok("echo a\\\nb"), ["echo", "ab"]);
        assert_eq!(ok(r"echo '\n'"), ["echo", r"\n"]);
    }

    #[test]
    fn nothing_is_expanded_or_interpreted() {
        assert_eq!(
            ok("echo $HOME * ~ a|b ; # c > d"),
            ["echo", "$HOME", "*", "~", "a|b", ";", "#", "c", ">", "d"]
        );
    }

    #[test]
    fn bad_strings_are_errors() {
        assert_eq!(parse_command(""), Err(CommandLineError::Empty));
        assert_eq!(parse_command(" \t\n"), Err(CommandLineError::Empty));
        assert_eq!(
            parse_command("sh -c 'echo"),
            Err(CommandLineError::UnterminatedQuote('\''))
        );
        assert_eq!(
            parse_command("echo \"a"),
            Err(CommandLineError::UnterminatedQuote('"'))
        );
        assert_eq!(
            parse_command("echo \"a\\"),
            Err(CommandLineError::UnterminatedQuote('"'))
        );
        assert_eq!(
            parse_command("echo \\"),
            Err(CommandLineError::TrailingBackslash)
        );
    }
}
