//! The settings tables stay in step with the code.
//!
//! `server/src/config.rs` is the one place the server reads its settings. This test reads that
//! file as text, collects every environment variable it reads, and compares the set with the
//! rows of the settings tables in `docs/settings.md` and in `README.md`: a setting the code reads
//! but a table leaves out fails, and so does a row for a setting the code no longer reads.
//!
//! How a read is recognised (comments and the `#[cfg(test)]` module are left out first):
//! - `var("NAME")`, `std::env::var("NAME")`, `env::var_os("NAME")`: a direct read;
//! - `helper(&var, "NAME", …)` or `helper(var, "NAME", …)`: a read through a helper that is
//!   handed the lookup function, as `flag(&var, "USE_REFRESH_TOKEN", true)` and
//!   `seconds(&var, "RENEW_JITTER_SECS", 5)` are; any helper, not only those two.
//!
//! And so that a new way of reading cannot slip past unseen: every string literal in the code
//! that looks like a setting name (`SCREAMING_SNAKE_CASE`, as in `invalid("OIDC_ISSUER", …)`)
//! must be one of the names found read. If this fails for a name the code does read, teach
//! `reads` below the new form.
//!
//! A settings table is a Markdown table whose first header cell is `variable`; each row names one
//! setting in its first cell, in backticks. `docs/settings.md` documents the variables that the
//! libraries underneath read (Leptos, tracing) in a table with another first header, so that they
//! are not counted as the server's settings; the variables the rest of `server/src` reads
//! directly must be mentioned there.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ is inside the repository").to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A token of Rust source, as far as this test needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
}

/// Splits Rust source into identifiers, string literals and punctuation, dropping comments
/// (doc comments included), whitespace, numbers and character literals. String literals may
/// hold `//` (`"redis://"`), so comments are recognised only outside them.
fn tokenize(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_string_start(&chars, i).is_some() {
            let (hashes, body_start) = raw_string_start(&chars, i).expect("checked");
            let mut j = body_start;
            loop {
                assert!(j < chars.len(), "unterminated raw string literal");
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    break;
                }
                j += 1;
            }
            tokens.push(Token::Str(chars[body_start..j].iter().collect()));
            i = j + 1 + hashes;
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            let mut text = String::new();
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                }
                if let Some(&ch) = chars.get(j) {
                    text.push(ch);
                }
                j += 1;
            }
            tokens.push(Token::Str(text));
            i = j + 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\'') or a lifetime ('static, 'a): skip the former.
            if next == Some('\\') {
                // Skip the escaped character itself, which may be a quote ('\'').
                let mut j = i + 3;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else {
            if !c.is_whitespace() {
                tokens.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    tokens
}

/// If a raw string literal (`r"…"`, `r#"…"#`) starts at `i`: its number of `#` and where its
/// body starts.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None; // The `r` ends an identifier, as in `for"`: not a raw string.
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((j - i - 1, j + 1))
}

/// Drops every item marked `#[cfg(test)]` (the attribute, then the item up to its matching
/// closing brace or its semicolon).
fn without_test_items(tokens: Vec<Token>) -> Vec<Token> {
    let cfg_test = [
        Token::Punct('#'),
        Token::Punct('['),
        Token::Ident("cfg".into()),
        Token::Punct('('),
        Token::Ident("test".into()),
        Token::Punct(')'),
        Token::Punct(']'),
    ];
    let mut kept = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i..].starts_with(&cfg_test) {
            i += cfg_test.len();
            let mut depth = 0;
            while i < tokens.len() {
                match tokens[i] {
                    Token::Punct('{') => depth += 1,
                    Token::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    Token::Punct(';') if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            kept.push(tokens[i].clone());
            i += 1;
        }
    }
    kept
}

/// `SCREAMING_SNAKE_CASE`, two characters at least: how environment variables are named.
fn is_setting_name(text: &str) -> bool {
    text.len() >= 2
        && text.starts_with(|c: char| c.is_ascii_uppercase())
        && text.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The environment variables that `tokens` read (see the module documentation for the forms).
fn reads(tokens: &[Token]) -> BTreeSet<String> {
    let ident = |i: usize, name: &str| matches!(tokens.get(i), Some(Token::Ident(id)) if id == name);
    let punct = |i: usize, c: char| tokens.get(i) == Some(&Token::Punct(c));
    let string = |i: usize| match tokens.get(i) {
        Some(Token::Str(text)) => Some(text.clone()),
        _ => None,
    };
    let mut names = BTreeSet::new();
    for i in 0..tokens.len() {
        // `var("NAME")`, `env::var("NAME")`, `var_os("NAME")`.
        if (ident(i, "var") || ident(i, "var_os")) && punct(i + 1, '(') {
            if let Some(name) = string(i + 2) {
                names.insert(name);
            }
        }
        // `helper(&var, "NAME"` or `helper(var, "NAME"`.
        if punct(i, '(') {
            let at = if punct(i + 1, '&') { i + 2 } else { i + 1 };
            if ident(at, "var") && punct(at + 1, ',') {
                if let Some(name) = string(at + 2) {
                    names.insert(name);
                }
            }
        }
    }
    names
}

/// The setting names in `source` as the code sees them: what it reads, and every string literal
/// that looks like a setting name (which must be among the former).
fn settings_in(source: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let tokens = without_test_items(tokenize(source));
    let literals = tokens
        .iter()
        .filter_map(|token| match token {
            Token::Str(text) if is_setting_name(text) => Some(text.clone()),
            _ => None,
        })
        .collect();
    (reads(&tokens), literals)
}

/// The rows of every settings table in `markdown` (tables whose first header cell is
/// `variable`), as setting name → line number; problems (a malformed first cell, a name listed
/// twice) are pushed to `problems`.
fn table_rows(markdown: &str, file: &str, problems: &mut Vec<String>) -> BTreeMap<String, usize> {
    let cells = |line: &str| -> Vec<String> {
        let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
        // Cells are split on `|` that is not escaped as `\|`.
        let mut cells = vec![String::new()];
        let mut previous = ' ';
        for c in inner.chars() {
            if c == '|' && previous != '\\' {
                cells.push(String::new());
            } else {
                cells.last_mut().expect("one cell at least").push(c);
            }
            previous = c;
        }
        cells.into_iter().map(|cell| cell.trim().to_owned()).collect()
    };
    let lines: Vec<&str> = markdown.lines().collect();
    let mut rows = BTreeMap::new();
    let mut in_fence = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("```") {
            in_fence = !in_fence;
            i += 1;
            continue;
        }
        let is_header = !in_fence
            && line.starts_with('|')
            && cells(line).first().is_some_and(|first| first.eq_ignore_ascii_case("variable"))
            && lines.get(i + 1).is_some_and(|next| is_separator(next));
        if !is_header {
            i += 1;
            continue;
        }
        i += 2;
        while i < lines.len() && lines[i].trim().starts_with('|') {
            let first = cells(lines[i]).into_iter().next().unwrap_or_default();
            let name = first.trim_matches('`');
            if !(first.starts_with('`') && first.ends_with('`') && is_setting_name(name)) {
                problems.push(format!(
                    "{file}:{}: a settings table row must name one setting in backticks in its first cell, found {first:?}",
                    i + 1
                ));
            } else if let Some(earlier) = rows.insert(name.to_owned(), i + 1) {
                problems.push(format!("{file}:{}: {name} has a row already (line {earlier})", i + 1));
            }
            i += 1;
        }
    }
    rows
}

/// The line under a Markdown table's header: `|---|:--:|`.
fn is_separator(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('|') && line.contains('-') && line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// Compares the rows of `file`'s settings tables with what the code reads.
fn check_table(file: &str, code_reads: &BTreeSet<String>, problems: &mut Vec<String>) {
    let markdown = read(&repository_root().join(file));
    let rows = table_rows(&markdown, file, problems);
    if rows.is_empty() {
        problems
            .push(format!("{file}: no settings table found (a Markdown table whose first header cell is `variable`)"));
        return;
    }
    for name in code_reads.iter().filter(|name| !rows.contains_key(*name)) {
        problems.push(format!("{file}: server/src/config.rs reads {name}, but no settings table row documents it"));
    }
    for (name, line) in rows.iter().filter(|(name, _)| !code_reads.contains(*name)) {
        problems.push(format!("{file}:{line}: documents {name}, which server/src/config.rs does not read"));
    }
}

fn config_reads() -> BTreeSet<String> {
    let source = read(&repository_root().join("server/src/config.rs"));
    let (reads, literals) = settings_in(&source);
    assert!(!reads.is_empty(), "no setting found read in server/src/config.rs: has the way it reads them changed?");
    let unexplained: Vec<_> = literals.difference(&reads).collect();
    assert!(
        unexplained.is_empty(),
        "server/src/config.rs names {unexplained:?}, but this test does not see them read: if they are \
         settings, teach `reads` (server/tests/settings_doc.rs) how they are read"
    );
    reads
}

#[test]
fn every_setting_the_server_reads_has_a_row_in_docs_settings_md_and_no_other() {
    let code_reads = config_reads();
    let mut problems = Vec::new();
    check_table("docs/settings.md", &code_reads, &mut problems);
    assert!(problems.is_empty(), "docs/settings.md is out of step with server/src/config.rs:\n{}", problems.join("\n"));
}

#[test]
fn the_readme_settings_table_is_complete_too() {
    let code_reads = config_reads();
    let mut problems = Vec::new();
    check_table("README.md", &code_reads, &mut problems);
    assert!(problems.is_empty(), "README.md is out of step with server/src/config.rs:\n{}", problems.join("\n"));
}

#[test]
fn variables_read_elsewhere_in_the_server_are_mentioned_in_docs_settings_md() {
    let settings = read(&repository_root().join("docs/settings.md"));
    let mut files = Vec::new();
    let mut dirs = vec![repository_root().join("server/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") && !path.ends_with("config.rs") {
                files.push(path);
            }
        }
    }
    let mut missing = Vec::new();
    for path in files {
        let (reads, _) = settings_in(&read(&path));
        for name in reads.into_iter().filter(|name| !settings.contains(&format!("`{name}`"))) {
            missing.push(format!("{} reads {name}, which docs/settings.md does not mention", path.display()));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_extraction_sees_every_form_of_read_and_nothing_else() {
    let source = r##"
        //! | `IN_A_DOC_COMMENT` | … |
        const SCHEMES: [&str; 2] = ["redis://", "rediss://"]; // `//` inside strings is no comment
        fn load(var: impl Fn(&str) -> Option<String>) {
            let _ = var("DIRECT");
            let _ = std::env::var("QUALIFIED");
            let _ = std::env::var_os("OS_STRING");
            let _ = flag(&var, "THROUGH_FLAG", true);
            let _ = seconds(&var, "THROUGH_SECONDS", 5);
            let _ = anything_new(var, "THROUGH_ANY_HELPER");
            let _ = 'x';
            let _: &'static str = r#"NOT_READ_RAW"#;
            /* var("IN_A_BLOCK_COMMENT") /* nested */ */
        }
        #[cfg(test)]
        mod tests {
            fn t() { let _ = var("ONLY_IN_TESTS"); }
        }
    "##;
    let (reads, literals) = settings_in(source);
    let expected = ["DIRECT", "OS_STRING", "QUALIFIED", "THROUGH_ANY_HELPER", "THROUGH_FLAG", "THROUGH_SECONDS"];
    assert_eq!(reads.iter().map(String::as_str).collect::<Vec<_>>(), expected);
    assert_eq!(literals.difference(&reads).map(String::as_str).collect::<Vec<_>>(), ["NOT_READ_RAW"]);
}

#[test]
fn tables_are_found_by_their_first_header_and_malformed_rows_reported() {
    let markdown = "\
| variable | default |
|----------|---------|
| `APP_URL` | `http://localhost:3000` |
| `APP_URL` | again |
| APP_URL_WITHOUT_BACKTICKS | x |

| other variable | default |
|----------------|---------|
| `LEPTOS_SITE_ADDR` | `127.0.0.1:3000` |

```
| variable | in a code block |
|----------|-----------------|
| `NOT_A_ROW` | x |
```
";
    let mut problems = Vec::new();
    let rows = table_rows(markdown, "test.md", &mut problems);
    assert_eq!(rows.keys().map(String::as_str).collect::<Vec<_>>(), ["APP_URL"]);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("test.md:4: APP_URL has a row already"), "{problems:?}");
    assert!(problems[1].contains("test.md:5:"), "{problems:?}");
}
