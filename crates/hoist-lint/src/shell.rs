//! A rough shell reader for RUN lines: splits a script into simple commands at
//! `&&`, `||`, `;`, `&`, `|`, newlines and parentheses, with quotes removed from
//! words. It does not expand anything; it is enough to see `apt-get install`
//! without `-y`, but a command hidden in a variable or `eval` is not seen.

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    /// The words, quotes removed; leading `VAR=value` assignments dropped.
    pub argv: Vec<String>,
    /// Whether this command reads the previous one's output (`a | b`).
    pub piped: bool,
}

impl Command {
    /// The command name without its directory (`/usr/bin/pip` -> `pip`).
    pub fn name(&self) -> &str {
        self.argv
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .unwrap_or("")
    }

    /// The command with `sudo [flags]` and `env [VAR=x]` stripped from its front.
    pub fn unwrapped(&self) -> Command {
        let mut argv: &[String] = &self.argv;
        loop {
            let name = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a));
            match name {
                Some("sudo") | Some("env") => {
                    argv = &argv[1..];
                    while argv
                        .first()
                        .is_some_and(|a| a.starts_with('-') || is_assignment(a))
                    {
                        argv = &argv[1..];
                    }
                }
                _ => break,
            }
        }
        Command {
            argv: argv.to_vec(),
            piped: self.piped,
        }
    }
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Splits `script` into simple commands.
pub(crate) fn commands(script: &str) -> Vec<Command> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut piped = false;
    let mut chars = script.chars().peekable();

    fn end_word(words: &mut Vec<String>, word: &mut String, in_word: &mut bool) {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    }
    fn end_cmd(out: &mut Vec<Command>, words: &mut Vec<String>, piped: bool) {
        let argv: Vec<String> = std::mem::take(words)
            .into_iter()
            .skip_while(|w| is_assignment(w))
            .collect();
        if !argv.is_empty() {
            out.push(Command { argv, piped });
        }
    }

    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(n) => {
                    word.push(n);
                    in_word = true;
                }
                None => {}
            },
            '\'' => {
                in_word = true;
                for n in chars.by_ref() {
                    if n == '\'' {
                        break;
                    }
                    word.push(n);
                }
            }
            '"' => {
                in_word = true;
                while let Some(n) = chars.next() {
                    match n {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                word.push(e);
                            }
                        }
                        _ => word.push(n),
                    }
                }
            }
            '$' if chars.peek() == Some(&'(') => {
                // Command substitution: kept inside the word, nesting counted.
                in_word = true;
                word.push('$');
                let mut depth = 0;
                for n in chars.by_ref() {
                    word.push(n);
                    match n {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '#' if !in_word => {
                // A comment runs to the end of the line.
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                end_cmd(&mut out, &mut words, piped);
                piped = false;
            }
            ' ' | '\t' | '\r' => end_word(&mut words, &mut word, &mut in_word),
            '|' => {
                end_word(&mut words, &mut word, &mut in_word);
                let or = chars.peek() == Some(&'|');
                if or {
                    chars.next();
                }
                end_cmd(&mut out, &mut words, piped);
                piped = !or;
            }
            '&' | ';' | '\n' | '(' | ')' | '{' | '}' if !matches!(c, '{' | '}') || !in_word => {
                // Braces separate only as words of their own (`{ a; }`, not `${A}`).
                end_word(&mut words, &mut word, &mut in_word);
                if c == '&' && chars.peek() == Some(&'&') {
                    chars.next();
                }
                end_cmd(&mut out, &mut words, piped);
                piped = false;
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    end_word(&mut words, &mut word, &mut in_word);
    end_cmd(&mut out, &mut words, piped);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(s: &str) -> Vec<Vec<String>> {
        commands(s).into_iter().map(|c| c.argv).collect()
    }

    #[test]
    fn splits_at_operators_and_removes_quotes() {
        assert_eq!(
            argvs("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y 'a b' \\\n  \"c\"; echo x || true"),
            vec![
                vec!["apt-get", "update"],
                vec!["apt-get", "install", "-y", "a b", "c"],
                vec!["echo", "x"],
                vec!["true"],
            ]
        );
    }

    #[test]
    fn pipes_and_substitutions() {
        let c = commands("curl -fsSL https://x | sh -s -- -y\nsh -c \"$(wget -O- https://y)\"");
        assert_eq!(c.len(), 3);
        assert!(!c[0].piped && c[1].piped && !c[2].piped);
        assert_eq!(c[1].name(), "sh");
        assert_eq!(c[2].argv[2], "$(wget -O- https://y)");
    }

    #[test]
    fn unwraps_sudo_and_env() {
        let c = commands("sudo -E env A=1 /usr/bin/pip install x");
        assert_eq!(c[0].unwrapped().name(), "pip");
        assert_eq!(c[0].name(), "sudo");
    }

    #[test]
    fn comments_and_braces() {
        assert_eq!(
            argvs("# note\nfoo ${A} # trailing\n{ bar; }"),
            vec![vec!["foo", "${A}"], vec!["bar"]]
        );
    }
}
