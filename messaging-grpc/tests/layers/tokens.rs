//! A small Rust lexer (comments, strings, raw strings, chars and lifetimes skipped;
//! `#[cfg(test)]` modules dropped) and the paths the tokens name (`use` trees and
//! inline `a::b::c`).

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Token {
    Ident(String),
    Punct(char),
    /// `::`
    Colons,
}

/// The code's tokens, without comments, literals and `#[cfg(test)]` modules.
pub(crate) fn tokens(text: &str) -> Vec<Token> {
    without_test_modules(lex(text)).0
}

/// The `#[cfg(test)] mod name;` children of a file (their files are tests too).
pub(crate) fn test_children(text: &str) -> Vec<String> {
    without_test_modules(lex(text)).1
}

fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
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
        } else if c == '"' {
            i = skip_string(&chars, i + 1);
        } else if (c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some() {
            let (hashes, quote) = raw_string_start(&chars, i).expect("checked");
            i = quote + 1;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (0..hashes).all(|h| chars.get(i + 1 + h) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            if next == Some('\\') {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
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
            let word: String = chars[start..i].iter().collect();
            if (word == "b" || word == "c") && chars.get(i) == Some(&'"') {
                i = skip_string(&chars, i + 1);
            } else {
                out.push(Token::Ident(word));
            }
        } else if c == ':' && next == Some(':') {
            out.push(Token::Colons);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

fn skip_string(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// `r"`, `r#"`, `br##"`…: the number of `#` and where the quote is.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j))
}

/// Drops `#[cfg(test)] mod name { … }` and `#[cfg(test)] mod name;`, naming the latter.
fn without_test_modules(tokens: Vec<Token>) -> (Vec<Token>, Vec<String>) {
    let cfg_test = [
        Token::Punct('#'),
        Token::Punct('['),
        Token::Ident("cfg".into()),
        Token::Punct('('),
        Token::Ident("test".into()),
        Token::Punct(')'),
        Token::Punct(']'),
    ];
    let mut out = Vec::new();
    let mut children = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let is_test_module = tokens[i..].starts_with(&cfg_test)
            && tokens.get(i + 7) == Some(&Token::Ident("mod".into()));
        if !is_test_module {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        i += 9; // the attribute, `mod` and its name
        if tokens.get(i) == Some(&Token::Punct('{')) {
            let mut depth = 0;
            while i < tokens.len() {
                match tokens[i] {
                    Token::Punct('{') => depth += 1,
                    Token::Punct('}') => depth -= 1,
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
        } else {
            if let Some(Token::Ident(name)) = tokens.get(i - 1) {
                children.push(name.clone());
            }
            i += 1;
        }
    }
    (out, children)
}

/// Every path the code names: each leaf of a `use` tree, and each inline `a::b::c`.
pub(crate) fn paths(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == Token::Ident("use".into()) {
            let end = tokens[i..]
                .iter()
                .position(|t| *t == Token::Punct(';'))
                .map_or(tokens.len(), |p| i + p);
            use_tree(&tokens[i + 1..end], &[], &mut out);
            i = end + 1;
            continue;
        }
        let starts_path = matches!(&tokens[i], Token::Ident(_))
            && (i == 0 || tokens[i - 1] != Token::Colons)
            && tokens.get(i + 1) == Some(&Token::Colons);
        if starts_path {
            let mut path = Vec::new();
            while let Some(Token::Ident(name)) = tokens.get(i) {
                path.push(name.clone());
                if tokens.get(i + 1) == Some(&Token::Colons) {
                    i += 2;
                } else {
                    i += 1;
                    break;
                }
            }
            out.push(path);
            continue;
        }
        i += 1;
    }
    out
}

/// The leaves of a use tree (`a::{b, c::{d, e}}`, `a as b`, `a::*`, `self`).
fn use_tree(tokens: &[Token], prefix: &[String], out: &mut Vec<Vec<String>>) {
    if tokens.is_empty() {
        return; // after a trailing comma
    }
    let mut path = prefix.to_vec();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(name) if name == "as" => break,
            Token::Ident(name) if name == "self" && !path.is_empty() => {}
            Token::Ident(name) => path.push(name.clone()),
            Token::Punct('{') => {
                let mut depth = 0;
                let mut start = i + 1;
                for (j, t) in tokens.iter().enumerate().skip(i) {
                    match t {
                        Token::Punct('{') => depth += 1,
                        Token::Punct('}') => depth -= 1,
                        Token::Punct(',') if depth == 1 => {
                            use_tree(&tokens[start..j], &path, out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        use_tree(&tokens[start..j], &path, out);
                        return;
                    }
                }
                return;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(path);
}
